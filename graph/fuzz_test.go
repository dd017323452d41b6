package graph

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzGraphQLRequest posts arbitrary bodies to the GraphQL endpoint as production
// builds it (transports, complexity limit, directives, error presenter, recover
// function), over resolvers that panic for everything but Query.plans. Whatever the
// body: no panic escapes, the status is never 5xx, and the answer is one JSON object
// with data or errors. Seeds: testdata/fuzz/FuzzGraphQLRequest.
func FuzzGraphQLRequest(f *testing.F) {
	for _, s := range []string{
		`{"query":"{ plans { id name price { amount currency } } }"}`,
		`{"query":"query Q($a: Int) { adminSubscriptions(first: $a) { edges { cursor } } }","variables":{"a":"x"}}`,
		`{"query":"mutation { createPlan(input: {name: \"a\"}) { plan { id } } }"}`,
		`{"query":"{ __schema { types { name } } }"}`,
		`{"query":"{ plans { ...F } } fragment F on Plan { ...F }"}`,
		`{"query":"{ plans { id } }","operationName":"Nope","extensions":{"persistedQuery":{"version":1,"sha256Hash":"00"}}}`,
		`[{"query":"{ plans { id } }"}]`,
		`{"query":`,
		`{"query":null,"variables":[1,2]}`,
		"",
	} {
		f.Add([]byte(s))
	}
	m := NewMetrics(nil)
	h := newStubServer(f, m)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := post(t, h, string(body))
		if rec.Code >= 500 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer is not a JSON object: %q", rec.Body.String())
		}
		_, hasData := out["data"]
		_, hasErrors := out["errors"]
		if !hasData && !hasErrors {
			t.Fatalf("answer has neither data nor errors: %q", rec.Body.String())
		}
		if rec.Code != http.StatusOK && !hasErrors {
			t.Fatalf("status %d without errors", rec.Code)
		}
	})
}
