package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Under application/graphql-response+json a response without a data entry must
// have a 4xx or 5xx status (GraphQL over HTTP): every request error the server
// answers, whichever check refused it (the persisted-query lookup, the
// introspection gate, the subscriptions-over-sockets rule, the rate limit), comes
// with one and a code, and none has data. Under application/json the same errors answer 200
// (429 for the rate limit), again without data.
func TestRequestErrorsWithoutDataAreNever2xxUnderGraphQLResponseJSON(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{production: true, env: map[string]string{"RATE_LIMIT_QUERIES_PER_MINUTE": "2"}}) // burst 1
	customer := a.token("httpspec-customer")
	unknownHash := strings.Repeat("ab", 32)
	refusals := []struct{ name, body, token, code string }{
		{"persisted query not found", `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"` + unknownHash + `"}}}`, customer, "PERSISTED_QUERY_NOT_FOUND"},
		{"persisted query hash of another text", `{"query":"{ plans { id } }","extensions":{"persistedQuery":{"version":1,"sha256Hash":"` + unknownHash + `"}}}`, customer, "BAD_REQUEST"},
		{"persisted query of another version", `{"extensions":{"persistedQuery":{"version":2,"sha256Hash":"` + unknownHash + `"}}}`, customer, "BAD_REQUEST"},
		{"persisted query not an object", `{"extensions":{"persistedQuery":"` + unknownHash + `"}}`, customer, "BAD_REQUEST"},
		{"subscription over POST", `{"query":"subscription { subscriptionUpdated { id } }"}`, customer, "BAD_REQUEST"},
		{"introspection by a customer", `{"query":"{ __schema { queryType { name } } }"}`, customer, "FORBIDDEN"},
		{"introspection by an anonymous caller", `{"query":"{ __schema { queryType { name } } }"}`, "", "UNAUTHENTICATED"},
	}
	for _, accept := range []string{"application/graphql-response+json", "application/json"} {
		for _, tc := range refusals {
			res := a.raw(limitsRequest{body: strings.NewReader(tc.body), token: tc.token, headers: map[string]string{"Accept": accept}})
			how := tc.name + " accepting " + accept
			require.Equal(t, []string{tc.code}, res.codes(), "%s: %s", how, res.Raw)
			require.NotContains(t, res.Raw, `"data"`, how)
			require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), accept), "%s: %s", how, res.Header.Get("Content-Type"))
			if accept == "application/json" {
				require.Equal(t, http.StatusOK, res.Status, how)
			} else {
				require.True(t, res.Status >= 400 && res.Status < 500, "%s: status %d", how, res.Status)
			}
		}
	}

	// Over GET too (a hashed GET the server does not know).
	ext := url.Values{"extensions": {`{"persistedQuery":{"version":1,"sha256Hash":"` + unknownHash + `"}}`}}.Encode()
	res := a.raw(limitsRequest{method: http.MethodGet, path: "/graphql?" + ext, headers: map[string]string{"Accept": "application/graphql-response+json"}})
	require.Equal(t, []string{"PERSISTED_QUERY_NOT_FOUND"}, res.codes(), res.Raw)
	require.Equal(t, http.StatusBadRequest, res.Status, res.Raw)
	require.NotContains(t, res.Raw, `"data"`)

	// The rate limit's refusal keeps its own status, 429 with Retry-After.
	for _, accept := range []string{"application/graphql-response+json", "application/json"} {
		limited := a.token("httpspec-limited-" + strings.ReplaceAll(accept, "/", "-"))
		var res gqlResponse
		for i := 0; i < 3 && res.Status != http.StatusTooManyRequests; i++ {
			res = a.raw(limitsRequest{body: gqlBody(`{ plans { id } }`, nil), token: limited, headers: map[string]string{"Accept": accept}})
		}
		require.Equal(t, http.StatusTooManyRequests, res.Status, "accepting %s: %s", accept, res.Raw)
		require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), res.Raw)
		require.NotEmpty(t, res.Header.Get("Retry-After"))
		require.NotContains(t, res.Raw, `"data"`)
	}
}
