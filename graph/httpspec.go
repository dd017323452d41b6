package graph

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/scoville/scoville/models"
)

// specAnswer makes gqlgen's HTTP answers to request errors (a document that does
// not parse or validate, variables that do not coerce, a refused document: nothing
// ran) what the GraphQL over HTTP specification asks:
//   - under application/json, status 200 for every well-formed request (gqlgen
//     answers 422; clients older than the specification read only 200 bodies);
//   - under either media type, no data entry at all (gqlgen writes "data": null,
//     which says execution started and produced null);
//   - under application/graphql-response+json, which requires a 4xx or 5xx status
//     for an answer without data, 400 where gqlgen answers 200 (a refusal whose
//     code gqlgen does not count as a request error: an unknown persisted query,
//     the introspection gate), except the rate limit's refusal, which the HTTP
//     layer turns from 200 into 429 (ratelimit.PerAddress).
//
// gqlgen sets a status only on its request-error paths (an executed operation's
// status is the implicit 200), so an explicit status is what marks one; that
// status is held until the body shows which it must be.
type specAnswer struct {
	http.ResponseWriter
	requestError bool
	status       int  // the request error's status, written with its body
	wrote        bool // the request error's status is written
	get          bool // the request is a GET
}

func (w *specAnswer) WriteHeader(code int) {
	if w.requestError {
		return
	}
	w.requestError = true
	w.status = code
	if code == http.StatusUnprocessableEntity && answersJSON(w.Header()) {
		w.status = http.StatusOK
	}
	if code == http.StatusNotAcceptable && w.get {
		// gqlgen's GET refuses a mutation with 406; the specification asks for 405.
		w.status = http.StatusMethodNotAllowed
		w.Header().Set("Allow", http.MethodPost)
	}
}

func (w *specAnswer) Write(b []byte) (int, error) {
	if !w.requestError || w.wrote {
		return w.ResponseWriter.Write(b)
	}
	w.wrote = true
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(b, &resp); err != nil {
		w.ResponseWriter.WriteHeader(w.status)
		return w.ResponseWriter.Write(b)
	}
	out := b
	if bytes.Equal(resp["data"], []byte("null")) {
		delete(resp, "data")
		if m, err := json.Marshal(resp); err == nil {
			out = m
		}
	}
	if _, data := resp["data"]; !data && w.status < 300 && !answersJSON(w.Header()) && !rateLimited(resp["errors"]) {
		w.status = http.StatusBadRequest
	}
	w.ResponseWriter.WriteHeader(w.status)
	if _, err := w.ResponseWriter.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// finish writes a request error's status that no body followed.
func (w *specAnswer) finish() {
	if w.requestError && !w.wrote {
		w.wrote = true
		w.ResponseWriter.WriteHeader(w.status)
	}
}

// rateLimited reports whether a response's errors include the rate limit's refusal.
func rateLimited(errs json.RawMessage) bool {
	var list []struct {
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	}
	_ = json.Unmarshal(errs, &list)
	for _, e := range list {
		if e.Extensions.Code == models.CodeRateLimited {
			return true
		}
	}
	return false
}

// Flush lets a streaming writer underneath flush.
func (w *specAnswer) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *specAnswer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// answersJSON reports whether the answer's media type is application/json (not
// application/graphql-response+json, whose request errors keep their 4xx).
func answersJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// specGET is gqlgen's GET transport with specAnswer's statuses and bodies, and
// 405 (Allow: POST) for a mutation, which it never runs.
type specGET struct{ transport.GET }

func (t specGET) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if q := r.URL.Query(); q.Get("query") == "" && !hasPersistedQuery(q.Get("extensions")) {
		writeNoQuery(w)
		return
	}
	sw := &specAnswer{ResponseWriter: w, get: true}
	t.GET.Do(sw, r, exec)
	sw.finish()
}

// hasPersistedQuery reports whether a GET's extensions parameter carries a
// persisted query (as the POST transport's check asks of a body's extensions).
func hasPersistedQuery(extensions string) bool {
	var ext map[string]any
	return json.Unmarshal([]byte(extensions), &ext) == nil && ext["persistedQuery"] != nil
}

// writeNoQuery refuses a request that carries neither a query nor a persisted
// query's hash: it is not a GraphQL-over-HTTP request at all, so 400 under either
// media type (a misspelt "query" key, say).
func writeNoQuery(w http.ResponseWriter) {
	WriteRequestError(w, http.StatusBadRequest, models.CodeBadRequest,
		`the request has no query: send {"query": ...} or a persisted query's extensions.persistedQuery`)
}
