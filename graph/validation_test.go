package graph

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"

	"github.com/scoville/scoville/models"
)

// workLog keeps the tally of every validation an endpoint ran.
type workLog struct {
	mu    sync.Mutex
	works []*validationWork
}

func (l *workLog) add(w *validationWork) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.works = append(l.works, w)
}

// requireWithinBudget checks every validation run since the last call: field
// comparisons within the budget, nodes visited within the node limit.
func (l *workLog) requireWithinBudget(t *testing.T, cfg HandlerConfig, what string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.works {
		require.LessOrEqual(t, w.Comparisons, orDefault(cfg.ValidationBudget, DefaultValidationBudget), "%s: comparisons", what)
		require.LessOrEqual(t, w.Nodes, orDefault(cfg.MaxNodes, DefaultMaxNodes), "%s: nodes visited", what)
	}
	l.works = nil
}

func newCountingEndpoint(t *testing.T, cfg HandlerConfig) (*testEndpoint, *workLog) {
	t.Helper()
	log := &workLog{}
	cfg.countWork = log.add
	return newTestEndpoint(t, cfg), log
}

// TestHostileDocumentsAreRefusedWithinBudget sends every shape of the corpus through
// the real handler, over POST, over GET, and as a persisted query registered and then
// replayed by its hash: each is refused with its code before anything runs, and the
// validator's counted work (field comparisons, nodes visited) stays within the
// budget whatever the shape.
func TestHostileDocumentsAreRefusedWithinBudget(t *testing.T) {
	t.Parallel()
	for _, d := range hostileDocuments() {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			cfg := HandlerConfig{}
			e, work := newCountingEndpoint(t, cfg)
			requireRefused := func(res handlerResult, how string) {
				t.Helper()
				require.Contains(t, d.codes, res.code(), "%s: %.300s", how, res.Raw)
				require.Equal(t, http.StatusOK, res.Status, how) // application/json: 200 for every well-formed request
				require.Nil(t, res.Data, how)
				require.LessOrEqual(t, len(res.Errors), maxValidationErrors+1, "%s: errors are capped", how)
				work.requireWithinBudget(t, cfg, how)
			}

			requireRefused(e.query(d.query, d.vars, nil), "POST")
			requireRefused(e.query(d.query, d.vars, customer), "POST as a customer")

			vars, err := json.Marshal(d.vars)
			require.NoError(t, err)
			requireRefused(e.get(url.Values{"query": {d.query}, "variables": {string(vars)}}, nil), "GET")

			body, err := json.Marshal(map[string]any{
				"query": d.query, "variables": d.vars, "extensions": json.RawMessage(apqExtensions(d.query)),
			})
			require.NoError(t, err)
			requireRefused(e.post(string(body), nil), "persisted query, registered")
			res := e.get(url.Values{"extensions": {apqExtensions(d.query)}, "variables": {string(vars)}}, nil)
			if len(d.query) <= DefaultAPQMaxQueryBytes {
				requireRefused(res, "persisted query, by its hash")
			} else {
				require.Equal(t, "PERSISTED_QUERY_NOT_FOUND", res.code(), "too large to be kept: %s", res.Raw)
			}
			require.Zero(t, e.counter.n.Load(), "no field was resolved")
		})
	}

	t.Run("the budget's refusal is reported once", func(t *testing.T) {
		t.Parallel()
		e, _ := newCountingEndpoint(t, HandlerConfig{})
		res := e.query("{ "+repeat(DefaultParserTokenLimit-2, same("__typename"))+"}", nil, nil)
		require.Equal(t, models.CodeDocumentTooComplex, res.code(), res.Raw)
		require.Len(t, res.Errors, 1, res.Raw)
		require.Contains(t, res.Errors[0].Message, "the document is too complex to validate")
	})
	t.Run("a smaller budget refuses sooner and counts no further", func(t *testing.T) {
		t.Parallel()
		cfg := HandlerConfig{ValidationBudget: 50, MaxNodes: 100}
		e, work := newCountingEndpoint(t, cfg)
		res := e.query("{ "+repeat(20, same("__typename"))+"}", nil, nil)
		require.Equal(t, models.CodeDocumentTooComplex, res.code(), "190 pairs: %s", res.Raw)
		work.requireWithinBudget(t, cfg, "20 fields")
		res = e.query("{ "+repeat(101, same("__typename"))+"}", nil, nil)
		require.Equal(t, models.CodeDocumentTooComplex, res.code(), "over the node limit before validation: %s", res.Raw)
		require.Contains(t, res.Errors[0].Message, "document has 102 nodes for validation to visit")
	})
}

// legitimateDocuments are the largest documents real clients send: the token limit
// and every budget are chosen from them (docs/incoming/h-parse.md).
func legitimateDocuments(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"introspection", "storefront"} {
		b, err := os.ReadFile("testdata/documents/" + name + ".graphql")
		require.NoError(t, err)
		out[name] = string(b)
	}
	return out
}

func countTokens(t testing.TB, doc string) int {
	t.Helper()
	l := lexer.New(&ast.Source{Input: doc})
	n := 0
	for {
		tok, err := l.ReadToken()
		require.NoError(t, err)
		if tok.Kind == lexer.EOF {
			return n
		}
		if tok.Kind != lexer.Comment {
			n++
		}
	}
}

// TestLegitimateDocumentsPassWithRoomToSpare runs the Playground's introspection
// query and every storefront operation through the production handler: none is
// refused, and each uses less than a quarter of the token limit and of every budget.
func TestLegitimateDocumentsPassWithRoomToSpare(t *testing.T) {
	t.Parallel()
	docs := legitimateDocuments(t)
	cfg := HandlerConfig{Introspection: false}
	e, work := newCountingEndpoint(t, cfg)
	requireRoom := func(name string) {
		t.Helper()
		work.mu.Lock()
		defer work.mu.Unlock()
		for _, w := range work.works {
			require.Less(t, 4*w.Comparisons, DefaultValidationBudget, "%s: comparisons %d", name, w.Comparisons)
			require.Less(t, 4*w.Nodes, DefaultMaxNodes, "%s: nodes %d", name, w.Nodes)
		}
		work.works = nil
	}
	for name, doc := range docs {
		require.Less(t, 4*countTokens(t, doc), DefaultParserTokenLimit, name)
	}

	res := e.query(docs["introspection"], nil, admin)
	require.Empty(t, res.Errors, res.Raw)
	require.NotEmpty(t, res.Data["__schema"])
	requireRoom("introspection")

	for _, op := range []struct {
		name string
		vars map[string]any
	}{
		{"AccountPage", nil},
		{"SubscriptionPage", map[string]any{"id": "s1"}},
		{"ChangePlan", map[string]any{"input": map[string]any{"subscriptionId": "s1", "planId": "p1", "idempotencyKey": "k"}}},
		{"UpdateAddress", map[string]any{"input": map[string]any{"subscriptionId": "s1", "idempotencyKey": "k", "address": map[string]any{
			"name": "n", "line1": "l", "city": "c", "postalCode": "p", "country": "DE"}}}},
	} {
		b, err := json.Marshal(map[string]any{"query": docs["storefront"], "operationName": op.name, "variables": op.vars})
		require.NoError(t, err)
		res := e.post(string(b), customer)
		for _, err := range res.Errors {
			code, _ := err.Extensions["code"].(string)
			require.NotContains(t, []string{codeParseFailed, codeValidationFailed, models.CodeDocumentTooComplex, models.CodeDepthLimit,
				models.CodeAliasLimit, models.CodeFieldLimit, models.CodeComplexityLimit}, code, "%s: %s", op.name, res.Raw)
		}
		requireRoom(op.name)
	}
	require.Positive(t, e.counter.n.Load(), "the storefront's operations ran")
}

// FuzzValidationWork builds a document from the input (a small grammar of the hostile
// shapes: fields, aliases with arguments, nested lists, inline fragments, named
// fragments and their spreads, directives, several operations) and sends it through
// the handler: whatever the document, the answer is never 5xx, and validation's
// counted work stays within the budget.
func FuzzValidationWork(f *testing.F) {
	for _, s := range []string{"", "\x00\x00\x00\x00", "\x01\x01\x01\x01\x01\x01", "\x05\x05\x05\x04\x04\x04", "\x07\x00\x07\x00\x07\x00\x07\x00",
		"\x02\x03\x02\x03\x02\x03", "\x06\x06\x06\x06\x06\x06\x06"} {
		f.Add([]byte(s), uint8(3), uint16(400))
	}
	cfg := HandlerConfig{}
	log := &workLog{}
	cfg.countWork = log.add
	c := &fieldCounter{}
	cfg.Resolvers = testRoot{}
	cfg.Extensions = []graphql.HandlerExtension{c}
	cfg.Logger = slog.New(slog.DiscardHandler)
	h := NewHandler(cfg)
	f.Fuzz(func(t *testing.T, program []byte, fragments uint8, size uint16) {
		doc := generateDocument(program, int(fragments%12), int(size%1200))
		rec := post(t, h, mustJSON(t, map[string]any{"query": doc}))
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, doc, rec.Body.String())
		}
		log.mu.Lock()
		defer log.mu.Unlock()
		for _, w := range log.works {
			if w.Comparisons > DefaultValidationBudget || w.Nodes > DefaultMaxNodes {
				t.Fatalf("work %+v over budget for %q", *w, doc)
			}
		}
		log.works = nil
	})
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// generateDocument interprets program as repeated choices of selection, the same
// choices filling each of the fragments and an operation; size bounds how many
// selections are written in all.
func generateDocument(program []byte, fragments, size int) string {
	if len(program) == 0 {
		program = []byte{0}
	}
	pc := 0
	written := 0
	next := func() byte { b := program[pc%len(program)]; pc++; return b }
	var sel func(b *strings.Builder, depth int)
	// nest writes an inline fragment opened by open, with selections inside, while
	// the document is not yet 30 deep.
	nest := func(b *strings.Builder, depth int, open string) {
		if depth < 30 {
			b.WriteString(open)
			sel(b, depth+1)
			b.WriteString("} ")
		}
	}
	sel = func(b *strings.Builder, depth int) {
		for written < size {
			written++
			op := next()
			switch op % 9 {
			case 0:
				b.WriteString("__typename ")
			case 1:
				fmt.Fprintf(b, "plans { id price { amount } } ")
			case 2:
				fmt.Fprintf(b, "a%d: adminSubscriptions(first: %d) { edges { cursor } } ", op%3, op)
			case 3:
				fmt.Fprintf(b, "adminSubscriptions(first: [[%d]]) { pageInfo { hasNextPage } } ", op)
			case 4:
				nest(b, depth, "... { ")
			case 5:
				if fragments > 0 {
					fmt.Fprintf(b, "...F%d ", int(op)%fragments)
				}
			case 6:
				b.WriteString("__typename @include(if: true) @skip(if: false) ")
			case 7:
				nest(b, depth, "... on Query { ")
			case 8:
				return
			}
		}
	}
	var b strings.Builder
	ops := 1 + int(next()%3)
	for i := range ops {
		fmt.Fprintf(&b, "query Q%d { __typename ", i)
		sel(&b, 0)
		b.WriteString("}\n")
	}
	for i := range fragments {
		fmt.Fprintf(&b, "fragment F%d on Query { __typename ", i)
		sel(&b, 0)
		b.WriteString("}\n")
	}
	return b.String()
}
