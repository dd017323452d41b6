package outbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrTargetRefused says an endpoint URL or the address it resolved to is not a
// safe target: not https in production, or a loopback, private, link-local,
// multicast or unspecified address outside the allowed networks.
var ErrTargetRefused = errors.New("outbox: webhook target refused")

// Targets decides which endpoint URLs may be called. In production an endpoint is
// https and every address it resolves to, and the address actually dialled, is a
// public one or inside Allowed; in development any http or https URL is allowed.
type Targets struct {
	Production bool
	// Allowed are networks a production target may be in although they are not
	// public (WEBHOOK_TARGET_ALLOWED_CIDRS).
	Allowed []netip.Prefix
	// RootCAs verifies receivers' certificates; nil: the system's.
	RootCAs *x509.CertPool
	// lookup resolves a host at registration; nil: the default resolver.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// maxURLLen bounds an endpoint URL.
const maxURLLen = 2048

// parse checks the URL's form: absolute http(s) (https only in production), a
// host, no user information, no fragment.
func (t Targets) parse(raw string) (*url.URL, error) {
	if len(raw) > maxURLLen {
		return nil, fmt.Errorf("%w: the URL is too long", ErrTargetRefused)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: not an absolute URL", ErrTargetRefused)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && !t.Production:
	default:
		return nil, fmt.Errorf("%w: the URL must be https", ErrTargetRefused)
	}
	if u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%w: the URL must carry no user information or fragment", ErrTargetRefused)
	}
	return u, nil
}

// Check refuses an endpoint URL that is not a safe target now: its form, and in
// production every address its host resolves to.
func (t Targets) Check(ctx context.Context, raw string) error {
	u, err := t.parse(raw)
	if err != nil || !t.Production {
		return err
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lookup := t.lookup
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		addrs, err = lookup(ctx, host)
		if err != nil || len(addrs) == 0 {
			return fmt.Errorf("%w: the host does not resolve", ErrTargetRefused)
		}
	}
	for _, a := range addrs {
		if !t.allowed(a) {
			return fmt.Errorf("%w: the host resolves to a non-public address", ErrTargetRefused)
		}
	}
	return nil
}

// allowed reports whether a production target may be at a.
func (t Targets) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.Allowed {
		if p.Contains(a) {
			return true
		}
	}
	return public(a)
}

// public reports whether a is none of loopback, private (RFC 1918, RFC 4193),
// link-local, multicast, unspecified, or the shared and reserved ranges that no
// receiver on the internet has.
func public(a netip.Addr) bool {
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// nonPublic are further ranges no receiver on the internet is in.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64 (maps IPv4, private included)
	netip.MustParsePrefix("64:ff9b:1::/48"), // local NAT64
	netip.MustParsePrefix("2002::/16"),      // 6to4 (maps IPv4)
	netip.MustParsePrefix("100::/64"),       // discard
	netip.MustParsePrefix("::ffff:0:0/96"),  // IPv4-mapped, checked unmapped
	netip.MustParsePrefix("::/96"),          // IPv4-compatible (deprecated; maps IPv4, private included)
}

// client is the HTTP client of deliveries: timeout bounds an attempt, no proxy, no
// redirect followed, and in production a dialer that refuses, after resolution,
// any address that is not a safe target (so a name that resolves to a public
// address at registration and to a private one at the attempt gains nothing).
func (t Targets) client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if t.Production {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !t.allowed(ap.Addr()) {
				return fmt.Errorf("%w: dialled a non-public address", ErrTargetRefused)
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: t.RootCAs},
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// shortError is what an attempt's failure records: no URL, no address.
func shortError(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, ErrTargetRefused):
		return "target refused: not a public address"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:"):
		return "TLS handshake failed"
	case strings.Contains(err.Error(), "no such host"):
		return "host not found"
	}
	return "request failed"
}
