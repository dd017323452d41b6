package httpserver_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/httpserver"
)

func TestServeLetsInFlightRequestsFinish(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	srv := httpserver.NewServer(ln.Addr().String(), slow, slog.New(slog.DiscardHandler))
	served := make(chan error, 1)
	go func() { served <- httpserver.Serve(ctx, srv, ln, 5*time.Second) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	cancel() // SIGTERM arrives mid-request

	require.Equal(t, "done", <-got)
	require.NoError(t, <-served)
	_, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	require.Error(t, err, "no new connections after shutdown")
}

func TestRequestIDRefusesUnsafeValues(t *testing.T) {
	t.Parallel()
	h := httpserver.RequestID(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, in := range []string{"", "short", "has space in it", "x\r\nSet-Cookie: a=b", string(make([]byte, 100))} {
		rec := &headerRecorder{h: http.Header{}}
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("X-Request-Id", in)
		h.ServeHTTP(rec, req)
		out := rec.h.Get("X-Request-Id")
		require.NotEqual(t, in, out)
		require.Len(t, out, 24)
	}
}

type headerRecorder struct{ h http.Header }

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *headerRecorder) WriteHeader(int)             {}

// TestReadyzPingsOneAtATime floods the unauthenticated, unlimited /readyz while one
// database ping is still running: every extra probe would take one of the pool's few
// connections, so an anonymous flood could starve /graphql of its database. Probes
// that arrive during a ping are answered from the last result without pinging.
func TestReadyzPingsOneAtATime(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	h := httpserver.Readyz(func(context.Context) error {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		return nil
	}, slog.New(slog.DiscardHandler))
	probe := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}

	first := make(chan int, 1)
	go func() { first <- probe() }()
	<-entered
	for range 50 {
		require.Equal(t, http.StatusServiceUnavailable, probe(), "no result yet: not ready")
	}
	require.EqualValues(t, 1, calls.Load(), "probes during a ping share it")
	close(release)
	require.Equal(t, http.StatusOK, <-first)
	require.Equal(t, http.StatusOK, probe(), "the next probe pings again")
	require.EqualValues(t, 2, calls.Load())
}

// TestReadyzIgnoresAClientHangingUp: a prober that goes away mid-ping must not leave
// a failed result for the load balancer's probes answered from it.
func TestReadyzIgnoresAClientHangingUp(t *testing.T) {
	t.Parallel()
	h := httpserver.Readyz(func(ctx context.Context) error { return ctx.Err() }, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
	require.Equal(t, http.StatusOK, rec.Code, "the database answered; the client's hang-up is not the database's")
}
