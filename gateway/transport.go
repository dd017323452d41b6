package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/scoville/scoville/tracing"
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

// send is one request on the wire, timed until its headers arrive, and inside a
// recording span (package tracing) a span of its own named after its method and
// endpoint pattern: no id, query, body or header goes in it but Stripe's Request-Id.
func (tt *tracingTransport) send(req *http.Request) (*http.Response, error) {
	start := time.Now()
	span := startSpan(req)
	res, err := tt.next.RoundTrip(req)
	status := 0
	if err == nil {
		status = res.StatusCode
	}
	tt.metrics.observeRequest(req, status, time.Since(start))
	if span != nil {
		endSpan(span, res, status)
	}
	return res, err
}

func startSpan(req *http.Request) trace.Span {
	tracer, ok := tracing.ChildTracer(req.Context())
	if !ok {
		return nil
	}
	endpoint := EndpointPattern(req.URL.Path)
	method := requestMethod(req.Method)
	_, span := tracer.Start(req.Context(), "stripe "+method+" "+endpoint, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", method),
			attribute.String("url.template", endpoint),
			attribute.String("server.address", req.URL.Hostname()),
		))
	return span
}

func endSpan(span trace.Span, res *http.Response, status int) {
	defer span.End()
	if res == nil {
		span.SetStatus(codes.Error, "no answer")
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if id := res.Header.Get("Request-Id"); strings.HasPrefix(id, "req_") && len(id) <= 64 {
		span.SetAttributes(attribute.String("stripe.request_id", id))
	}
	if status >= 400 {
		span.SetStatus(codes.Error, strconv.Itoa(status))
	}
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
