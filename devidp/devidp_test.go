package devidp_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/devidp"
)

const audience = "scoville-api"

func startIssuer(t *testing.T) (*devidp.Issuer, *httptest.Server) {
	t.Helper()
	iss, srv, err := devidp.StartTestServer(audience)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return iss, srv
}

// decodePart returns the JSON object in segment i (0 header, 1 claims) of a JWT.
func decodePart(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// goOIDCVerifier verifies tokens exactly as production does at its core: discovery,
// remote JWKS, RS256, audience.
func goOIDCVerifier(t *testing.T, iss *devidp.Issuer) *oidc.IDTokenVerifier {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), iss.IssuerURL())
	require.NoError(t, err)
	return p.Verifier(&oidc.Config{ClientID: audience})
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, issuer, audience string
	}{
		{"relative issuer", "/issuer", audience},
		{"non-http scheme", "ftp://idp.example", audience},
		{"no host", "http://", audience},
		{"query", "http://idp.example?x=1", audience},
		{"empty audience", "http://idp.example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := devidp.New(tt.issuer, tt.audience)
			require.Error(t, err)
		})
	}
}

func TestDiscoveryDocument(t *testing.T) {
	t.Parallel()
	iss, srv := startIssuer(t)

	resp, err := http.Get(srv.URL + "/.well-known/openid-configuration")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))

	var doc map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	require.Equal(t, srv.URL, doc["issuer"])
	require.Equal(t, srv.URL+"/jwks", doc["jwks_uri"])
	require.Equal(t, srv.URL+"/token", doc["token_endpoint"])
	require.Equal(t, []any{"RS256"}, doc["id_token_signing_alg_values_supported"])
	require.Equal(t, []any{"public"}, doc["subject_types_supported"])
	require.Equal(t, srv.URL, iss.IssuerURL())

	// go-oidc accepts the document (it checks that issuer matches exactly).
	_, err = oidc.NewProvider(context.Background(), iss.IssuerURL())
	require.NoError(t, err)
}

func TestHandlerServesUnderIssuerPath(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	issuerURL := "http://" + l.Addr().String() + "/realms/dev"
	iss, err := devidp.New(issuerURL, audience)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(iss.Handler())
	require.NoError(t, srv.Listener.Close())
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)

	p, err := oidc.NewProvider(context.Background(), issuerURL)
	require.NoError(t, err)
	tok, err := iss.Mint(devidp.Claims{Subject: "u1"})
	require.NoError(t, err)
	_, err = p.Verifier(&oidc.Config{ClientID: audience}).Verify(context.Background(), tok)
	require.NoError(t, err)

	resp, err := http.Get(srv.URL + "/jwks")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "endpoints live under the issuer path only")
}

func fetchJWKS(t *testing.T, srv *httptest.Server) (jose.JSONWebKeySet, *http.Response) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/jwks")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var set jose.JSONWebKeySet
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	return set, resp
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	iss, srv := startIssuer(t)

	set, resp := fetchJWKS(t, srv)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Len(t, set.Keys, 1)
	k := set.Keys[0]
	require.Equal(t, iss.KeyID(), k.KeyID)
	require.Equal(t, "RS256", k.Algorithm)
	require.Equal(t, "sig", k.Use)
	require.True(t, k.IsPublic(), "only public keys are published")
	require.True(t, iss.PublicKey().Equal(k.Key))
	require.Equal(t, 2048, iss.PublicKey().N.BitLen())
}

func postForm(t *testing.T, target string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(target, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp, body
}

func TestMintOverHTTP(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	verifier := goOIDCVerifier(t, iss)

	tests := []struct {
		name         string
		form         url.Values
		wantTTL      time.Duration
		wantAuthAge  time.Duration
		wantAuthTime bool
		wantRoles    []any
	}{
		{
			name:    "all fields",
			form:    url.Values{"sub": {"user-1"}, "email": {"a@example.com"}, "name": {"Ann"}, "roles": {"admin, support"}, "auth_age": {"5m"}, "ttl": {"1h"}},
			wantTTL: time.Hour, wantAuthAge: 5 * time.Minute, wantAuthTime: true,
			wantRoles: []any{"admin", "support"},
		},
		{
			name:    "defaults",
			form:    url.Values{"sub": {"user-2"}},
			wantTTL: 12 * time.Hour, wantAuthTime: true,
		},
		{
			name:    "auth_age none omits auth_time",
			form:    url.Values{"sub": {"user-3"}, "auth_age": {"none"}, "ttl": {"24h"}},
			wantTTL: 24 * time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := time.Now().Add(-time.Second)
			resp, body := postForm(t, iss.TokenURL(), tt.form)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			require.Equal(t, "Bearer", body["token_type"])
			require.Equal(t, tt.wantTTL.Seconds(), body["expires_in"])
			tok, ok := body["access_token"].(string)
			require.True(t, ok)

			idt, err := verifier.Verify(context.Background(), tok)
			require.NoError(t, err)
			require.Equal(t, tt.form.Get("sub"), idt.Subject)
			require.Equal(t, tt.wantTTL, idt.Expiry.Sub(idt.IssuedAt))

			header := decodePart(t, tok, 0)
			require.Equal(t, "at+jwt", header["typ"])
			require.Equal(t, iss.KeyID(), header["kid"])

			claims := decodePart(t, tok, 1)
			if tt.wantRoles == nil {
				require.NotContains(t, claims, "roles")
			} else {
				require.Equal(t, tt.wantRoles, claims["roles"])
			}
			require.Equal(t, claims["iat"], claims["nbf"])
			if tt.form.Get("email") != "" {
				require.Equal(t, tt.form.Get("email"), claims["email"])
				require.Equal(t, tt.form.Get("name"), claims["name"])
			}
			if !tt.wantAuthTime {
				require.NotContains(t, claims, "auth_time")
				return
			}
			at, ok := claims["auth_time"].(float64)
			require.True(t, ok)
			wantAuth := before.Add(-tt.wantAuthAge)
			require.WithinDuration(t, wantAuth, time.Unix(int64(at), 0), 3*time.Second)
		})
	}
}

func TestMintOverHTTPRejectsBadInput(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)

	tests := []struct {
		name string
		form url.Values
	}{
		{"missing sub", url.Values{"email": {"a@example.com"}}},
		{"blank sub", url.Values{"sub": {"  "}}},
		{"ttl too long", url.Values{"sub": {"u"}, "ttl": {"25h"}}},
		{"ttl negative", url.Values{"sub": {"u"}, "ttl": {"-1h"}}},
		{"ttl zero", url.Values{"sub": {"u"}, "ttl": {"0s"}}},
		{"ttl not a duration", url.Values{"sub": {"u"}, "ttl": {"tomorrow"}}},
		{"auth_age negative", url.Values{"sub": {"u"}, "auth_age": {"-5m"}}},
		{"auth_age not a duration", url.Values{"sub": {"u"}, "auth_age": {"5 minutes"}}},
		{"upper-case role", url.Values{"sub": {"u"}, "roles": {"ADMIN"}}},
		{"empty role in list", url.Values{"sub": {"u"}, "roles": {"admin,,support"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := postForm(t, iss.TokenURL(), tt.form)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.Equal(t, "invalid_request", body["error"])
			require.NotEmpty(t, body["error_description"])
			require.NotContains(t, body, "access_token")
		})
	}

	t.Run("GET is not allowed", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Get(iss.TokenURL() + "?sub=u")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	})
}

func TestMintDefaultsAndExtra(t *testing.T) {
	t.Parallel()
	iss, err := devidp.New("http://idp.test", audience)
	require.NoError(t, err)

	tok, err := iss.Mint(devidp.Claims{Subject: "u1"})
	require.NoError(t, err)
	header := decodePart(t, tok, 0)
	require.Equal(t, map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": iss.KeyID()}, header)
	claims := decodePart(t, tok, 1)
	require.Equal(t, "http://idp.test", claims["iss"])
	require.Equal(t, "u1", claims["sub"])
	require.Equal(t, audience, claims["aud"])
	iat, ok := claims["iat"].(float64)
	require.True(t, ok)
	require.Equal(t, iat+3600, claims["exp"])
	require.Equal(t, iat, claims["nbf"])
	require.WithinDuration(t, time.Now(), time.Unix(int64(iat), 0), 5*time.Second)
	require.NotEmpty(t, claims["jti"])
	for _, absent := range []string{"auth_time", "email", "name", "roles", "acr", "amr"} {
		require.NotContains(t, claims, absent)
	}

	tok2, err := iss.Mint(devidp.Claims{Subject: "u1"})
	require.NoError(t, err)
	require.NotEqual(t, claims["jti"], decodePart(t, tok2, 1)["jti"], "jti is unique")

	at := time.Unix(1_700_000_000, 0)
	tok3, err := iss.Mint(devidp.Claims{
		Subject:  "u2",
		Audience: []string{"a", "b"},
		AuthTime: at,
		ACR:      "mfa",
		AMR:      []string{"pwd", "otp"},
		Extra: map[string]any{
			"realm_access": map[string]any{"roles": []string{"admin"}},
			"iss":          "http://evil.test",
			"exp":          nil,
		},
	})
	require.NoError(t, err)
	claims3 := decodePart(t, tok3, 1)
	require.Equal(t, []any{"a", "b"}, claims3["aud"])
	require.Equal(t, float64(at.Unix()), claims3["auth_time"])
	require.Equal(t, "mfa", claims3["acr"])
	require.Equal(t, []any{"pwd", "otp"}, claims3["amr"])
	require.Equal(t, map[string]any{"roles": []any{"admin"}}, claims3["realm_access"])
	require.Equal(t, "http://evil.test", claims3["iss"], "Extra overrides standard claims")
	require.NotContains(t, claims3, "exp", "a nil Extra value removes the claim")
}

func TestRotationKeepsOldKeyPublished(t *testing.T) {
	t.Parallel()
	iss, srv := startIssuer(t)
	verifier := goOIDCVerifier(t, iss)

	oldKID := iss.KeyID()
	oldTok, err := iss.Mint(devidp.Claims{Subject: "u1"})
	require.NoError(t, err)
	_, err = verifier.Verify(context.Background(), oldTok) // caches the first key
	require.NoError(t, err)

	resp, body := postForm(t, srv.URL+"/rotate", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	newKID, ok := body["kid"].(string)
	require.True(t, ok)
	require.NotEqual(t, oldKID, newKID)
	require.Equal(t, newKID, iss.KeyID())

	set, _ := fetchJWKS(t, srv)
	require.Len(t, set.Keys, 2)
	require.Len(t, set.Key(oldKID), 1, "old key stays published")
	require.Len(t, set.Key(newKID), 1)

	newTok, err := iss.Mint(devidp.Claims{Subject: "u1"})
	require.NoError(t, err)
	require.Equal(t, newKID, decodePart(t, newTok, 0)["kid"])
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		_, err := verifier.Verify(context.Background(), tok)
		require.NoError(t, err, name)
	}

	kid3, err := iss.RotateKey()
	require.NoError(t, err)
	set, _ = fetchJWKS(t, srv)
	require.Len(t, set.Keys, 3)
	require.Len(t, set.Key(kid3), 1)
}

func TestCraftedTokens(t *testing.T) {
	t.Parallel()
	iss, err := devidp.New("http://idp.test", audience)
	require.NoError(t, err)
	claims := map[string]any{"sub": "u"}

	t.Run("SignRaw merges and removes header entries", func(t *testing.T) {
		t.Parallel()
		tok, err := iss.SignRaw(map[string]any{"kid": nil, "typ": "JWT"}, claims)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"alg": "RS256", "typ": "JWT"}, decodePart(t, tok, 0))
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
		require.NoError(t, err)
		payload, err := jws.Verify(iss.PublicKey())
		require.NoError(t, err)
		require.JSONEq(t, `{"sub":"u"}`, string(payload))
	})
	t.Run("SignRaw refuses non-RSA algorithms", func(t *testing.T) {
		t.Parallel()
		for _, alg := range []string{"HS256", "none", "ES256", "rs256"} {
			_, err := iss.SignRaw(map[string]any{"alg": alg}, claims)
			require.Error(t, err, alg)
		}
	})
	t.Run("SignRaw signs every RSA algorithm", func(t *testing.T) {
		t.Parallel()
		for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512} {
			tok, err := iss.SignRaw(map[string]any{"alg": string(alg)}, claims)
			require.NoError(t, err)
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{alg})
			require.NoError(t, err, alg)
			_, err = jws.Verify(iss.PublicKey())
			require.NoError(t, err, alg)
		}
	})
	t.Run("EncodeUnsigned", func(t *testing.T) {
		t.Parallel()
		tok, err := devidp.EncodeUnsigned(nil, claims)
		require.NoError(t, err)
		require.True(t, strings.HasSuffix(tok, "."))
		require.Equal(t, "none", decodePart(t, tok, 0)["alg"])
	})
	t.Run("SignHS256 with the public key PEM", func(t *testing.T) {
		t.Parallel()
		secret := iss.PublicKeyPEM()
		require.Contains(t, string(secret), "BEGIN PUBLIC KEY")
		tok, err := devidp.SignHS256(map[string]any{"kid": iss.KeyID()}, claims, secret)
		require.NoError(t, err)
		parts := strings.Split(tok, ".")
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		require.Equal(t, base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), parts[2])
		require.Equal(t, "HS256", decodePart(t, tok, 0)["alg"])
	})
}
