package devidp

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestExpiredCodeIsRefused moves the issuer's clock past CodeLifetime between the
// approval and the exchange.
func TestExpiredCodeIsRefused(t *testing.T) {
	t.Parallel()
	iss, err := New("http://127.0.0.1:1", "scoville-api")
	require.NoError(t, err)
	require.NoError(t, iss.RegisterClient("c", "http://127.0.0.1:8080/playground"))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	iss.now = func() time.Time { return now }

	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	req := authRequest{ClientID: "c", RedirectURI: "http://127.0.0.1:8080/playground", Challenge: b64(sum[:])}
	issued := now

	exchangeAt := func(at time.Time) int {
		now = issued
		code, err := iss.issueCode(req, DemoUsers[2])
		require.NoError(t, err)
		now = at
		form := url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"c"},
			"redirect_uri": {"http://127.0.0.1:8080/playground"}, "code_verifier": {verifier},
		}
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		iss.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, http.StatusOK, exchangeAt(issued.Add(CodeLifetime-time.Second)), "a code lives for CodeLifetime")
	require.Equal(t, http.StatusBadRequest, exchangeAt(issued.Add(CodeLifetime)), "a code is dead at its lifetime")
}

// TestPendingCodesAreBounded fills the table of waiting codes: expired ones are
// dropped, live ones beyond the bound are refused.
func TestPendingCodesAreBounded(t *testing.T) {
	t.Parallel()
	iss, err := New("http://127.0.0.1:1", "scoville-api")
	require.NoError(t, err)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	iss.now = func() time.Time { return now }
	req := authRequest{ClientID: "c", RedirectURI: "http://127.0.0.1:8080/playground", Challenge: strings.Repeat("a", 43)}
	for range maxPendingCodes {
		_, err := iss.issueCode(req, DemoUsers[0])
		require.NoError(t, err)
	}
	_, err = iss.issueCode(req, DemoUsers[0])
	require.Error(t, err, "no room while every code is alive")
	now = now.Add(CodeLifetime)
	_, err = iss.issueCode(req, DemoUsers[0])
	require.NoError(t, err, "expired codes make room")
}
