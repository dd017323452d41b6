// Package clientip owns the question "which address did this request come from?". A
// forwarding header is believed only when the peer that sent it is a configured
// trusted proxy (TRUSTED_PROXIES), so a client cannot pick its own address to dodge a
// rate limit or pollute the audit log.
package clientip

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/scoville/scoville/requestscope"
)

var addrSlot = requestscope.NewSlot()

// Resolver finds the client address of a request behind zero or more trusted proxies.
type Resolver struct {
	Trusted []netip.Prefix
}

// Middleware puts the client address in the request's context for rate limits, logs
// and the audit log.
func (r Resolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ip := r.Resolve(req)
		next.ServeHTTP(w, requestscope.Set(req, addrSlot, ip))
	})
}

// Resolve walks X-Forwarded-For from the right, skipping trusted proxies; the first
// untrusted hop is the client. A peer that is not trusted is the client itself,
// whatever headers it sent.
func (r Resolver) Resolve(req *http.Request) netip.Addr {
	peer := peerAddr(req.RemoteAddr)
	if !r.trusted(peer) {
		return peer
	}
	hops := forwardedHops(req.Header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a malformed hop: believe nothing left of it
		}
		a = a.Unmap()
		if !r.trusted(a) {
			return a
		}
		peer = a
	}
	return peer
}

func (r Resolver) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range r.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func forwardedHops(values []string) []string {
	var hops []string
	for _, v := range values {
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	return hops
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// From returns the client address the middleware found; invalid when there is none
// (a background job, a test without the middleware).
func From(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(addrSlot).(netip.Addr)
	return a
}

// With returns a context carrying a; for callers outside HTTP, such as tests.
func With(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, addrSlot, a)
}
