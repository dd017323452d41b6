package ratelimit

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/scoville/scoville/httpserver"
	"github.com/scoville/scoville/models"
)

// ScopeInFlight is a request refused because its caller or address already has as
// many requests in flight as allowed.
const ScopeInFlight Scope = "inflight"

// inFlightRetry is the retryAfter of such a refusal: a request in flight ends soon
// (every request is bounded), so the client may try again after a moment.
const inFlightRetry = time.Second

// Default in-flight allowances (RATE_LIMIT_INFLIGHT_* in README).
const (
	DefaultInFlightPerCaller  = 8
	DefaultInFlightPerAddress = 32
)

// inFlight counts the requests in flight per key. Only keys with a request in flight
// are kept, so its memory is bounded by the requests being served.
type inFlight struct {
	perCaller, perAddress int

	mu     sync.Mutex
	caller map[string]int
	addr   map[string]int
}

func newInFlight(perCaller, perAddress int) *inFlight {
	if perCaller <= 0 {
		perCaller = DefaultInFlightPerCaller
	}
	if perAddress <= 0 {
		perAddress = DefaultInFlightPerAddress
	}
	return &inFlight{perCaller: perCaller, perAddress: perAddress, caller: map[string]int{}, addr: map[string]int{}}
}

// enter takes a slot for caller and address, or neither.
func (f *inFlight) enter(caller, addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.caller[caller] >= f.perCaller || f.addr[addr] >= f.perAddress {
		return false
	}
	f.caller[caller]++
	f.addr[addr]++
	return true
}

func (f *inFlight) leave(caller, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	release(f.caller, caller)
	release(f.addr, addr)
}

func release(m map[string]int, key string) {
	if m[key] <= 1 {
		delete(m, key)
		return
	}
	m[key]--
}

// InFlight bounds the requests one caller (the principal, or the client address when
// anonymous) and one client address have in flight at once, so slow requests cannot
// pile up behind one attacker. A request over either bound is refused at once, before
// its body is read: 429, Retry-After and RATE_LIMITED with retryAfter, counted in
// scoville_rate_limited_total{scope="inflight"}. It must run after authentication,
// which puts the principal in the request's context.
func (l *Limiter) InFlight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := addressKey(r.Context())
		caller := callerKey(r.Context(), addr)
		if !l.inFlight.enter(caller, addr) {
			l.refused.WithLabelValues(string(ScopeInFlight)).Inc()
			WriteRefusal(w, &Refusal{Scope: ScopeInFlight, RetryAfter: inFlightRetry})
			return
		}
		defer l.inFlight.leave(caller, addr)
		next.ServeHTTP(w, r)
	})
}

// inFlightCount is the number of keys with a request in flight, for tests of the
// memory bound.
func (f *inFlight) inFlightCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.caller) + len(f.addr)
}

// ScopeBusy is a request refused because the server already has as many requests
// in flight, from all callers together, as it takes (Busy).
const ScopeBusy Scope = "busy"

// DefaultInFlightTotal is the bound of Busy when none is configured
// (RATE_LIMIT_INFLIGHT_TOTAL).
const DefaultInFlightTotal = 256

func newTotal(n int) chan struct{} {
	if n <= 0 {
		n = DefaultInFlightTotal
	}
	return make(chan struct{}, n)
}

// Busy bounds the requests in flight at once from all callers together, beyond
// each caller's and address's share (InFlight): many callers, each within their
// own, cannot together hold every goroutine and database connection. A request
// over the bound is refused at once, before its body is read and before any
// authentication, never queued: 503, Retry-After and SERVER_BUSY with
// retryAfter, counted in scoville_rate_limited_total{scope="busy"}. A WebSocket
// upgrade (httpserver.WebSocketUpgrade) is passed on without taking a slot: its
// connection lives long, and its operations are bounded where they run.
func (l *Limiter) Busy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if httpserver.WebSocketUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case l.total <- struct{}{}:
		default:
			l.refused.WithLabelValues(string(ScopeBusy)).Inc()
			secs := int(inFlightRetry / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, `{"errors":[{"message":%q,"extensions":{"code":%q,"retryAfter":%d}}]}`+"\n",
				"the server is busy; retry in a moment", models.CodeServerBusy, secs)
			return
		}
		defer func() { <-l.total }()
		next.ServeHTTP(w, r)
	})
}
