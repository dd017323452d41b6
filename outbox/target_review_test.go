package outbox

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// Look-alike spellings of internal addresses are refused in production: IPv4
// embedded in IPv6 (mapped, the deprecated IPv4-compatible form, NAT64, 6to4), a
// zone id, shared and reserved ranges, and names (numeric or with a trailing dot)
// that resolve to loopback.
func TestProductionRefusesLookalikeInternalTargets(t *testing.T) {
	t.Parallel()
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "localhost.", "2130706433", "0x7f.1", "017700000001":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	prod := Targets{Production: true, lookup: lookup}
	for _, u := range []string{
		"https://[::ffff:10.0.0.1]/in",
		"https://[::ffff:169.254.169.254]/in",
		"https://[::127.0.0.1]/in",
		"https://[::10.0.0.1]/in",
		"https://[::169.254.169.254]/in",
		"https://[64:ff9b::10.0.0.1]/in",
		"https://[2002:a00:1::1]/in",
		"https://[fe80::1%25eth0]/in",
		"https://[fc00::1]/in",
		"https://100.64.0.1/in",
		"https://255.255.255.255/in",
		"https://localhost./in",
		"https://2130706433/in",
		"https://0x7f.1/in",
		"https://017700000001/in",
		"https://good.example@169.254.169.254/in",
	} {
		require.ErrorIs(t, prod.Check(context.Background(), u), ErrTargetRefused, u)
	}
	for _, a := range []string{"::127.0.0.1", "::10.0.0.1", "::ffff:127.0.0.1"} {
		require.False(t, prod.allowed(netip.MustParseAddr(a)), "the dialler refuses %s", a)
	}
}
