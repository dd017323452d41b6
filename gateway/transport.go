package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// callTrace records what happened on the wire during one gateway call, because
// stripe-go's errors do not say whether a failure came before or after an answer
// (a 502 page from a proxy and a dropped connection look alike there).
type callTrace struct {
	mu          sync.Mutex
	attempts    int    // HTTP requests sent
	status      int    // of the last attempt; 0 when no answer arrived
	requestID   string // Stripe's Request-Id of the last answer
	shouldRetry string // Stripe-Should-Retry of the last answer: "", "true" or "false"
	bodyFailed  bool   // the last answer's body could not be read in full
}

type traceKey struct{}

func withTrace(ctx context.Context, t *callTrace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// snapshot of the last attempt, read after stripe-go returns.
type attemptInfo struct {
	attempts    int
	status      int
	requestID   string
	shouldRetry string
	bodyFailed  bool
}

func (t *callTrace) last() attemptInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return attemptInfo{t.attempts, t.status, t.requestID, t.shouldRetry, t.bodyFailed}
}

// tracingTransport fills the callTrace found in the request context and counts
// every request in metrics (nil: not counted).
type tracingTransport struct {
	next    http.RoundTripper
	metrics *Metrics
}

func (tt *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t, _ := req.Context().Value(traceKey{}).(*callTrace)
	if t == nil {
		return tt.send(req)
	}
	t.mu.Lock()
	t.attempts++
	t.status, t.requestID, t.shouldRetry, t.bodyFailed = 0, "", "", false
	t.mu.Unlock()

	res, err := tt.send(req)
	if err != nil {
		return res, err
	}
	t.mu.Lock()
	t.status = res.StatusCode
	t.requestID = res.Header.Get("Request-Id")
	t.shouldRetry = res.Header.Get("Stripe-Should-Retry")
	t.mu.Unlock()
	res.Body = &tracedBody{ReadCloser: res.Body, t: t}
	return res, nil
}

// send is one request on the wire, timed until its headers arrive.
func (tt *tracingTransport) send(req *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := tt.next.RoundTrip(req)
	status := 0
	if err == nil {
		status = res.StatusCode
	}
	tt.metrics.observeRequest(req, status, time.Since(start))
	return res, err
}

// tracedBody marks a body that broke off mid-read (a timeout or reset after the
// headers), which is a network failure, not a malformed answer.
type tracedBody struct {
	io.ReadCloser
	t *callTrace
}

func (b *tracedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.t.mu.Lock()
		b.t.bodyFailed = true
		b.t.mu.Unlock()
	}
	return n, err
}
