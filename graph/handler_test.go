package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/models"
)

// fieldCounter counts every field gqlgen resolves, root or nested, ours or
// introspection's: zero after a request proves nothing ran.
type fieldCounter struct{ n atomic.Int64 }

func (*fieldCounter) ExtensionName() string                   { return "FieldCounter" }
func (*fieldCounter) Validate(graphql.ExecutableSchema) error { return nil }
func (c *fieldCounter) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	c.n.Add(1)
	return next(ctx)
}

// testRoot answers the few fields the positive controls select; any other resolver
// is a nil interface and would panic (and be counted) if it ever ran.
type testRoot struct{ ResolverRoot }

func (testRoot) Query() QueryResolver { return testQuery{} }

type testQuery struct{ QueryResolver }

func (testQuery) Plans(context.Context) ([]*models.Plan, error) {
	return []*models.Plan{{ID: "plan-1"}}, nil
}

func (testQuery) Me(ctx context.Context) (*models.Customer, error) {
	return &models.Customer{ID: "customer-1"}, nil
}

func (testQuery) ExportMyData(context.Context) (*models.DataExport, error) {
	return &models.DataExport{JSON: "{}"}, nil
}

type handlerResult struct {
	Status int
	Header http.Header
	Raw    string
	Data   map[string]any
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	}
}

func (r handlerResult) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

type testEndpoint struct {
	t       *testing.T
	h       http.Handler
	counter *fieldCounter
}

func newTestEndpoint(t *testing.T, cfg HandlerConfig) *testEndpoint {
	t.Helper()
	c := &fieldCounter{}
	cfg.Resolvers = testRoot{}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Extensions = append(cfg.Extensions, c)
	return &testEndpoint{t: t, h: NewHandler(cfg), counter: c}
}

func (e *testEndpoint) do(req *http.Request, who *auth.Principal) handlerResult {
	e.t.Helper()
	if who != nil {
		req = req.WithContext(auth.WithPrincipal(req.Context(), who))
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	out := handlerResult{Status: rec.Code, Header: rec.Header(), Raw: rec.Body.String()}
	require.NoError(e.t, json.Unmarshal(rec.Body.Bytes(), &out), "body: %.300s", rec.Body.String())
	return out
}

func (e *testEndpoint) post(body string, who *auth.Principal) handlerResult {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return e.do(req, who)
}

func (e *testEndpoint) query(q string, vars map[string]any, who *auth.Principal) handlerResult {
	e.t.Helper()
	b, err := json.Marshal(map[string]any{"query": q, "variables": vars})
	require.NoError(e.t, err)
	return e.post(string(b), who)
}

func (e *testEndpoint) get(params url.Values, who *auth.Principal) handlerResult {
	e.t.Helper()
	return e.do(httptest.NewRequest(http.MethodGet, "/graphql?"+params.Encode(), nil), who)
}

var (
	customer = &auth.Principal{Issuer: "https://idp.test", Subject: "c1", Roles: []auth.Role{auth.RoleCustomer}}
	support  = &auth.Principal{Issuer: "https://idp.test", Subject: "s1", Roles: []auth.Role{auth.RoleCustomer, auth.RoleSupport}}
	admin    = &auth.Principal{Issuer: "https://idp.test", Subject: "a1", Roles: []auth.Role{auth.RoleCustomer, auth.RoleAdmin}}
)

// deepQuery nests ofType n levels under __type: the schema's own types have no
// cycle, introspection's do.
func deepQuery(n int) string {
	return `{ __type(name: "Query") { ` + strings.Repeat("ofType { ", n-2) + "name" + strings.Repeat(" }", n-2) + " } }"
}

func aliasQuery(n int) string {
	var b strings.Builder
	b.WriteString("{ ")
	for i := range n {
		fmt.Fprintf(&b, "a%d: plans { id } ", i)
	}
	b.WriteString("}")
	return b.String()
}

// fragmentBomb is a few hundred bytes that expands to 2^levels selections.
func fragmentBomb(levels int) string {
	var b strings.Builder
	b.WriteString("query { ...F0 }\n")
	for i := range levels {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Query { plans { id } }\n", levels)
	return b.String()
}

func TestLimitsRefuseBeforeAnythingRuns(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		query    string
		vars     map[string]any
		who      *auth.Principal
		wantCode string
		wantMsg  string
	}{
		{"40 deep", deepQuery(40), nil, admin, models.CodeDepthLimit, "nested 40 levels deep, which exceeds the limit of 15"},
		{"300 aliases", aliasQuery(300), nil, nil, models.CodeAliasLimit, "300 aliases, which exceeds the limit of 30"},
		{"first: 1000000000 in the document", `{ me { subscriptions { payments(first: 1000000000) { edges { node { id } } } } } }`,
			nil, customer, models.CodeComplexityLimit, "exceeds the limit of 5000"},
		{"first: 1000000000 in a variable", `query($n: Int) { adminSubscriptions(first: $n) { edges { node { id } } } }`,
			map[string]any{"n": 1000000000}, admin, models.CodeComplexityLimit, "exceeds the limit of 5000"},
		{"nested firsts that would overflow", `{ adminCustomers(first: 2000000000) { edges { node { subscriptions { payments(first: 2000000000) { edges { node { id } } } shipments(first: 2000000000) { edges { node { id } } } } } } } }`,
			nil, admin, models.CodeComplexityLimit, "exceeds the limit of 5000"},
		{"fragment bomb", fragmentBomb(30), nil, nil, models.CodeFieldLimit, "once fragments are expanded"},
		{"two exports in one operation", `{ a: exportMyData { json } b: exportMyData { json } }`, nil, customer,
			models.CodeComplexityLimit, "exceeds the limit of 5000"},
		{"tokens over the parser limit", "{ plans { " + strings.Repeat("id ", DefaultParserTokenLimit) + "} }", nil, nil, "GRAPHQL_PARSE_FAILED", "token limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEndpoint(t, HandlerConfig{Introspection: true})
			res := e.query(tc.query, tc.vars, tc.who)
			require.Equal(t, tc.wantCode, res.code(), "body: %.500s", res.Raw)
			require.Contains(t, res.Errors[0].Message, tc.wantMsg)
			require.Nil(t, res.Data, "refused before execution: no data at all")
			require.Zero(t, e.counter.n.Load(), "no field was resolved")
			require.Equal(t, http.StatusOK, res.Status, "application/json: 200 for every well-formed request (GraphQL over HTTP)")
		})
	}

	t.Run("the same operations within the limits run", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{Introspection: true})
		for _, q := range []string{deepQuery(14), aliasQuery(30), fragmentBomb(5), `{ me { id } }`, `{ exportMyData { json } me { id } }`} {
			res := e.query(q, nil, admin)
			require.Empty(t, res.Errors, "query %.80s: %s", q, res.Raw)
			require.NotNil(t, res.Data)
		}
		require.Positive(t, e.counter.n.Load())
	})

	t.Run("a first over the page cap but cheap passes the cost limit", func(t *testing.T) {
		t.Parallel()
		// Served as 100 items (API.md); the test root has no Customer resolver, so
		// execution stops there, past every limit. Priced as paging.MaxList
		// subscriptions of 150 payments selecting one object each.
		e := newTestEndpoint(t, HandlerConfig{})
		res := e.query(`{ me { subscriptions { payments(first: 150) { pageInfo { hasNextPage } } } } }`, nil, customer)
		require.NotNil(t, res.Data, res.Raw)
		require.Positive(t, e.counter.n.Load())
	})

	t.Run("depth counts the schema's own fields too", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{MaxDepth: 3})
		res := e.query(`{ me { subscriptions { plan { id } } } }`, nil, customer)
		require.Equal(t, models.CodeDepthLimit, res.code(), res.Raw)
		require.Zero(t, e.counter.n.Load())
	})
}

func TestRequestShapeIsRefused(t *testing.T) {
	t.Parallel()
	t.Run("a batch", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{})
		res := e.post(`  [{"query":"{ plans { id } }"},{"query":"{ plans { id } }"}]`, nil)
		require.Equal(t, http.StatusBadRequest, res.Status)
		require.Equal(t, models.CodeBatchRefused, res.code())
		require.Contains(t, res.Errors[0].Message, "batched requests are not supported")
		require.Zero(t, e.counter.n.Load())
	})
	t.Run("malformed JSON is refused without echoing it", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{})
		res := e.post(`{"query": "{ plans { id } }", "secret-ish": `, nil)
		require.Equal(t, http.StatusBadRequest, res.Status)
		require.Equal(t, models.CodeBadRequest, res.code())
		require.NotContains(t, res.Raw, "secret-ish")
	})
	t.Run("a body cut off by the size limit is 413", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{})
		h := http.MaxBytesHandler(e.h, 1024)
		body := `{"query":"{ plans { id } }","variables":{"x":"` + strings.Repeat("a", 4096) + `"}}`
		// No Content-Length: the limit is found while reading, not up front.
		req := httptest.NewRequest(http.MethodPost, "/graphql", io.NopCloser(strings.NewReader(body)))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
		require.Contains(t, rec.Body.String(), models.CodeBodyTooLarge)
		require.Contains(t, rec.Body.String(), "the limit is 1024 bytes")
		require.Zero(t, e.counter.n.Load())
	})
	t.Run("a mutation over GET", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{})
		res := e.get(url.Values{"query": {`mutation { deleteMyAccount(input: {confirm: true, idempotencyKey: "k1"}) { deleted } }`}}, customer)
		require.Equal(t, http.StatusMethodNotAllowed, res.Status, res.Raw)
		require.Equal(t, http.MethodPost, res.Header.Get("Allow"))
		require.Contains(t, res.Errors[0].Message, "GET requests only allow query operations")
		require.Zero(t, e.counter.n.Load(), "the mutation's resolver never ran")
	})
	t.Run("a query over GET runs", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{})
		res := e.get(url.Values{"query": {`{ plans { id } }`}}, nil)
		require.Equal(t, http.StatusOK, res.Status, res.Raw)
		require.Empty(t, res.Errors)
		require.Positive(t, e.counter.n.Load())
	})
}

func TestIntrospectionIsForStaffInProduction(t *testing.T) {
	t.Parallel()
	queries := []string{
		`{ __schema { queryType { name } } plans { id } }`,
		`{ __type(name: "Plan") { name } }`,
		`{ ...F } fragment F on Query { __schema { types { name } } }`,
		`{ ... on Query { __type(name: "Plan") { name } } }`,
	}
	for _, q := range queries {
		t.Run("refused: "+q, func(t *testing.T) {
			t.Parallel()
			e := newTestEndpoint(t, HandlerConfig{Introspection: false})
			res := e.query(q, nil, nil)
			require.Equal(t, models.CodeUnauthenticated, res.code(), res.Raw)
			require.Contains(t, res.Errors[0].Message, "introspection is available to signed-in SUPPORT and ADMIN staff only")
			require.Nil(t, res.Data)
			res = e.query(q, nil, customer)
			require.Equal(t, models.CodeForbidden, res.code(), res.Raw)
			require.Contains(t, res.Errors[0].Message, "SUPPORT and ADMIN staff only")
			require.Nil(t, res.Data)
			require.Zero(t, e.counter.n.Load(), "nothing ran for anonymous or customer")
		})
	}
	t.Run("staff may introspect", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{Introspection: false})
		for _, who := range []*auth.Principal{support, admin} {
			res := e.query(`{ __schema { queryType { name } } }`, nil, who)
			require.Empty(t, res.Errors, res.Raw)
			require.Equal(t, "Query", res.Data["__schema"].(map[string]any)["queryType"].(map[string]any)["name"])
		}
	})
	t.Run("__typename is no introspection", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{Introspection: false})
		res := e.query(`{ __typename plans { __typename id } }`, nil, nil)
		require.Empty(t, res.Errors, res.Raw)
	})
	t.Run("development opens it to everyone", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{Introspection: true})
		res := e.query(`{ __schema { queryType { name } } }`, nil, nil)
		require.Empty(t, res.Errors, res.Raw)
	})
}

func TestSuggestionsOnlyForThoseWhoMayIntrospect(t *testing.T) {
	t.Parallel()
	bad := []string{
		`{ plan { id } }`,   // unknown field: did you mean plans
		`{ plans { idd } }`, // unknown field on a type
		`{ adminSubscriptions(frist: 1) { edges { cursor } } }`,      // unknown argument
		`{ adminSubscriptions(status: ACTIV) { edges { cursor } } }`, // enum value
	}
	prod := newTestEndpoint(t, HandlerConfig{Introspection: false})
	dev := newTestEndpoint(t, HandlerConfig{Introspection: true})
	for i, q := range bad {
		for _, who := range []*auth.Principal{nil, customer} {
			res := prod.query(q, nil, who)
			require.NotEmpty(t, res.Errors, q)
			require.NotContains(t, res.Raw, "Did you mean", "public caller, %s", q)
		}
		res := prod.query(q, nil, support)
		if i < 2 {
			// Field hints are not even computed in production (each costs a string
			// distance to every field of the type); the Playground completes fields
			// from the schema itself.
			require.NotContains(t, res.Raw, "Did you mean", "no field hints in production: %s", q)
		} else {
			require.Contains(t, res.Raw, "Did you mean", "staff keep the other hints: %s", q)
		}
		res = dev.query(q, nil, nil)
		require.Contains(t, res.Raw, "Did you mean", "development keeps the hints: %s", q)
	}
	require.Zero(t, prod.counter.n.Load())
}

func apqExtensions(query string) string {
	sum := sha256.Sum256([]byte(query))
	return fmt.Sprintf(`{"persistedQuery":{"version":1,"sha256Hash":%q}}`, hex.EncodeToString(sum[:]))
}

// postAPQ posts query as an automatic persisted query: its hash, and the query
// itself only when sendQuery.
func (e *testEndpoint) postAPQ(query string, sendQuery bool, who *auth.Principal) handlerResult {
	e.t.Helper()
	body := map[string]any{"extensions": json.RawMessage(apqExtensions(query))}
	if sendQuery {
		body["query"] = query
	}
	b, err := json.Marshal(body)
	require.NoError(e.t, err)
	return e.post(string(b), who)
}

func TestPersistedQueriesKeepTheLimits(t *testing.T) {
	t.Parallel()

	t.Run("hash, then query and hash, then hash alone", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{})
		q := `{ plans { id } }`
		res := e.postAPQ(q, false, nil)
		require.Equal(t, "PERSISTED_QUERY_NOT_FOUND", res.code(), res.Raw)
		require.Empty(t, e.postAPQ(q, true, nil).Errors)
		res = e.postAPQ(q, false, nil)
		require.Empty(t, res.Errors, res.Raw)
		require.Equal(t, "plan-1", res.Data["plans"].([]any)[0].(map[string]any)["id"])
		// Over GET too, as CDNs like it.
		res = e.get(url.Values{"extensions": {apqExtensions(q)}}, nil)
		require.Empty(t, res.Errors, res.Raw)
	})
	t.Run("a persisted query is held to the same limits", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{})
		q := aliasQuery(300) // under the size kept and the token limit, over the alias limit
		require.Less(t, len(q), DefaultAPQMaxQueryBytes)
		require.Equal(t, models.CodeAliasLimit, e.postAPQ(q, true, nil).code())
		require.Equal(t, models.CodeAliasLimit, e.postAPQ(q, false, nil).code(), "the hash alone is refused the same way")
		require.Zero(t, e.counter.n.Load())
	})
	t.Run("a persisted mutation never runs over GET", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{})
		m := `mutation { deleteMyAccount(input: {confirm: true, idempotencyKey: "k2"}) { deleted } }`
		// Registered over POST by someone (not run: the caller is anonymous and the
		// resolver is absent; the registration is what matters).
		_ = e.postAPQ(m, true, nil)
		before := e.counter.n.Load()
		res := e.get(url.Values{"extensions": {apqExtensions(m)}}, customer)
		require.Equal(t, http.StatusMethodNotAllowed, res.Status, res.Raw)
		require.Equal(t, before, e.counter.n.Load())
	})
	t.Run("large queries are not kept", func(t *testing.T) {
		t.Parallel()
		e := newTestEndpoint(t, HandlerConfig{})
		q := `{ plans { id } }` + strings.Repeat(" ", DefaultAPQMaxQueryBytes)
		require.Empty(t, e.postAPQ(q, true, nil).Errors)
		require.Equal(t, "PERSISTED_QUERY_NOT_FOUND", e.postAPQ(q, false, nil).code())
	})
}

func TestCostOfLists(t *testing.T) {
	t.Parallel()
	es := costSchema{ExecutableSchema: NewExecutableSchema(Config{})}
	ctx := context.Background()
	cost := func(typ, field string, child int, args map[string]any) int {
		c, ok := es.Complexity(ctx, typ, field, child, args)
		require.True(t, ok)
		return c
	}
	require.Equal(t, 1+5*3, cost("Query", "adminSubscriptions", 3, map[string]any{"first": int64(5)}))
	require.Equal(t, 1+20*3, cost("Subscription", "payments", 3, map[string]any{}), "absent first is the default page")
	require.Equal(t, 1+100*3, cost("Query", "auditLog", 3, map[string]any{"first": json.Number("100")}))
	require.Equal(t, 1, cost("Query", "auditLog", 3, map[string]any{"first": int64(0)}))
	require.Equal(t, maxCost, cost("Query", "auditLog", maxCost, map[string]any{"first": int64(2_000_000_000)}), "saturates")
	require.Equal(t, DefaultMaxComplexity/2+2, cost("Query", "exportMyData", 1, nil), "priced by what it reads")
	c, _ := costSchema{ExecutableSchema: es.ExecutableSchema, maxComplexity: 100}.Complexity(ctx, "Query", "exportMyData", 0, nil)
	require.Equal(t, 51, c, "more than half the limit it is held to")
	_, ok := es.Complexity(ctx, "Query", "plans", 3, nil)
	require.False(t, ok, "fields without first keep the default cost")
}
