package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

// limitsRequest is one raw HTTP request to the running app, for the tests that need
// other methods, bodies or headers than testApp.gql sends.
type limitsRequest struct {
	method  string
	path    string
	body    io.Reader
	length  int64 // -1: no Content-Length (chunked)
	token   string
	headers map[string]string
}

func (a *testApp) raw(r limitsRequest) gqlResponse {
	a.t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = "/graphql"
	}
	req, err := http.NewRequest(r.method, a.srv.URL+r.path, r.body)
	require.NoError(a.t, err)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
		if r.length != 0 {
			req.ContentLength = r.length
		}
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := a.srv.Client().Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	out := gqlResponse{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/") && len(raw) > 0 {
		require.NoError(a.t, json.Unmarshal(raw, &out), "body: %.300s", raw)
	}
	return out
}

func gqlBody(query string, vars map[string]any) *bytes.Reader {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return bytes.NewReader(b)
}

// customerRows counts the customer records of a subject: `me` creates one on its
// first run, so zero after a refused `me` proves its resolver never ran.
func (a *testApp) customerRows(subject string) int64 {
	a.t.Helper()
	var n int64
	require.NoError(a.t, a.db.Model(&models.Customer{}).Where("subject = ?", subject).Count(&n).Error)
	return n
}

func (a *testApp) planRows() int64 {
	a.t.Helper()
	var n int64
	require.NoError(a.t, a.db.Model(&models.Plan{}).Count(&n).Error)
	return n
}

const createPlanMutation = `mutation($in: CreatePlanInput!) { createPlan(input: $in) { plan { id } userErrors { code } } }`

func planInput(key string) map[string]any {
	return map[string]any{"in": map[string]any{
		"name": "Limits box", "description": "d", "interval": "MONTH", "amount": 1500, "currency": "USD", "idempotencyKey": key,
	}}
}

func TestGraphQLLimitsRefuseBeforeAnyResolver(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{production: true})

	t.Run("control: me provisions the caller, so its absence is proof", func(t *testing.T) {
		res := a.gql(a.token("limits-control"), `{ me { id } }`, nil)
		require.Empty(t, res.Errors, res.Raw)
		require.EqualValues(t, 1, a.customerRows("limits-control"))
	})

	ofTypes := strings.Repeat("ofType { ", 38) + "name" + strings.Repeat(" }", 38)
	var aliases strings.Builder
	for i := range 300 { // within the parser's token limit
		fmt.Fprintf(&aliases, "a%d: me { id } ", i)
	}
	cases := []struct {
		name, subject string
		roles         []string
		query         string
		code, message string
	}{
		{"a 40-deep query", "limits-deep", []string{"admin"}, `{ me { id } __type(name: "Query") { ` + ofTypes + ` } }`,
			"DEPTH_LIMIT_EXCEEDED", "operation is nested 40 levels deep, which exceeds the limit of 15"},
		{"a 300-alias query", "limits-alias", nil, "{ " + aliases.String() + "}",
			"ALIAS_LIMIT_EXCEEDED", "operation uses 300 aliases, which exceeds the limit of 30"},
		{"first: 1000000000", "limits-first", nil, `{ me { id subscriptions { payments(first: 1000000000) { edges { node { id } } } } } }`,
			"COMPLEXITY_LIMIT_EXCEEDED", "which exceeds the limit of 5000"},
		{"customer introspection in production", "limits-introspect", nil, `{ me { id } __schema { queryType { name } } }`,
			"FORBIDDEN", "introspection is available to SUPPORT and ADMIN staff only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := a.gql(a.token(tc.subject, tc.roles...), tc.query, nil)
			require.Equal(t, []string{tc.code}, res.codes(), res.Raw)
			require.Contains(t, res.Errors[0].Message, tc.message)
			require.Nil(t, res.Data)
			require.Zero(t, a.customerRows(tc.subject), "me never ran")
		})
	}

	t.Run("anonymous introspection in production", func(t *testing.T) {
		res := a.gql("", `{ __schema { queryType { name } } plans { id } }`, nil)
		require.Equal(t, []string{"UNAUTHENTICATED"}, res.codes(), res.Raw)
		require.Contains(t, res.Errors[0].Message, "introspection is available to signed-in SUPPORT and ADMIN staff only")
		require.Nil(t, res.Data, "nothing was executed, plans included")
		require.NotContains(t, a.gql("", `{ plan { id } }`, nil).Raw, "Did you mean", "no field suggestions for the public")
	})
	t.Run("admin introspection in production", func(t *testing.T) {
		res := a.gql(a.token("limits-admin", "admin"), `{ __schema { queryType { name } } }`, nil)
		require.Empty(t, res.Errors, res.Raw)
		// Staff keep argument and value hints; field hints are not computed in
		// production (the Playground completes fields from the schema).
		require.Contains(t, a.gql(a.token("limits-admin", "admin"), `{ adminSubscriptions(frist: 1) { edges { cursor } } }`, nil).Raw, "Did you mean")
	})

	t.Run("a 10 MB body", func(t *testing.T) {
		pad := strings.Repeat("a", 10<<20)
		for _, length := range []int64{0, -1} { // with Content-Length, and chunked
			body := gqlBody(`{ me { id } }`, map[string]any{"pad": pad})
			res := a.raw(limitsRequest{body: body, length: length, token: a.token("limits-body")})
			require.Equal(t, http.StatusRequestEntityTooLarge, res.Status)
			require.Equal(t, []string{"REQUEST_TOO_LARGE"}, res.codes(), res.Raw)
			require.Contains(t, res.Errors[0].Message, "request body too large: the limit is 65536 bytes")
			require.Zero(t, a.customerRows("limits-body"))
		}
	})

	t.Run("a batch", func(t *testing.T) {
		res := a.raw(limitsRequest{body: strings.NewReader(`[{"query":"{ me { id } }"},{"query":"{ me { id } }"}]`), token: a.token("limits-batch")})
		require.Equal(t, http.StatusBadRequest, res.Status)
		require.Equal(t, []string{"BATCH_NOT_SUPPORTED"}, res.codes(), res.Raw)
		require.Zero(t, a.customerRows("limits-batch"))
	})

	t.Run("a GET mutation", func(t *testing.T) {
		admin := a.token("limits-get", "admin")
		vars, _ := json.Marshal(planInput("limits-get-1"))
		q := url.Values{"query": {createPlanMutation}, "variables": {string(vars)}}
		res := a.raw(limitsRequest{method: http.MethodGet, path: "/graphql?" + q.Encode(), token: admin})
		require.Equal(t, http.StatusMethodNotAllowed, res.Status, "GraphQL over HTTP: a mutation over GET is 405: %s", res.Raw)
		require.Equal(t, http.MethodPost, res.Header.Get("Allow"))
		require.Contains(t, res.Errors[0].Message, "GET requests only allow query operations")
		require.Zero(t, a.planRows(), "no plan was created")

		// Control: the same mutation over POST creates the plan, and a query over GET runs.
		res = a.gql(admin, createPlanMutation, planInput("limits-get-1"))
		require.Empty(t, res.Errors, res.Raw)
		require.EqualValues(t, 1, a.planRows())
		res = a.raw(limitsRequest{method: http.MethodGet, path: "/graphql?" + url.Values{"query": {`{ plans { id } }`}}.Encode()})
		require.Equal(t, http.StatusOK, res.Status, res.Raw)
		require.Empty(t, res.Errors)
	})
}

// requireRetryAfter checks that a RATE_LIMITED answer says when to come back, the
// same in the body and the header, and no later than the refill interval.
func requireRetryAfter(t *testing.T, res gqlResponse, interval int) {
	t.Helper()
	body, ok := res.Errors[0].Extensions["retryAfter"].(float64)
	require.True(t, ok, "retryAfter is a number: %s", res.Raw)
	require.True(t, body >= 1 && int(body) <= interval, "retryAfter %v", body)
	require.Equal(t, strconv.Itoa(int(body)), res.Header.Get("Retry-After"))
}

func TestRateLimits(t *testing.T) {
	t.Parallel()

	t.Run("payments: a burst over the limit, another principal unaffected", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t, appOptions{env: map[string]string{"RATE_LIMIT_PAYMENTS_PER_MINUTE": "2"}}) // burst 1
		alice, bob := a.token("rl-alice", "admin"), a.token("rl-bob", "admin")
		res := a.gql(alice, createPlanMutation, planInput("rl-1"))
		require.Empty(t, res.Errors, res.Raw)
		res = a.gql(alice, createPlanMutation, planInput("rl-2"))
		require.Equal(t, http.StatusTooManyRequests, res.Status)
		require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), res.Raw)
		requireRetryAfter(t, res, 30) // one token every 30 s
		require.Nil(t, res.Data)
		require.EqualValues(t, 1, a.planRows(), "the refused mutation did nothing")

		res = a.gql(bob, createPlanMutation, planInput("rl-3"))
		require.Empty(t, res.Errors, res.Raw)
		require.EqualValues(t, 2, a.planRows())
		res = a.gql(alice, `{ plans { id } }`, nil)
		require.Empty(t, res.Errors, "queries are a separate allowance")

		_, metrics := a.get("/metrics")
		require.Contains(t, metrics, `scoville_rate_limited_total{scope="payment"} 1`)
	})

	t.Run("forwarded addresses from an untrusted peer are ignored", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t, appOptions{env: map[string]string{"RATE_LIMIT_QUERIES_PER_MINUTE": "4"}}) // burst 2
		var last gqlResponse
		for i := range 3 {
			last = a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil),
				headers: map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i+1)}})
		}
		require.Equal(t, http.StatusTooManyRequests, last.Status, "one limiter, the peer's: %s", last.Raw)
		require.Equal(t, []string{"RATE_LIMITED"}, last.codes())
		require.NotEmpty(t, last.Header.Get("Retry-After"))
	})

	t.Run("forwarded addresses from a trusted proxy are believed", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t, appOptions{env: map[string]string{
			"RATE_LIMIT_QUERIES_PER_MINUTE": "4", "TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
		}})
		for i := range 6 {
			res := a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil),
				headers: map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i+1)}})
			require.Empty(t, res.Errors, "client %d has its own allowance: %s", i+1, res.Raw)
		}
		var last gqlResponse
		for range 3 {
			last = a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil),
				headers: map[string]string{"X-Forwarded-For": "198.51.100.1"}})
		}
		require.Equal(t, []string{"RATE_LIMITED"}, last.codes(), "the believed address is limited: %s", last.Raw)
	})

	t.Run("whole requests per address, and the webhook route", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t, appOptions{env: map[string]string{
			"RATE_LIMIT_ADDRESS_PER_MINUTE": "2", "RATE_LIMIT_WEBHOOKS_PER_MINUTE": "2",
		}})
		res := a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil), token: a.token("rl-carol")})
		require.Empty(t, res.Errors, res.Raw)
		res = a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil), token: a.token("rl-dave")})
		require.Equal(t, http.StatusTooManyRequests, res.Status, "every caller on the address shares it")
		require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), res.Raw)
		requireRetryAfter(t, res, 30) // one token every 30 s

		hook := func() gqlResponse {
			return a.raw(limitsRequest{path: "/webhooks/stripe", body: strings.NewReader(`{"id":"evt_1"}`),
				headers: map[string]string{"Stripe-Signature": "t=1,v1=00"}})
		}
		require.Equal(t, http.StatusBadRequest, hook().Status, "the first delivery is judged on its signature")
		res = hook()
		require.Equal(t, http.StatusTooManyRequests, res.Status)
		secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
		require.NoError(t, err)
		require.True(t, secs >= 1 && secs <= 30, "Retry-After %d", secs)
	})
}

func TestBrowserFacingProtection(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: map[string]string{"CORS_ALLOWED_ORIGINS": "https://shop.example"}})
	preflight := func(origin string) gqlResponse {
		return a.raw(limitsRequest{method: http.MethodOptions, headers: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "authorization,content-type",
		}})
	}

	t.Run("CORS for the allowed origin", func(t *testing.T) {
		res := preflight("https://shop.example")
		require.Equal(t, http.StatusNoContent, res.Status)
		require.Equal(t, "https://shop.example", res.Header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, res.Header.Get("Access-Control-Allow-Headers"), "Authorization")
		require.Contains(t, res.Header.Get("Access-Control-Allow-Methods"), "POST")
		require.Contains(t, res.Header.Values("Vary"), "Origin")
		require.Empty(t, res.Header.Get("Access-Control-Allow-Credentials"))

		res = a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil), headers: map[string]string{"Origin": "https://shop.example"}})
		require.Equal(t, "https://shop.example", res.Header.Get("Access-Control-Allow-Origin"))
	})
	t.Run("nothing for another origin", func(t *testing.T) {
		res := preflight("https://evil.example")
		require.Equal(t, http.StatusForbidden, res.Status)
		require.Empty(t, res.Header.Get("Access-Control-Allow-Origin"))
		require.Empty(t, res.Header.Get("Access-Control-Allow-Methods"))
		res = a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil), headers: map[string]string{"Origin": "https://evil.example"}})
		require.Empty(t, res.Header.Get("Access-Control-Allow-Origin"))
	})

	t.Run("security headers on every route", func(t *testing.T) {
		want := map[string]string{
			"X-Content-Type-Options":    "nosniff",
			"X-Frame-Options":           "DENY",
			"Referrer-Policy":           "no-referrer",
			"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
		}
		routes := []limitsRequest{
			{body: gqlBody(`{ plans { id } }`, nil)},
			{method: http.MethodGet, path: "/graphql?query=%7B__typename%7D"},
			{method: http.MethodOptions, headers: map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}},
			{path: "/webhooks/stripe", body: strings.NewReader(`{}`)},
			{method: http.MethodGet, path: "/healthz"},
			{method: http.MethodGet, path: "/readyz"},
			{method: http.MethodGet, path: "/metrics"},
			{method: http.MethodGet, path: "/playground"},
			{method: http.MethodGet, path: "/no-such-route"},
			{body: strings.NewReader(`[]`)},
		}
		for _, r := range routes {
			res := a.raw(r)
			name := r.method + " " + r.path
			for k, v := range want {
				require.Equal(t, v, res.Header.Get(k), "%s on %s", k, name)
			}
			require.NotEmpty(t, res.Header.Get("Permissions-Policy"), name)
			csp := res.Header.Values("Content-Security-Policy")
			require.Len(t, csp, 1, "one policy on %s", name)
			require.Contains(t, csp[0], "frame-ancestors 'none'", name)
			if r.path != "/playground" {
				require.Contains(t, csp[0], "default-src 'none'", name)
				require.Equal(t, "no-store", res.Header.Get("Cache-Control"), name)
			}
		}
	})
}

// TestRequestsInFlightAreBounded holds a caller's requests in flight (their query
// waits on a locked table), then tries more: the caller's next request is refused
// at once with RATE_LIMITED and retryAfter, over POST and GET alike, while another
// caller on the same address is served; when the held requests end, the caller is
// served again.
func TestRequestsInFlightAreBounded(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{production: true, env: map[string]string{"RATE_LIMIT_INFLIGHT_PER_CALLER": "2"}})
	alice := a.token("inflight-alice")
	require.Empty(t, a.raw(limitsRequest{body: gqlBody(`{ me { id } }`, nil), token: alice}).Errors) // me only reads below

	res, release := a.holdInFlight([2]string{alice, alice}, alice, http.StatusTooManyRequests, "alice's third request in flight is refused")
	require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), res.Raw)
	requireRetryAfter(t, res, 1)
	res = a.raw(limitsRequest{method: http.MethodGet, path: "/graphql?query=%7B__typename%7D", token: alice})
	require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), "GET is the same entry: %s", res.Raw)

	res = a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil), token: a.token("inflight-bob")})
	require.Empty(t, res.Errors, "another caller on the address is served: %s", res.Raw)

	release()
	res = a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil), token: alice})
	require.Empty(t, res.Errors, "the slots are free again: %s", res.Raw)

	// Production serves metrics only on METRICS_ADDR: read the app's own handler.
	rec := httptest.NewRecorder()
	a.app.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Regexp(t, `scoville_rate_limited_total\{scope="inflight"\} [2-9]`, rec.Body.String())
}

// TestHostileDocumentsAreRefusedCheaply sends the shapes to the production
// app, as anonymous callers, a customer and an admin in the Playground, whole and as
// a persisted query: each is refused with its code before anything runs. (The
// counting proof of the bounds is graph's TestHostileDocumentsAreRefusedWithinBudget.)
func TestHostileDocumentsAreRefusedCheaply(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{production: true})
	copies := func(n int, s string) string { return strings.Repeat(s+" ", n) }
	cases := []struct{ name, query, code string }{
		{"over the token limit", "{ " + copies(5000, "__typename") + "}", "GRAPHQL_PARSE_FAILED"},
		{"duplicates up to the token limit", "{ " + copies(1990, "__typename") + "}", "DOCUMENT_TOO_COMPLEX"},
		{"duplicates in a list field", "{ plans { " + copies(1990, "id") + "} }", "DOCUMENT_TOO_COMPLEX"},
		{"a chain of fragments", "{ ...F0 } " + func() string {
			var b strings.Builder
			for i := range 200 {
				fmt.Fprintf(&b, "fragment F%d on Query { __typename ...F%d } ", i, i+1)
			}
			return b.String() + "fragment F200 on Query { __typename }"
		}(), "DOCUMENT_TOO_COMPLEX"},
		{"a fragment cycle", "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }", "GRAPHQL_VALIDATION_FAILED"},
	}
	// The largest document, 9,900 __typename (109 KB), is over the body limit.
	res := a.raw(limitsRequest{body: gqlBody("{ "+copies(9900, "__typename")+"}", nil)})
	require.Equal(t, http.StatusRequestEntityTooLarge, res.Status, res.Raw)
	require.Equal(t, []string{"REQUEST_TOO_LARGE"}, res.codes())

	callers := map[string]string{"anonymous": "", "customer": a.token("hostile-customer"), "playground admin": a.token("hostile-admin", "admin")}
	for _, tc := range cases {
		for who, token := range callers {
			res := a.raw(limitsRequest{body: gqlBody(tc.query, nil), token: token})
			require.Equal(t, http.StatusOK, res.Status, "application/json answers 200 (GraphQL over HTTP): %s as %s: %.300s", tc.name, who, res.Raw)
			require.Equal(t, []string{tc.code}, res.codes(), "%s as %s", tc.name, who)
			require.Nil(t, res.Data)
		}
		sum := sha256.Sum256([]byte(tc.query))
		ext := fmt.Sprintf(`{"persistedQuery":{"version":1,"sha256Hash":%q}}`, hex.EncodeToString(sum[:]))
		body, err := json.Marshal(map[string]any{"query": tc.query, "extensions": json.RawMessage(ext)})
		require.NoError(t, err)
		res := a.raw(limitsRequest{body: bytes.NewReader(body)})
		require.Equal(t, []string{tc.code}, res.codes(), "%s registered as a persisted query: %.300s", tc.name, res.Raw)
		if len(tc.query) <= 16<<10 {
			res = a.raw(limitsRequest{method: http.MethodGet, path: "/graphql?" + url.Values{"extensions": {ext}}.Encode()})
			require.Equal(t, []string{tc.code}, res.codes(), "%s replayed by its hash: %.300s", tc.name, res.Raw)
		}
	}
	require.Zero(t, a.customerRows("hostile-customer"), "nothing ran")
	require.Zero(t, a.customerRows("hostile-admin"), "nothing ran")
}
