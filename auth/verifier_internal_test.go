package auth

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/devidp"
)

const testAudience = "scoville-api"

// flakyIssuer serves a devidp issuer whose discovery endpoint answers 503 to the
// first failFirst requests, and returns it with the URL it is served at and a
// counter of discovery requests. A non-empty issuerURL makes the issuer claim that
// URL instead of the served one.
func flakyIssuer(t *testing.T, failFirst int32, issuerURL string) (*devidp.Issuer, string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := "http://" + l.Addr().String()
	if issuerURL == "" {
		issuerURL = served
	}
	iss, err := devidp.New(issuerURL, testAudience)
	require.NoError(t, err)
	var hits atomic.Int32
	inner := iss.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") && hits.Add(1) <= failFirst {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	require.NoError(t, srv.Listener.Close())
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return iss, served, &hits
}

var fastBackoff = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}

func TestNewVerifierRetriesDiscovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		failFirst int32
		wantErr   bool
		wantHits  int32
	}{
		{"first attempt", 0, false, 1},
		{"issuer up on the third attempt", 2, false, 3},
		{"issuer never up", 1000, true, int32(len(fastBackoff)) + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			iss, served, hits := flakyIssuer(t, tt.failFirst, "")
			v, err := NewVerifier(context.Background(), Config{
				IssuerURL: served, Audience: testAudience, discoveryBackoff: fastBackoff,
			})
			require.Equal(t, tt.wantHits, hits.Load())
			if tt.wantErr {
				require.Error(t, err)
				require.Contains(t, err.Error(), "OIDC_ISSUER_URL")
				return
			}
			require.NoError(t, err)
			tok, err := iss.Mint(devidp.Claims{Subject: "u"})
			require.NoError(t, err)
			_, err = v.Verify(context.Background(), tok)
			require.NoError(t, err)
		})
	}
}

func TestNewVerifierIssuerMismatchIsNotRetried(t *testing.T) {
	t.Parallel()
	_, served, hits := flakyIssuer(t, 0, "http://other-issuer.example")
	_, err := NewVerifier(context.Background(), Config{
		IssuerURL: served, Audience: testAudience, discoveryBackoff: fastBackoff,
	})
	require.Error(t, err)
	var mismatch *oidc.IssuerMismatchError
	require.ErrorAs(t, err, &mismatch)
	require.Equal(t, int32(1), hits.Load())
}

func TestNewVerifierConfigErrors(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: connection refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close())

	tests := []struct {
		name        string
		cfg         Config
		wantMention string
		mustNotLeak string
	}{
		{"empty issuer", Config{Audience: testAudience}, "OIDC_ISSUER_URL", ""},
		{"relative issuer", Config{IssuerURL: "idp.example", Audience: testAudience}, "OIDC_ISSUER_URL", ""},
		{"empty audience", Config{IssuerURL: "http://" + closed}, "audience", ""},
		{"unreachable issuer with credentials in the URL",
			Config{IssuerURL: "http://admin:s3cr3t-pw@" + closed, Audience: testAudience, discoveryBackoff: fastBackoff},
			"OIDC_ISSUER_URL", "s3cr3t-pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(context.Background(), tt.cfg)
			require.Error(t, err)
			require.Nil(t, v)
			require.Contains(t, err.Error(), tt.wantMention)
			if tt.mustNotLeak != "" {
				require.NotContains(t, err.Error(), tt.mustNotLeak)
			}
		})
	}
}

func TestDiscoveryGivesUpWithinBudget(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // an already-expired budget: no retry may wait
	start := time.Now()
	_, err := discover(ctx, "http://127.0.0.1:1", []time.Duration{time.Hour})
	require.Error(t, err)
	require.Less(t, time.Since(start), 5*time.Second)

	var total time.Duration
	for _, d := range defaultDiscoveryBackoff {
		total += d
	}
	require.Less(t, total, discoveryBudget, "the schedule fits the budget")
	require.LessOrEqual(t, discoveryBudget, 15*time.Second)
}

// TestGoOIDCLayerRefusesWeakAlgorithms checks the explicit allow-list reaches
// go-oidc itself, not only Verify's early check: a token Verify would wave through
// to go-oidc with alg none or HS256 is refused there.
func TestGoOIDCLayerRefusesWeakAlgorithms(t *testing.T) {
	t.Parallel()
	iss, served, _ := flakyIssuer(t, 0, "")
	v, err := NewVerifier(context.Background(), Config{IssuerURL: served, Audience: testAudience})
	require.NoError(t, err)
	claims := map[string]any{
		"iss": served, "sub": "u", "aud": testAudience,
		"exp": time.Now().Add(time.Hour).Unix(),
	}
	none, err := devidp.EncodeUnsigned(nil, claims)
	require.NoError(t, err)
	hs, err := devidp.SignHS256(nil, claims, iss.PublicKeyPEM())
	require.NoError(t, err)
	good, err := iss.SignRaw(nil, claims)
	require.NoError(t, err)

	_, err = v.oidc.Verify(context.Background(), good)
	require.NoError(t, err, "control: the same claims signed RS256 pass")
	for name, tok := range map[string]string{"none": none, "HS256": hs} {
		_, err := v.oidc.Verify(context.Background(), tok)
		require.Error(t, err, name)
	}
}
