package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/devidp"
)

// cachedVerifier is a Verifier of a fresh devidp issuer whose clock the test sets,
// remembering at most size tokens.
func cachedVerifier(t *testing.T, size int) (*Verifier, *devidp.Issuer, *atomic.Pointer[time.Time]) {
	t.Helper()
	iss, srv, err := devidp.StartTestServer(testAudience)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	var clock atomic.Pointer[time.Time]
	start := time.Now()
	clock.Store(&start)
	v, err := NewVerifier(context.Background(), Config{
		IssuerURL: iss.IssuerURL(), Audience: testAudience, TokenCacheSize: size,
		Now: func() time.Time { return *clock.Load() },
	})
	require.NoError(t, err)
	return v, iss, &clock
}

func mint(t *testing.T, iss *devidp.Issuer, sub string, exp time.Time) string {
	t.Helper()
	tok, err := iss.Mint(devidp.Claims{Subject: sub, Roles: []string{"support"}, Expiry: exp})
	require.NoError(t, err)
	return tok
}

// A verified token is remembered by the hash of the whole token and answered from
// memory the next time, with a principal the caller cannot change for the next one.
func TestVerifierRemembersAVerifiedToken(t *testing.T) {
	t.Parallel()
	v, iss, clock := cachedVerifier(t, 0)
	tok := mint(t, iss, "cached-user", clock.Load().Add(time.Hour))

	first, err := v.Verify(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, 1, v.cache.len())
	v.cache.mu.Lock()
	_, byHash := v.cache.entries[sha256.Sum256([]byte(tok))]
	v.cache.mu.Unlock()
	require.True(t, byHash, "keyed by the token's SHA-256")

	first.Roles[1] = RoleAdmin // a caller scribbling on its principal
	again, err := v.Verify(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, "cached-user", again.Subject)
	require.Equal(t, []Role{RoleCustomer, RoleSupport}, again.Roles)
	require.Equal(t, 1, v.cache.len())
}

// A cached token past its exp is refused as expired, like any expired token, and
// forgotten.
func TestVerifierRefusesACachedTokenOnceExpired(t *testing.T) {
	t.Parallel()
	v, iss, clock := cachedVerifier(t, 0)
	exp := clock.Load().Add(time.Minute).Truncate(time.Second)
	tok := mint(t, iss, "expiring-user", exp)
	_, err := v.Verify(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, 1, v.cache.len())

	for _, at := range []time.Time{exp, exp.Add(time.Hour)} {
		clock.Store(&at)
		_, err = v.Verify(context.Background(), tok)
		require.ErrorIs(t, err, ErrInvalidToken)
		require.Equal(t, ReasonExpired, FailureReason(err))
		require.Zero(t, v.cache.len())
	}
}

// Only the exact token that was verified matches: the same header and claims under
// another signature, or signed by a key the issuer never published, are verified
// afresh and refused, however often the genuine one was seen.
func TestVerifierCacheNeverMatchesAnotherToken(t *testing.T) {
	t.Parallel()
	v, iss, clock := cachedVerifier(t, 0)
	exp := clock.Load().Add(time.Hour)
	tok := mint(t, iss, "victim", exp)
	for range 2 {
		_, err := v.Verify(context.Background(), tok)
		require.NoError(t, err)
	}

	parts := strings.Split(tok, ".")
	sig := []byte(parts[2])
	// Another base64url letter in the middle: still decodable, no longer the signature.
	if sig[len(sig)/2] == 'A' {
		sig[len(sig)/2] = 'B'
	} else {
		sig[len(sig)/2] = 'A'
	}
	tampered := parts[0] + "." + parts[1] + "." + string(sig)
	_, err := v.Verify(context.Background(), tampered)
	require.Equal(t, ReasonBadSignature, FailureReason(err))

	// Another issuer with the same URL and key id conventions: its key was never
	// published by ours.
	other, err := devidp.New(iss.IssuerURL(), testAudience)
	require.NoError(t, err)
	forged, err := other.Mint(devidp.Claims{Subject: "victim", Roles: []string{"support"}, Expiry: exp})
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), forged)
	require.ErrorIs(t, err, ErrInvalidToken)
	require.Equal(t, 1, v.cache.len(), "nothing refused is remembered")
}

// The cache holds at most its size, and every token still verifies when it is full.
func TestVerifierCacheIsBounded(t *testing.T) {
	t.Parallel()
	v, iss, clock := cachedVerifier(t, 2)
	exp := clock.Load().Add(time.Hour)
	for i := range 5 {
		tok := mint(t, iss, "user-"+string(rune('a'+i)), exp)
		p, err := v.Verify(context.Background(), tok)
		require.NoError(t, err)
		require.Equal(t, "user-"+string(rune('a'+i)), p.Subject)
		require.LessOrEqual(t, v.cache.len(), 2)
	}
}

// A negative size turns the cache off.
func TestVerifierWithoutCache(t *testing.T) {
	t.Parallel()
	v, iss, clock := cachedVerifier(t, -1)
	require.Nil(t, v.cache)
	_, err := v.Verify(context.Background(), mint(t, iss, "uncached", clock.Load().Add(time.Hour)))
	require.NoError(t, err)
}

// A token remembered before its key was withdrawn at the issuer is refused once the
// verifier has fetched the keys without it, as it would be without the cache.
func TestVerifierForgetsTokensOfAWithdrawnKey(t *testing.T) {
	t.Parallel()
	// The issuer publishes all its keys until withdraw is set, then only the current one.
	var withdraw atomic.Bool
	var iss *devidp.Issuer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jwks" && withdraw.Load() {
			rec := httptest.NewRecorder()
			iss.Handler().ServeHTTP(rec, r)
			var set struct {
				Keys []map[string]any `json:"keys"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &set))
			set.Keys = slices.DeleteFunc(set.Keys, func(k map[string]any) bool { return k["kid"] != iss.KeyID() })
			w.Header().Set("Content-Type", "application/json")
			require.NoError(t, json.NewEncoder(w).Encode(set))
			return
		}
		iss.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	var err error
	iss, err = devidp.New(srv.URL, testAudience)
	require.NoError(t, err)
	v, err := NewVerifier(context.Background(), Config{IssuerURL: iss.IssuerURL(), Audience: testAudience})
	require.NoError(t, err)

	old := mint(t, iss, "signed-with-the-old-key", time.Now().Add(time.Hour))
	_, err = v.Verify(context.Background(), old)
	require.NoError(t, err)
	require.Equal(t, 1, v.cache.len())

	_, err = iss.RotateKey()
	require.NoError(t, err)
	withdraw.Store(true)
	// A token of the new key makes the verifier fetch the keys: the old one is gone.
	_, err = v.Verify(context.Background(), mint(t, iss, "signed-with-the-new-key", time.Now().Add(time.Hour)))
	require.NoError(t, err)

	_, err = v.Verify(context.Background(), old)
	require.ErrorIs(t, err, ErrInvalidToken, "the remembered token of a withdrawn key")
	require.Equal(t, ReasonBadSignature, FailureReason(err))
}
