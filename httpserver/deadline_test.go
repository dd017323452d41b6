package httpserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
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
