package httpserver_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
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
