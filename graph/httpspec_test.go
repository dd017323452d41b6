package graph

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

// specRequest sends one request with the given Accept header and returns the
// status, the media type answered and the body's top-level entries.
func specRequest(t *testing.T, h http.Handler, method, accept, query string, vars map[string]any) (int, string, map[string]json.RawMessage) {
	t.Helper()
	var req *http.Request
	if method == http.MethodGet {
		v := url.Values{"query": {query}}
		if vars != nil {
			b, err := json.Marshal(vars)
			require.NoError(t, err)
			v.Set("variables", string(b))
		}
		req = httptest.NewRequest(http.MethodGet, "/graphql?"+v.Encode(), nil)
	} else {
		b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
		require.NoError(t, err)
		req = httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), "%s", rec.Body.String())
	return rec.Code, rec.Header().Get("Content-Type"), body
}

// TestRequestErrorsFollowGraphQLOverHTTP: a document that does not parse, one that
// does not validate, variables that do not coerce and a shape refusal are request
// errors. Under application/json (and with no Accept) they answer 200, which the
// specification asks so that clients older than it read the errors; under
// application/graphql-response+json, 400. Neither has a data entry, since nothing
// ran. Over POST and GET. An executed operation keeps 200 and its data.
func TestRequestErrorsFollowGraphQLOverHTTP(t *testing.T) {
	t.Parallel()
	e := newTestEndpoint(t, HandlerConfig{Introspection: true})
	ran := newTestEndpoint(t, HandlerConfig{Introspection: true})
	requestErrors := []struct {
		name, query string
		vars        map[string]any
		code        string
	}{
		{"parse failure", "{", nil, "GRAPHQL_PARSE_FAILED"},
		{"validation failure", "{ noSuchField }", nil, "GRAPHQL_VALIDATION_FAILED"},
		{"variable coercion failure", "query ($id: ID!) { subscription(id: $id) { id } }", map[string]any{"id": map[string]any{"not": "an id"}}, "GRAPHQL_VALIDATION_FAILED"},
		{"missing variable", "query ($id: ID!) { subscription(id: $id) { id } }", nil, "GRAPHQL_VALIDATION_FAILED"},
		{"shape limit", aliasQuery(31), nil, "ALIAS_LIMIT_EXCEEDED"},
	}
	accepts := []struct {
		accept, mediaType string
		status            int
	}{
		{"", "application/json", http.StatusOK},
		{"application/json", "application/json", http.StatusOK},
		{"application/graphql-response+json", "application/graphql-response+json", http.StatusBadRequest},
		{"application/graphql-response+json, application/json;q=0.9", "application/graphql-response+json", http.StatusBadRequest},
	}
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		for _, tc := range requestErrors {
			for _, a := range accepts {
				status, mediaType, body := specRequest(t, e.h, method, a.accept, tc.query, tc.vars)
				how := method + " " + tc.name + " accepting " + a.accept
				require.Equal(t, a.status, status, how)
				require.Equal(t, a.mediaType, mediaType, how)
				require.NotContains(t, body, "data", "%s: a request error has no data entry", how)
				var errs []struct {
					Extensions map[string]any `json:"extensions"`
				}
				require.NoError(t, json.Unmarshal(body["errors"], &errs), how)
				require.NotEmpty(t, errs, how)
				require.Equal(t, tc.code, errs[0].Extensions["code"], how)
			}
		}
		require.Zero(t, e.counter.n.Load(), "no request error resolved a field")
		for _, a := range accepts {
			status, mediaType, body := specRequest(t, ran.h, method, a.accept, "{ plans { id } }", nil)
			require.Equal(t, http.StatusOK, status, "%s accepting %s", method, a.accept)
			require.Equal(t, a.mediaType, mediaType)
			require.JSONEq(t, `{"plans":[{"id":"plan-1"}]}`, string(body["data"]))
		}
	}
	require.Positive(t, ran.counter.n.Load())
}

// TestARequestWithoutAQueryIs400: a body with no query and no persisted query's
// hash (a misspelt key) is not a GraphQL-over-HTTP request: 400 BAD_REQUEST under
// either media type, over POST and GET, and nothing runs. A hash alone is a
// request (the persisted-query protocol): the server answers that it does not
// know it, 200 under application/json.
func TestARequestWithoutAQueryIs400(t *testing.T) {
	t.Parallel()
	e := newTestEndpoint(t, HandlerConfig{})
	for _, accept := range []string{"", "application/json", "application/graphql-response+json"} {
		for _, body := range []string{`{"qeury": "{ __typename }"}`, `{}`, `{"query": "", "variables": {}}`} {
			req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", accept)
			res := e.do(req, customer)
			require.Equal(t, http.StatusBadRequest, res.Status, "%s accepting %q: %s", body, accept, res.Raw)
			require.Equal(t, models.CodeBadRequest, res.code())
			require.NotContains(t, res.Raw, `"data"`)
		}
		for _, params := range []string{"qeury=%7B__typename%7D", "extensions=%7B%7D", "extensions=%7B%22persistedQuery%22%3Anull%7D"} {
			req := httptest.NewRequest(http.MethodGet, "/graphql?"+params, nil)
			req.Header.Set("Accept", accept)
			res := e.do(req, nil)
			require.Equal(t, http.StatusBadRequest, res.Status, "GET %s accepting %q: %s", params, accept, res.Raw)
			require.Equal(t, models.CodeBadRequest, res.code(), "GET %s accepting %q: %s", params, accept, res.Raw)
		}
	}
	require.Zero(t, e.counter.n.Load(), "nothing ran")

	res := e.post(`{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "`+strings.Repeat("ab", 32)+`"}}}`, nil)
	require.Equal(t, http.StatusOK, res.Status, res.Raw)
	require.Equal(t, "PERSISTED_QUERY_NOT_FOUND", res.code())
}
