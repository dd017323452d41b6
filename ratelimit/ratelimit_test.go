package ratelimit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/clientip"
	"github.com/scoville/scoville/models"
)

// clock is a settable time source, so refills are exact and nothing sleeps.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestLimiter(t *testing.T, cfg Config) (*Limiter, *clock) {
	t.Helper()
	l := New(cfg, prometheus.NewRegistry())
	c := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	l.now = c.now
	return l, c
}

func callerCtx(sub, addr string) context.Context {
	ctx := clientip.With(context.Background(), netip.MustParseAddr(addr))
	if sub != "" {
		ctx = auth.WithPrincipal(ctx, &auth.Principal{Issuer: "https://idp.test", Subject: sub, Roles: []auth.Role{auth.RoleCustomer}})
	}
	return ctx
}

func TestBurstThenRefusedWithRetryAfter(t *testing.T) {
	t.Parallel()
	l, c := newTestLimiter(t, Config{Mutation: PerMinute(6)}) // burst 3, one token per 10 s
	alice := callerCtx("alice", "192.0.2.1")
	for i := range 3 {
		require.Nil(t, l.Take(alice, Charge{ScopeMutation, 1}), "request %d is within the burst", i+1)
	}
	ref := l.Take(alice, Charge{ScopeMutation, 1})
	require.NotNil(t, ref)
	require.Equal(t, ScopeMutation, ref.Scope)
	require.Equal(t, 10, ref.RetryAfterSeconds())
	require.Equal(t, "too many requests; retry after 10 seconds", ref.Error())
	require.Equal(t, 1.0, testutil.ToFloat64(l.refused.WithLabelValues("mutation")))

	// A refusal costs nothing: after exactly retryAfter, one more goes through.
	c.t = c.t.Add(10 * time.Second)
	require.Nil(t, l.Take(alice, Charge{ScopeMutation, 1}))
	require.NotNil(t, l.Take(alice, Charge{ScopeMutation, 1}))

	t.Run("another principal on the same address is unaffected", func(t *testing.T) {
		require.Nil(t, l.Take(callerCtx("bob", "192.0.2.1"), Charge{ScopeMutation, 1}))
	})
	t.Run("queries have their own allowance", func(t *testing.T) {
		require.Nil(t, l.Take(alice, Charge{ScopeQuery, 1}))
	})
}

func TestAnonymousCallersAreTheirAddress(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(t, Config{Query: PerMinute(2)}) // burst 1
	require.Nil(t, l.Take(callerCtx("", "198.51.100.7"), Charge{ScopeQuery, 1}))
	require.NotNil(t, l.Take(callerCtx("", "198.51.100.7"), Charge{ScopeQuery, 1}))
	require.Nil(t, l.Take(callerCtx("", "198.51.100.8"), Charge{ScopeQuery, 1}), "another address has its own bucket")
	require.Nil(t, l.Take(callerCtx("carol", "198.51.100.7"), Charge{ScopeQuery, 1}), "a signed-in caller is keyed by principal")
}

func TestIPv6AddressesOfOneNetworkShareAnAllowance(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(t, Config{Query: PerMinute(2)}) // burst 1
	require.Nil(t, l.Take(callerCtx("", "2001:db8:1:2::1"), Charge{ScopeQuery, 1}))
	require.NotNil(t, l.Take(callerCtx("", "2001:db8:1:2:ffff:0:0:7"), Charge{ScopeQuery, 1}),
		"another address of the same /64 is the same client: no fresh allowance by rotating addresses")
	require.Nil(t, l.Take(callerCtx("", "2001:db8:1:3::1"), Charge{ScopeQuery, 1}), "another /64 has its own bucket")
	require.Nil(t, l.Take(callerCtx("", "::ffff:198.51.100.9"), Charge{ScopeQuery, 1}))
	require.NotNil(t, l.Take(callerCtx("", "198.51.100.9"), Charge{ScopeQuery, 1}),
		"an IPv4 address is one client whether written mapped or not")
	require.Nil(t, l.Take(callerCtx("", "198.51.100.10"), Charge{ScopeQuery, 1}), "IPv4 addresses are not grouped")
}

func TestManyAccountsOnOneAddressShareAnAllowance(t *testing.T) {
	t.Parallel()
	// Card testing: a new account per attempt. Per caller 2 a minute (burst 1); per
	// address 2 x 3 (burst 3).
	l, _ := newTestLimiter(t, Config{Payment: PerMinute(2), AddressFactor: 3})
	for i := range 3 {
		require.Nil(t, l.Take(callerCtx(fmt.Sprintf("acct-%d", i), "203.0.113.9"), Charge{ScopePayment, 1}))
	}
	ref := l.Take(callerCtx("acct-3", "203.0.113.9"), Charge{ScopePayment, 1})
	require.NotNil(t, ref, "the address allowance is spent")
	require.Equal(t, ScopePayment, ref.Scope)
	require.Nil(t, l.Take(callerCtx("acct-3", "203.0.113.10"), Charge{ScopePayment, 1}), "the same account elsewhere is fine")
}

func TestAllOrNothing(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(t, Config{Mutation: PerMinute(60), Payment: PerMinute(2)}) // payment burst 1
	ctx := callerCtx("dave", "192.0.2.50")
	require.Nil(t, l.Take(ctx, Charge{ScopeMutation, 1}, Charge{ScopePayment, 1}))
	// Refused by payment: the mutation token it reserved is given back.
	for range 40 {
		require.NotNil(t, l.Take(ctx, Charge{ScopeMutation, 1}, Charge{ScopePayment, 1}))
	}
	for i := range 29 { // burst 30, one spent above
		require.Nil(t, l.Take(ctx, Charge{ScopeMutation, 1}), "mutation %d", i)
	}
	t.Run("more at once than the burst is never allowed", func(t *testing.T) {
		ref := l.Take(callerCtx("erin", "192.0.2.51"), Charge{ScopePayment, 5})
		require.NotNil(t, ref)
		require.Positive(t, ref.RetryAfterSeconds())
	})
}

func TestMemoryIsBounded(t *testing.T) {
	t.Parallel()
	b := newBuckets(PerMinute(60), 10) // burst 30: refills completely in 30 s
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for i := range 1000 {
		b.reserve(fmt.Sprintf("k%d", i), 1, now)
	}
	require.Equal(t, 10, b.size(), "least recently used keys are dropped at the bound")
	b.reserve("k999", 1, now.Add(10*time.Second))
	require.Equal(t, 10, b.size(), "a busy key is kept")
	b.reserve("late", 1, now.Add(31*time.Second))
	require.Equal(t, 2, b.size(), "buckets idle long enough to be full again are dropped; k999 and late remain")
}

func TestHTTPRefusal(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(t, Config{Webhook: PerMinute(2)}) // burst 1
	ran := 0
	h := clientip.Resolver{}.Middleware(l.PerAddress(ScopeWebhook, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ran++
	})))
	send := func(remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	require.Equal(t, http.StatusOK, send("192.0.2.1:1000").Code)
	rec := send("192.0.2.1:1001")
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "30", rec.Header().Get("Retry-After"))
	var body struct {
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Equal(t, models.CodeRateLimited, body.Errors[0].Extensions["code"])
	require.Equal(t, 30.0, body.Errors[0].Extensions["retryAfter"])
	require.Equal(t, 1, ran, "the refused request never reached the handler")
	require.Equal(t, http.StatusOK, send("192.0.2.2:1000").Code, "another address is unaffected")
	require.Equal(t, 1.0, testutil.ToFloat64(l.refused.WithLabelValues("webhook")))
}

var testSchema = gqlparser.MustLoadSchema(&ast.Source{Input: `
directive @provider on FIELD_DEFINITION
type Query { a: Int quote: Int @provider }
type Mutation { startCheckout: Int @provider refundPayment: Int @provider pauseSubscription(n: Int): Int @provider updateShippingAddress: Int }
`})

func TestProviderFieldsAreCountedThroughAliasesAndFragments(t *testing.T) {
	t.Parallel()
	thirty := "mutation {"
	for i := range 30 {
		thirty += fmt.Sprintf(" p%d: pauseSubscription(n: %d)", i, i)
	}
	thirty += " }"
	cases := map[string]int{
		`mutation { updateShippingAddress }`:                                                           0,
		`mutation { pauseSubscription }`:                                                               1,
		`mutation { startCheckout }`:                                                                   1,
		`mutation { x: startCheckout y: startCheckout refundPayment }`:                                 3,
		`mutation { ...F ... on Mutation { refundPayment } } fragment F on Mutation { startCheckout }`: 2,
		`{ a quote }`: 1,
		thirty:        30,
	}
	for q, want := range cases {
		doc, errs := gqlparser.LoadQueryWithRules(testSchema, q, rules.NewDefaultRules())
		require.Empty(t, errs, q)
		require.Equal(t, want, providerFields(doc.Operations[0].SelectionSet), q)
	}
}

func TestGraphQLRefusalIsA429(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(t, Config{Mutation: PerMinute(2), Address: PerMinute(1000)}) // mutation burst 1
	ext := l.GraphQL().(graphql.OperationContextMutator)
	doc, errs := gqlparser.LoadQueryWithRules(testSchema, `mutation { startCheckout }`, rules.NewDefaultRules())
	require.Empty(t, errs)
	var gqlErrs []string
	h := clientip.Resolver{}.Middleware(l.PerAddress(ScopeAddress, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := auth.WithPrincipal(r.Context(), &auth.Principal{Issuer: "i", Subject: "frank"})
		if err := ext.MutateOperationContext(ctx, &graphql.OperationContext{Operation: doc.Operations[0]}); err != nil {
			gqlErrs = append(gqlErrs, fmt.Sprint(err.Extensions["code"], " ", err.Extensions["retryAfter"]))
		}
		w.WriteHeader(http.StatusOK) // what gqlgen's transport does for a user error
	})))
	send := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/graphql", nil))
		return rec
	}
	require.Equal(t, http.StatusOK, send().Code)
	rec := send()
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "30", rec.Header().Get("Retry-After"))
	require.Equal(t, []string{"RATE_LIMITED 30"}, gqlErrs)
}
