package httpserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/httpserver"
)

// A request past its deadline is answered with REQUEST_TIMEOUT, and the handler's
// context ends then, so its work stops; what it writes afterwards is dropped.
func TestDeadlineStopsTheRequestAndSaysSo(t *testing.T) {
	t.Parallel()
	stopped := make(chan error, 1)
	h := httpserver.Deadline(50*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		stopped <- r.Context().Err()
		_, _ = w.Write([]byte(`{"data":{"late":true}}`))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/graphql", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var body struct {
		Errors []struct {
			Message    string
			Extensions map[string]any
		}
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	require.Len(t, body.Errors, 1)
	require.Equal(t, "REQUEST_TIMEOUT", body.Errors[0].Extensions["code"])
	require.True(t, errors.Is(<-stopped, context.DeadlineExceeded), "the handler's context ended at the deadline")
	require.NotContains(t, rec.Body.String(), "late")
}

// A request that ends in time is answered as its handler answered.
func TestDeadlinePassesAnAnswerInTime(t *testing.T) {
	t.Parallel()
	h := httpserver.Deadline(time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok := r.Context().Deadline()
		require.True(t, ok)
		w.Header().Set("Content-Type", "application/graphql-response+json")
		_, _ = w.Write([]byte(`{"data":{}}`))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/graphql", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/graphql-response+json", rec.Header().Get("Content-Type"))
	require.JSONEq(t, `{"data":{}}`, rec.Body.String())
}

// A WebSocket upgrade is passed on as it came: no deadline on its context, and
// the connection's own writer (a hijacker), not a buffer. Look-alikes are not
// upgrades: a POST with the headers, or a GET without Connection: upgrade.
func TestDeadlineLeavesWebSocketUpgradesAlone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		method  string
		headers map[string]string
		upgrade bool
	}{
		{"upgrade", http.MethodGet, map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, true},
		{"upgrade, tokens in lists and any case", http.MethodGet, map[string]string{"Connection": "keep-alive, Upgrade", "Upgrade": "WebSocket"}, true},
		{"POST with the headers", http.MethodPost, map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, false},
		{"no Connection: upgrade", http.MethodGet, map[string]string{"Upgrade": "websocket"}, false},
		{"another protocol", http.MethodGet, map[string]string{"Connection": "Upgrade", "Upgrade": "h2c"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hasDeadline, hijacker bool
			h := httpserver.Deadline(time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, hasDeadline = r.Context().Deadline()
				_, hijacker = w.(http.Hijacker)
			}))
			req := httptest.NewRequest(tc.method, "/graphql", nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			h.ServeHTTP(hijackRecorder{httptest.NewRecorder()}, req)
			require.Equal(t, tc.upgrade, httpserver.WebSocketUpgrade(req))
			require.Equal(t, !tc.upgrade, hasDeadline, "deadline")
			require.Equal(t, tc.upgrade, hijacker, "the connection's own writer")
		})
	}
}

// hijackRecorder is a recorder that can be hijacked, as a server's writer can.
type hijackRecorder struct{ *httptest.ResponseRecorder }

func (hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errors.New("not a connection")
}

// The answer leaves at the deadline, complete, while a handler that ignores its
// context still runs; what the handler writes after it is refused.
func TestDeadlineAnswersWhileTheHandlerStillRuns(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var returned atomic.Bool
	late := make(chan error, 1)
	srv := httptest.NewServer(httpserver.Deadline(20*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer returned.Store(true)
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
		_, err := w.Write([]byte(`{"data":{"late":true}}`))
		late <- err
	})))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	resp, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.False(t, returned.Load(), "the answer came before the handler returned")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	requireTimeoutBody(t, b)

	close(release)
	require.ErrorIs(t, <-late, http.ErrHandlerTimeout)
}

// The handler's answer and the deadline race at the worst points: the handler
// writes as its context ends, or returns then, or returns about at the deadline.
// A handler that returns after the deadline has not answered in time; the client
// gets exactly one answer, whole, and nothing reaches the writer after ServeHTTP
// returned.
func TestDeadlineRaceAtTheDeadlineGivesOneWholeAnswer(t *testing.T) {
	t.Parallel()
	for i := range 300 {
		var h http.Handler
		late := i%3 != 2
		switch i % 3 {
		case 0:
			// Writes as the context ends.
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
				w.Header().Set("Content-Type", "application/graphql-response+json")
				_, _ = w.Write([]byte(`{"data":{}}`))
			})
		case 1:
			// Has written, and returns as the context ends.
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/graphql-response+json")
				_, _ = w.Write([]byte(`{"data":{}}`))
				<-r.Context().Done()
			})
		default:
			// Returns about when the deadline comes: before or after.
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/graphql-response+json")
				_, _ = w.Write([]byte(`{"data":{}}`))
				deadline, _ := r.Context().Deadline()
				for time.Now().Before(deadline) {
				}
			})
		}
		rec := &guardedRecorder{ResponseRecorder: httptest.NewRecorder()}
		httpserver.Deadline(time.Millisecond, h).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/graphql", nil))
		rec.end()
		switch rec.Code {
		case http.StatusOK:
			require.False(t, late, "a handler that returned after its deadline was answered for")
			require.Equal(t, "application/graphql-response+json", rec.Header().Get("Content-Type"))
			require.JSONEq(t, `{"data":{}}`, rec.Body.String())
		case http.StatusServiceUnavailable:
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			requireTimeoutBody(t, rec.Body.Bytes())
		default:
			t.Fatalf("status %d", rec.Code)
		}
	}
}

// A handler's panic is passed on; before the deadline nothing was answered (the
// caller's recovery answers), after it the deadline's answer stands.
func TestDeadlinePassesPanicsOn(t *testing.T) {
	t.Parallel()
	t.Run("before the deadline", func(t *testing.T) {
		t.Parallel()
		var ctx context.Context
		h := httpserver.Deadline(20*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx = r.Context()
			_, _ = w.Write([]byte(`{"data":{}}`))
			panic("boom")
		}))
		rec := &guardedRecorder{ResponseRecorder: httptest.NewRecorder()}
		require.PanicsWithValue(t, "boom", func() {
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/graphql", nil))
		})
		rec.end()
		<-ctx.Done()
		// Past the deadline too: a deadline answer would come now, and must not.
		time.Sleep(40 * time.Millisecond)
		require.Equal(t, 0, rec.writes(), "nothing was answered")
	})
	t.Run("after the deadline", func(t *testing.T) {
		t.Parallel()
		h := httpserver.Deadline(time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			for {
				// The deadline's answer is out once a write is refused.
				if _, err := w.Write([]byte("x")); err != nil {
					panic("boom")
				}
				time.Sleep(time.Millisecond)
			}
		}))
		rec := &guardedRecorder{ResponseRecorder: httptest.NewRecorder()}
		require.PanicsWithValue(t, "boom", func() {
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/graphql", nil))
		})
		rec.end()
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		requireTimeoutBody(t, rec.Body.Bytes())
	})
}

// A handler cannot push part of its answer out before it returns: the answer is
// buffered whole, so a flush is refused and the answer comes once, at the end.
func TestDeadlineRefusesFlushes(t *testing.T) {
	t.Parallel()
	var flushErr error
	h := httpserver.Deadline(time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"data":`))
		flushErr = http.NewResponseController(w).Flush()
		_, _ = w.Write([]byte(`{}}`))
	}))
	rec := &guardedRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/graphql", nil))
	rec.end()
	require.ErrorIs(t, flushErr, http.ErrNotSupported)
	require.False(t, rec.Flushed)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.JSONEq(t, `{"data":{}}`, rec.Body.String())
}

// A client that goes away gets 503 without a body, as http.TimeoutHandler
// answered; the handler's context is canceled, not past its deadline.
func TestDeadlineClientGone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var handlerErr error
	h := httpserver.Deadline(time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
		handlerErr = r.Context().Err()
		_, _ = w.Write([]byte(`{"data":{}}`))
	}))
	rec := &guardedRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/graphql", nil).WithContext(ctx))
	rec.end()
	require.ErrorIs(t, handlerErr, context.Canceled)
	// The client's going and the handler's answer race: either is one whole answer.
	if rec.Code == http.StatusServiceUnavailable {
		require.Empty(t, rec.Body.String())
	} else {
		require.JSONEq(t, `{"data":{}}`, rec.Body.String())
	}
}

func requireTimeoutBody(t *testing.T, b []byte) {
	t.Helper()
	var body struct {
		Errors []struct {
			Message    string
			Extensions map[string]any
		}
	}
	require.NoError(t, json.Unmarshal(b, &body), string(b))
	require.Len(t, body.Errors, 1)
	require.Equal(t, "REQUEST_TIMEOUT", body.Errors[0].Extensions["code"])
}

// guardedRecorder is a recorder that fails the test when it is written to after
// the handler that holds it returned (end), and counts the writes before.
type guardedRecorder struct {
	*httptest.ResponseRecorder
	mu    sync.Mutex
	ended bool
	n     int
}

func (g *guardedRecorder) use() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended {
		panic("written after ServeHTTP returned")
	}
	g.n++
}

func (g *guardedRecorder) end() {
	g.mu.Lock()
	g.ended = true
	g.mu.Unlock()
}

func (g *guardedRecorder) writes() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

func (g *guardedRecorder) WriteHeader(code int) {
	g.use()
	g.ResponseRecorder.WriteHeader(code)
}

func (g *guardedRecorder) Write(b []byte) (int, error) {
	g.use()
	return g.ResponseRecorder.Write(b)
}

func (g *guardedRecorder) Flush() {
	g.use()
	g.ResponseRecorder.Flush()
}

// An informational status (103 Early Hints) is not the answer's status: the
// handler's final status, written after it, is the one the client gets.
func TestDeadlineInformationalStatusIsNotTheAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(httpserver.Deadline(time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.js>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(`{"data":null}`))
	})))
	defer srv.Close()
	res, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusTeapot, res.StatusCode)
	require.JSONEq(t, `{"data":null}`, string(body))
}

// A writer kept by a goroutine of a handler that returned writes nothing once the
// answer is sent: the pooled buffer its answer was made in serves the next
// requests, whose answers stay whole while it keeps writing.
func TestDeadlineWriterKeptPastItsRequestWritesNothing(t *testing.T) {
	t.Parallel()
	kept := make(chan http.ResponseWriter, 1)
	h := httpserver.Deadline(time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/keeps" {
			_, _ = w.Write([]byte(`{"data":{"first":true}}`))
			kept <- w
			return
		}
		_, _ = w.Write([]byte(`{"data":{"next":true}}`))
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/keeps", nil))
	w := <-kept
	var late sync.WaitGroup
	var wrote atomic.Int64
	late.Go(func() {
		for range 2000 {
			n, _ := w.Write([]byte("LATE"))
			wrote.Add(int64(n))
		}
	})
	for range 200 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
		require.Equal(t, `{"data":{"next":true}}`, rec.Body.String())
	}
	late.Wait()
	require.Zero(t, wrote.Load())
}
