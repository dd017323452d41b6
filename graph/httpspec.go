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
//     which says execution started and produced null).
//
// gqlgen sets a status only on its request-error paths (an executed operation's
// status is the implicit 200), so an explicit status is what marks one.
type specAnswer struct {
	http.ResponseWriter
	requestError bool
}

func (w *specAnswer) WriteHeader(code int) {
	w.requestError = true
	if code == http.StatusUnprocessableEntity && answersJSON(w.Header()) {
		code = http.StatusOK
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *specAnswer) Write(b []byte) (int, error) {
	if !w.requestError {
		return w.ResponseWriter.Write(b)
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(b, &resp); err != nil || !bytes.Equal(resp["data"], []byte("null")) {
		return w.ResponseWriter.Write(b)
	}
	delete(resp, "data")
	out, err := json.Marshal(resp)
	if err != nil {
		return w.ResponseWriter.Write(b)
	}
	if _, err := w.ResponseWriter.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
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

// specGET is gqlgen's GET transport with specAnswer's statuses and bodies.
type specGET struct{ transport.GET }

func (t specGET) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if q := r.URL.Query(); q.Get("query") == "" && q.Get("extensions") == "" {
		writeNoQuery(w)
		return
	}
	t.GET.Do(&specAnswer{ResponseWriter: w}, r, exec)
}

// writeNoQuery refuses a request that carries neither a query nor a persisted
// query's hash: it is not a GraphQL-over-HTTP request at all, so 400 under either
// media type (a misspelt "query" key, say).
func writeNoQuery(w http.ResponseWriter) {
	WriteRequestError(w, http.StatusBadRequest, models.CodeBadRequest,
		`the request has no query: send {"query": ...} or a persisted query's extensions.persistedQuery`)
}
