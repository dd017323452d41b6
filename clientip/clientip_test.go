package clientip

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestResolveBelievesForwardingOnlyFromTrustedProxies(t *testing.T) {
	r := Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	cases := []struct {
		name, remote, xff, want string
	}{
		{"direct client, no header", "203.0.113.7:5000", "", "203.0.113.7"},
		{"untrusted peer spoofs the header", "203.0.113.7:5000", "1.2.3.4", "203.0.113.7"},
		{"trusted proxy forwards the client", "10.0.0.2:443", "198.51.100.9", "198.51.100.9"},
		{"client-supplied hop left of the real one is ignored", "10.0.0.2:443", "1.2.3.4, 198.51.100.9", "198.51.100.9"},
		{"a chain of trusted proxies", "10.0.0.2:443", "198.51.100.9, 10.0.0.5", "198.51.100.9"},
		{"malformed hop", "10.0.0.2:443", "not-an-ip", "10.0.0.2"},
		{"IPv4-mapped IPv6 peer", "[::ffff:203.0.113.7]:1", "", "203.0.113.7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = c.remote
			if c.xff != "" {
				req.Header.Set("X-Forwarded-For", c.xff)
			}
			if got := r.Resolve(req).String(); got != c.want {
				t.Fatalf("Resolve = %s, want %s", got, c.want)
			}
		})
	}
}
