package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/devidp"
)

// jwksCountingIssuer serves a devidp issuer and counts the requests for its JWKS;
// while failJWKS is set the JWKS answers 503.
type jwksCountingIssuer struct {
	*devidp.Issuer
	jwks     atomic.Int32
	failJWKS atomic.Bool
}

func startCountingIssuer(t *testing.T) *jwksCountingIssuer {
	t.Helper()
	ci := &jwksCountingIssuer{}
	var inner http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jwks" {
			ci.jwks.Add(1)
			if ci.failJWKS.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	iss, err := devidp.New(srv.URL, testAudience)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(iss.JWKSURL(), "/jwks"), "the issuer's JWKS path: %s", iss.JWKSURL())
	inner = iss.Handler()
	ci.Issuer = iss
	return ci
}

// fakeClock is the key cool-down's clock, moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// acceptedToken mints a token for subject and requires v to accept it.
func acceptedToken(t *testing.T, iss *jwksCountingIssuer, v *Verifier, subject string) string {
	t.Helper()
	tok, err := iss.Mint(devidp.Claims{Subject: subject})
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), tok)
	require.NoError(t, err)
	return tok
}

// newCoolingRig is a counting issuer, a fake clock, and a verifier of the issuer's
// tokens whose key refetches cool down on that clock.
func newCoolingRig(t *testing.T) (*jwksCountingIssuer, *fakeClock, *Verifier) {
	t.Helper()
	iss := startCountingIssuer(t)
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	return iss, clock, newCoolingVerifier(t, iss, clock)
}

func newCoolingVerifier(t *testing.T, iss *jwksCountingIssuer, clock *fakeClock) *Verifier {
	t.Helper()
	v, err := NewVerifier(context.Background(), Config{
		IssuerURL: iss.IssuerURL(), Audience: testAudience,
		KeyRefreshCooldown: 30 * time.Second, keyClock: clock.Now,
	})
	require.NoError(t, err)
	return v
}

func validTokenClaims(iss *devidp.Issuer) map[string]any {
	now := time.Now()
	return map[string]any{"iss": iss.IssuerURL(), "sub": "user-1", "aud": testAudience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func randomKid(t *testing.T) string {
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// flood verifies n tokens, each naming a random kid, from 20 goroutines, and
// requires every one refused as a bad signature.
func flood(t *testing.T, v *Verifier, iss *devidp.Issuer, n int) {
	t.Helper()
	// As an attacker would: one signed token, its header swapped for one naming a
	// random kid (the signature no longer matches, but no key is ever tried).
	signed, err := iss.SignRaw(nil, validTokenClaims(iss))
	require.NoError(t, err)
	rest := signed[strings.Index(signed, "."):]
	tokens := make([]string, n)
	for i := range tokens {
		header := `{"alg":"RS256","typ":"JWT","kid":"` + randomKid(t) + `"}`
		tokens[i] = base64.RawURLEncoding.EncodeToString([]byte(header)) + rest
	}
	var wg sync.WaitGroup
	var accepted, otherReason atomic.Int32
	next := atomic.Int32{}
	for range 20 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				_, err := v.Verify(context.Background(), tokens[i])
				switch {
				case err == nil:
					accepted.Add(1)
				case FailureReason(err) != ReasonBadSignature:
					otherReason.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, accepted.Load(), "a token with an unknown kid was accepted")
	require.Zero(t, otherReason.Load(), "unknown kids are refused as bad signatures")
}

func TestRandomKidFloodFetchesKeysOncePerCooldown(t *testing.T) {
	t.Parallel()
	iss, clock, v := newCoolingRig(t)

	good := acceptedToken(t, iss, v, "user-1")
	require.EqualValues(t, 1, iss.jwks.Load(), "the first token loads the keys")

	flood(t, v, iss.Issuer, 1000)
	require.EqualValues(t, 2, iss.jwks.Load(), "1,000 invented kids cost one refetch, then the cool-down holds")

	clock.Advance(29 * time.Second)
	flood(t, v, iss.Issuer, 1000)
	require.EqualValues(t, 2, iss.jwks.Load(), "inside the cool-down invented kids cost no fetch")

	clock.Advance(time.Second)
	flood(t, v, iss.Issuer, 1000)
	require.EqualValues(t, 3, iss.jwks.Load(), "after the cool-down, the next 1,000 cost one fetch")

	_, err := v.Verify(context.Background(), good)
	require.NoError(t, err, "genuine tokens keep working during the flood")
	require.EqualValues(t, 3, iss.jwks.Load(), "a cached kid never fetches")
}

func TestRotatedKeyIsAcceptedAfterCooldown(t *testing.T) {
	t.Parallel()
	iss, clock, v := newCoolingRig(t)

	oldTok := acceptedToken(t, iss, v, "user-1")

	_, err := iss.RotateKey()
	require.NoError(t, err)
	newTok, err := iss.Mint(devidp.Claims{Subject: "user-2"})
	require.NoError(t, err)

	clock.Advance(10 * time.Second)
	p, err := v.Verify(context.Background(), newTok)
	require.NoError(t, err, "the first unknown kid after the first load refetches: a key rotated in is accepted at once")
	require.Equal(t, "user-2", p.Subject)
	require.EqualValues(t, 2, iss.jwks.Load())

	_, err = iss.RotateKey()
	require.NoError(t, err)
	thirdTok, err := iss.Mint(devidp.Claims{Subject: "user-3"})
	require.NoError(t, err)
	clock.Advance(10 * time.Second)
	_, err = v.Verify(context.Background(), thirdTok)
	require.Equal(t, ReasonBadSignature, FailureReason(err), "inside the cool-down of that refetch a new kid is not fetched")
	require.EqualValues(t, 2, iss.jwks.Load())

	clock.Advance(20 * time.Second)
	p, err = v.Verify(context.Background(), thirdTok)
	require.NoError(t, err, "once the cool-down has passed, the rotated key is fetched and accepted")
	require.Equal(t, "user-3", p.Subject)
	require.EqualValues(t, 3, iss.jwks.Load())

	_, err = v.Verify(context.Background(), oldTok)
	require.NoError(t, err, "the old key stays published and accepted")
	require.EqualValues(t, 3, iss.jwks.Load())
}

func TestFailedKeyFetchIsRetriedSoon(t *testing.T) {
	t.Parallel()
	iss, clock, v := newCoolingRig(t)
	tok, err := iss.Mint(devidp.Claims{Subject: "user-1"})
	require.NoError(t, err)

	iss.failJWKS.Store(true)
	_, err = v.Verify(context.Background(), tok)
	require.Equal(t, ReasonBadSignature, FailureReason(err), "no key could be loaded")
	_, err = v.Verify(context.Background(), tok)
	require.Error(t, err)
	require.EqualValues(t, 1, iss.jwks.Load(), "a failed fetch is not repeated at once")

	iss.failJWKS.Store(false)
	clock.Advance(keyFetchRetry)
	_, err = v.Verify(context.Background(), tok)
	require.NoError(t, err, "the issuer is asked again %s after a failure, not a whole cool-down", keyFetchRetry)
	require.EqualValues(t, 2, iss.jwks.Load())
}

func TestIssuerWithoutKeysIsStillFetchedOncePerCooldown(t *testing.T) {
	t.Parallel()
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	t.Cleanup(srv.Close)
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	ks := newKeySet(srv.Client(), srv.URL, 30*time.Second, clock.Now, []string{"RS256"})

	token := func() string {
		header := `{"alg":"RS256","typ":"JWT","kid":"` + randomKid(t) + `"}`
		return base64.RawURLEncoding.EncodeToString([]byte(header)) + ".e30." +
			base64.RawURLEncoding.EncodeToString([]byte("not a signature"))
	}
	for range 50 {
		_, err := ks.VerifySignature(context.Background(), token())
		require.Error(t, err)
	}
	require.EqualValues(t, 2, fetches.Load(), "the first load and one refetch, then the cool-down holds even with no keys")
	clock.Advance(30 * time.Second)
	for range 50 {
		_, err := ks.VerifySignature(context.Background(), token())
		require.Error(t, err)
	}
	require.EqualValues(t, 3, fetches.Load())
}
