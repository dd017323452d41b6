package ratelimit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// Busy bounds the requests in flight from all callers together: past the bound a
// request is refused at once with 503 and Retry-After, whoever sends it. A
// WebSocket upgrade takes no slot and is passed on even when every slot is taken;
// a POST carrying the upgrade headers is no upgrade.
func TestBusyBoundsEveryCallerTogether(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(t, Config{InFlightTotal: 2})
	held := newHeldHandler()
	h := l.Busy(held)
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	post := func(sub string) *http.Request {
		return httptest.NewRequest(http.MethodPost, "/graphql", nil).WithContext(callerCtx(sub, "192.0.2.1"))
	}
	var wg sync.WaitGroup
	for _, who := range []string{"alice", "bob"} {
		wg.Go(func() {
			if rec := serve(post(who)); rec.Code != http.StatusOK {
				t.Errorf("a held request was refused: %d", rec.Code)
			}
		})
		<-held.entered
	}

	rec := serve(post("carol"))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, "a third caller, within its own share")
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	var body struct {
		Errors []struct {
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Equal(t, "SERVER_BUSY", body.Errors[0].Extensions["code"])
	require.EqualValues(t, 1, body.Errors[0].Extensions["retryAfter"])

	lookalike := post("carol")
	lookalike.Header.Set("Connection", "Upgrade")
	lookalike.Header.Set("Upgrade", "websocket")
	require.Equal(t, http.StatusServiceUnavailable, serve(lookalike).Code, "a POST is never an upgrade")
	require.Equal(t, 2.0, testutil.ToFloat64(l.refused.WithLabelValues(string(ScopeBusy))))

	upgrade := httptest.NewRequest(http.MethodGet, "/graphql", nil).WithContext(callerCtx("carol", "192.0.2.1"))
	upgrade.Header.Set("Connection", "Upgrade")
	upgrade.Header.Set("Upgrade", "websocket")
	wg.Go(func() { serve(upgrade) })
	<-held.entered // passed on, though every slot is taken
	require.Len(t, l.total, 2, "the upgrade took no slot")

	close(held.release)
	wg.Wait()
	require.Empty(t, l.total, "slots are freed when the requests end")
	require.Equal(t, http.StatusOK, serve(post("carol")).Code)
}
