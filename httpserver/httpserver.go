// Package httpserver owns the HTTP plumbing shared by every route: request ids, access
// logs, panic recovery, health and readiness probes, metrics, and a server that shuts
// down gracefully.
package httpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scoville/scoville/logging"
	"github.com/scoville/scoville/metrics"
)

// RequestIDHeader carries the request id in and out, so a client or a proxy can
// correlate a request with our logs.
const RequestIDHeader = "X-Request-Id"

// validRequestID bounds what we accept from a caller before it reaches our logs.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// RequestID gives each request an id (the caller's when well-formed, else a new one),
// puts it in the context for log lines and echoes it in the response.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID.MatchString(id) {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, logging.WithRequestIDOn(r, id))
	})
}

// statusRecorder remembers the status and size written, for logs and metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Metrics are the HTTP-level Prometheus series.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers the HTTP series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		requests: metrics.CounterVec(reg, "scoville_http_requests_total", "HTTP requests by route and status code.", "route", "code"),
		latency: metrics.HistogramVec(reg, "scoville_http_request_duration_seconds", "HTTP request latency by route.",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "route"),
	}
}

// Observe wraps a route: it recovers panics as 500, logs one line per request (method,
// route, status, size, duration; never the query string, headers or body) and records
// metrics under the fixed route name, so paths never explode label cardinality.
func Observe(route string, logger *slog.Logger, m *Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.ErrorContext(r.Context(), "http: panic", "route", route, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					http.Error(rec, "internal error", http.StatusInternalServerError)
				}
			}
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			elapsed := time.Since(start)
			if m != nil {
				m.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
				m.latency.WithLabelValues(route).Observe(elapsed.Seconds())
			}
			if logger.Enabled(r.Context(), slog.LevelInfo) { // else the line's arguments are not even built
				logger.InfoContext(r.Context(), "http request", "method", r.Method, "route", route,
					"status", rec.status, "bytes", rec.bytes, "duration_ms", float64(elapsed.Microseconds())/1000)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// securityHeaders are what every response carries unless its handler chose its own
// value (the Playground sets its own Content-Security-Policy and caching):
//   - HSTS: browsers use https only (TLS ends in front of the service; the header is
//     ignored over plain http, so development is unaffected);
//   - nosniff, and no framing (X-Frame-Options and CSP frame-ancestors);
//   - no Referer leaves a page of ours;
//   - a CSP that lets an API answer load nothing and run nothing if a browser ever
//     renders it;
//   - no browser feature (camera, payment, ...) for our pages;
//   - no caching of answers that may hold personal data.
//
// Keys are canonical and each value is a slice made once, with room for that one
// value only: every response shares it (no allocation per header), and a later Add
// copies it instead of writing into the shared array.
var securityHeaders = []struct {
	key   string
	value []string
}{
	{"Strict-Transport-Security", one("max-age=63072000; includeSubDomains")},
	{"X-Content-Type-Options", one("nosniff")},
	{"X-Frame-Options", one("DENY")},
	{"Referrer-Policy", one("no-referrer")},
	{"Content-Security-Policy", one("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")},
	{"Permissions-Policy", one("accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()")},
	{"Cross-Origin-Opener-Policy", one("same-origin")},
	{"Cache-Control", one("no-store")},
}

func one(v string) []string { return []string{v}[:1:1] }

// SecurityHeaders puts securityHeaders on every response, when the response is
// written, and only those its handler did not set itself: a handler's own policy
// (the Playground's CSP) always wins, however it set it.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &headerDefaults{ResponseWriter: w}
		next.ServeHTTP(hw, r)
		hw.apply() // a handler that wrote nothing still gets them
	})
}

// headerDefaults fills in securityHeaders just before the header is sent.
type headerDefaults struct {
	http.ResponseWriter
	applied bool
}

func (h *headerDefaults) apply() {
	if h.applied {
		return
	}
	h.applied = true
	hdr := h.Header()
	for _, kv := range securityHeaders {
		if _, set := hdr[kv.key]; !set {
			hdr[kv.key] = kv.value
		}
	}
}

func (h *headerDefaults) WriteHeader(code int) {
	h.apply()
	h.ResponseWriter.WriteHeader(code)
}

func (h *headerDefaults) Write(b []byte) (int, error) {
	h.apply()
	return h.ResponseWriter.Write(b)
}

func (h *headerDefaults) Flush() {
	h.apply()
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (h *headerDefaults) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Healthz answers 200 while the process serves: liveness, no dependencies checked.
func Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// Readyz answers 200 only when ping succeeds within two seconds, else 503, so a load
// balancer stops sending traffic while the database is away. The route is open to
// anyone and not rate limited, so at most one ping runs at a time: a probe arriving
// while one runs is answered from the last result (503 before the first), and a flood
// of probes costs the database pool one connection, not one each.
func Readyz(ping func(context.Context) error, logger *slog.Logger) http.Handler {
	var (
		running = make(chan struct{}, 1)
		mu      sync.Mutex
		last    = errors.New("not checked yet")
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var err error
		select {
		case running <- struct{}{}:
			// Not the client's context: a client that hangs up must not leave a
			// failed result for the probes that follow.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
			err = ping(ctx)
			cancel()
			mu.Lock()
			last = err
			mu.Unlock()
			<-running
			if err != nil {
				logger.WarnContext(r.Context(), "readiness: database does not answer", "error", err.Error())
			}
		default:
			mu.Lock()
			err = last
			mu.Unlock()
		}
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("database unavailable\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}

// readTimeout bounds the reading of a whole request, body included.
const readTimeout = 15 * time.Second

// NewServer returns an http.Server with timeouts, so a slow or idle client cannot hold
// a connection open forever.
func NewServer(addr string, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Serve runs srv on ln until ctx ends, then stops accepting and lets in-flight requests
// finish within shutdownTimeout. It returns nil after a clean shutdown.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, shutdownTimeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
