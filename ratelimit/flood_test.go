package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/clientip"
)

// pauses records the pauses a limiter takes instead of sleeping.
type pauses struct {
	mu  sync.Mutex
	got []time.Duration
}

func (p *pauses) sleep(_ context.Context, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, d)
}

func (p *pauses) taken() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Duration(nil), p.got...)
}

// A client over its /graphql address allowance gets its refusal after the flood
// pause, so resending at once cannot keep the cores busy with refusals; requests
// within the allowance and the webhook route's refusals are never paused, and once
// floodSlots refusals wait the rest are written at once.
func TestFloodingClientsAreAnsweredAfterAPause(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(t, Config{Address: PerMinute(2), Webhook: PerMinute(2)}) // bursts of 1
	p := &pauses{}
	l.sleep = p.sleep
	send := func(scope Scope, remote string) int {
		h := clientip.Resolver{}.Middleware(l.PerAddress(scope, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
		req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}

	require.Equal(t, http.StatusOK, send(ScopeAddress, "192.0.2.1:1"))
	require.Empty(t, p.taken(), "a request within the allowance is not paused")
	require.Equal(t, http.StatusTooManyRequests, send(ScopeAddress, "192.0.2.1:2"))
	require.Equal(t, []time.Duration{DefaultFloodPause}, p.taken(), "the refusal waits the flood pause")

	require.Equal(t, http.StatusOK, send(ScopeWebhook, "192.0.2.9:1"))
	require.Equal(t, http.StatusTooManyRequests, send(ScopeWebhook, "192.0.2.9:2"))
	require.Len(t, p.taken(), 1, "the webhook route's refusal is not paused")

	for range floodSlots {
		l.floods <- struct{}{}
	}
	require.Equal(t, http.StatusTooManyRequests, send(ScopeAddress, "192.0.2.1:3"))
	require.Len(t, p.taken(), 1, "with every slot taken the refusal is written at once")
}

// The pause never outlasts the refusal's Retry-After, and a negative FloodPause turns
// it off.
func TestFloodPauseBounds(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(t, Config{Address: PerMinute(2), FloodPause: time.Hour})
	p := &pauses{}
	l.sleep = p.sleep
	l.holdFlood(context.Background(), &Refusal{RetryAfter: 2 * time.Second})
	require.Equal(t, []time.Duration{2 * time.Second}, p.taken())

	off, _ := newTestLimiter(t, Config{FloodPause: -1})
	q := &pauses{}
	off.sleep = q.sleep
	off.holdFlood(context.Background(), &Refusal{RetryAfter: 30 * time.Second})
	require.Empty(t, q.taken())
}
