package auth_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/devidp"
)

const audience = "scoville-api"

// startIssuer serves a fresh devidp issuer on loopback for the test's lifetime.
func startIssuer(t *testing.T) (*devidp.Issuer, *httptest.Server) {
	t.Helper()
	iss, srv, err := devidp.StartTestServer(audience)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return iss, srv
}

// newVerifier builds a Verifier for iss through real discovery; rolesClaim may be "".
func newVerifier(t *testing.T, iss *devidp.Issuer, rolesClaim string) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		IssuerURL:  iss.IssuerURL(),
		Audience:   audience,
		RolesClaim: rolesClaim,
	})
	require.NoError(t, err)
	return v
}

// validClaims are the claims of a token Verify accepts, for SignRaw-crafted tokens:
// an RFC 9068 access token issued to the client "storefront".
func validClaims(iss *devidp.Issuer) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss":       iss.IssuerURL(),
		"sub":       "user-1",
		"aud":       audience,
		"client_id": "storefront",
		"scope":     "openid",
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
	}
}

// idTokenClaims are the claims of an OpenID Connect ID token issued to a client
// whose id is the audience, without nonce, at_hash or c_hash (the code flow does not
// need them): no scope and no client claim, as Auth0, Okta and Entra ID issue them.
func idTokenClaims(iss *devidp.Issuer) map[string]any {
	return with(validClaims(iss), "client_id", nil, "scope", nil, "nbf", nil,
		"auth_time", time.Now().Add(-time.Minute).Unix())
}

// with returns a copy of m with the given key/value pairs set; a nil value deletes.
func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
			continue
		}
		out[k] = kv[i+1]
	}
	return out
}

func mustMint(t *testing.T, iss *devidp.Issuer, c devidp.Claims) string {
	t.Helper()
	tok, err := iss.Mint(c)
	require.NoError(t, err)
	return tok
}

// mustSignRaw is iss.SignRaw(header, claims): a token crafted claim by claim.
func mustSignRaw(t *testing.T, iss *devidp.Issuer, header, claims map[string]any) string {
	t.Helper()
	tok, err := iss.SignRaw(header, claims)
	require.NoError(t, err)
	return tok
}

// postTokenForm mints a token through the devidp HTTP endpoint, as a developer would.
func postTokenForm(t *testing.T, iss *devidp.Issuer, form url.Values) string {
	t.Helper()
	resp, err := http.PostForm(iss.TokenURL(), form)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.NotEmpty(t, body.AccessToken)
	return body.AccessToken
}
