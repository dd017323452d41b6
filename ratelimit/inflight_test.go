package ratelimit

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// heldHandler holds every request until released, so tests choose what is in flight.
type heldHandler struct {
	entered chan struct{}
	release chan struct{}
}

func newHeldHandler() *heldHandler {
	return &heldHandler{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (h *heldHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.entered <- struct{}{}
	<-h.release
	w.WriteHeader(http.StatusOK)
}

func TestInFlightPerCallerAndAddress(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(t, Config{InFlightPerCaller: 2, InFlightPerAddress: 3})
	held := newHeldHandler()
	h := l.InFlight(held)
	serve := func(ctx context.Context) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/graphql", nil).WithContext(ctx))
		return rec
	}
	var wg sync.WaitGroup
	hold := func(ctx context.Context) {
		wg.Go(func() {
			if rec := serve(ctx); rec.Code != http.StatusOK {
				t.Errorf("a held request was refused: %d", rec.Code)
			}
		})
		<-held.entered
	}
	requireRefused := func(ctx context.Context, why string) {
		t.Helper()
		rec := serve(ctx)
		require.Equal(t, http.StatusTooManyRequests, rec.Code, why)
		require.Equal(t, "1", rec.Header().Get("Retry-After"), why)
		var body struct {
			Errors []struct {
				Extensions map[string]any `json:"extensions"`
			} `json:"errors"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		require.Equal(t, "RATE_LIMITED", body.Errors[0].Extensions["code"], why)
		require.EqualValues(t, 1, body.Errors[0].Extensions["retryAfter"], why)
	}

	alice := callerCtx("alice", "192.0.2.1")
	hold(alice)
	hold(alice)
	requireRefused(alice, "alice has two in flight")
	requireRefused(callerCtx("alice", "198.51.100.7"), "the same principal from another address")

	bob := callerCtx("bob", "192.0.2.1")
	hold(bob)
	requireRefused(callerCtx("carol", "192.0.2.1"), "the address has three in flight, whoever the callers")
	requireRefused(callerCtx("", "192.0.2.1"), "anonymous on that address too")

	anon := callerCtx("", "203.0.113.9")
	hold(anon)
	hold(anon)
	requireRefused(anon, "anonymous callers are their address")
	require.Equal(t, 5.0, testutil.ToFloat64(l.refused.WithLabelValues("inflight")))

	close(held.release)
	wg.Wait()
	require.Zero(t, l.inFlight.inFlightCount(), "nothing is kept once the requests are done")
	rec := serve(alice) // released requests free their slots
	require.Equal(t, http.StatusOK, rec.Code)
}
