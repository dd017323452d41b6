package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/devidp"
)

func TestVerifyTokens(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	v := newVerifier(t, iss, "")

	// A second issuer with the same issuer URL and audience but its own keys: its
	// tokens look right in every claim and must fail on the signature alone.
	impostor, err := devidp.New(iss.IssuerURL(), audience)
	require.NoError(t, err)

	pemKey := iss.PublicKeyPEM()
	block, _ := pem.Decode(pemKey)
	require.NotNil(t, block)
	now := time.Now()

	tests := []struct {
		name       string
		token      func(t *testing.T) string
		wantReason string // "" means accepted
	}{
		{"valid", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1"})
		}, ""},
		{"expired", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1", IssuedAt: now.Add(-2 * time.Hour), Expiry: now.Add(-time.Minute)})
		}, auth.ReasonExpired},
		{"nbf far in the future", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1", Extra: map[string]any{"nbf": now.Add(10 * time.Minute).Unix()}})
		}, auth.ReasonNotYetValid},
		{"nbf 3 min ahead (inside go-oidc's 5 min leeway)", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1", Extra: map[string]any{"nbf": now.Add(3 * time.Minute).Unix()}})
		}, auth.ReasonNotYetValid},
		{"nbf 20 s ahead (clock skew)", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1", Extra: map[string]any{"nbf": now.Add(20 * time.Second).Unix()}})
		}, ""},
		{"wrong issuer", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1", Extra: map[string]any{"iss": "http://evil.example"}})
		}, auth.ReasonIssuer},
		{"wrong audience", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1", Audience: []string{"other-api"}})
		}, auth.ReasonAudience},
		{"audience list containing ours", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1", Audience: []string{"other-api", audience}})
		}, ""},
		{"unknown key, different kid", func(t *testing.T) string {
			return mustMint(t, impostor, devidp.Claims{Subject: "user-1"})
		}, auth.ReasonBadSignature},
		{"unknown key, no kid", func(t *testing.T) string {
			tok, err := impostor.SignRaw(map[string]any{"kid": nil, "typ": "at+jwt"}, validClaims(iss))
			require.NoError(t, err)
			return tok
		}, auth.ReasonBadSignature},
		{"unknown key, issuer's kid", func(t *testing.T) string {
			tok, err := impostor.SignRaw(map[string]any{"kid": iss.KeyID(), "typ": "at+jwt"}, validClaims(iss))
			require.NoError(t, err)
			return tok
		}, auth.ReasonBadSignature},
		{"payload changed after signing", func(t *testing.T) string {
			tok := mustMint(t, iss, devidp.Claims{Subject: "user-1"})
			forged := mustMint(t, iss, devidp.Claims{Subject: "admin-1", Roles: []string{"admin"}})
			p, f := strings.Split(tok, "."), strings.Split(forged, ".")
			return p[0] + "." + f[1] + "." + p[2]
		}, auth.ReasonBadSignature},
		// Discovery advertises RS256 only; the verifier's explicit allow-list still
		// takes the other asymmetric algorithms.
		{"RS512", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"alg": "RS512", "typ": "at+jwt"}, validClaims(iss))
		}, ""},
		{"PS256", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"alg": "PS256", "typ": "at+jwt"}, validClaims(iss))
		}, ""},
		{"alg header lies (RS256 signature labelled PS384)", func(t *testing.T) string {
			tok := mustMint(t, iss, devidp.Claims{Subject: "user-1"})
			relabelled, err := iss.SignRaw(map[string]any{"alg": "PS384", "typ": "at+jwt"}, validClaims(iss))
			require.NoError(t, err)
			return strings.Split(relabelled, ".")[0] + "." + strings.Split(relabelled, ".")[1] + "." + strings.Split(tok, ".")[2]
		}, auth.ReasonBadSignature},
		{"alg none", func(t *testing.T) string {
			tok, err := devidp.EncodeUnsigned(map[string]any{"typ": "at+jwt", "kid": iss.KeyID()}, validClaims(iss))
			require.NoError(t, err)
			return tok
		}, auth.ReasonAlgorithm},
		{"alg none with a signature segment", func(t *testing.T) string {
			tok, err := devidp.EncodeUnsigned(map[string]any{"typ": "at+jwt"}, validClaims(iss))
			require.NoError(t, err)
			return tok + "c2ln"
		}, auth.ReasonAlgorithm},
		{"HS256 keyed with the issuer's public key PEM", func(t *testing.T) string {
			tok, err := devidp.SignHS256(map[string]any{"typ": "at+jwt", "kid": iss.KeyID()}, validClaims(iss), pemKey)
			require.NoError(t, err)
			return tok
		}, auth.ReasonAlgorithm},
		{"HS256 keyed with the issuer's public key DER", func(t *testing.T) string {
			tok, err := devidp.SignHS256(map[string]any{"typ": "at+jwt", "kid": iss.KeyID()}, validClaims(iss), block.Bytes)
			require.NoError(t, err)
			return tok
		}, auth.ReasonAlgorithm},
		{"missing exp", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1", Extra: map[string]any{"exp": nil}})
		}, auth.ReasonMissingExp},
		{"exp as a string", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1", Extra: map[string]any{"exp": fmt.Sprint(now.Add(time.Hour).Unix())}})
		}, auth.ReasonMalformed},
		{"missing sub", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{})
		}, auth.ReasonMissingSubject},
		{"ID token: typ JWT with nonce", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"typ": "JWT"}, with(validClaims(iss), "nonce", "n-0S6_WzA2Mj"))
		}, auth.ReasonNotAccessToken},
		{"ID token: no typ, at_hash", func(t *testing.T) string {
			return mustSignRaw(t, iss, nil, with(validClaims(iss), "at_hash", "77QmUPtjPfzWtF2AnpK9RQ"))
		}, auth.ReasonNotAccessToken},
		{"ID token: c_hash", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1", Extra: map[string]any{"c_hash": "LDktKdoQak3Pk0cnXxCltA"}})
		}, auth.ReasonNotAccessToken},
		{"Keycloak ID token: typ claim ID", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"typ": "JWT"}, with(validClaims(iss), "typ", "ID"))
		}, auth.ReasonNotAccessToken},
		{"Keycloak access token: typ claim Bearer", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"typ": "JWT"}, with(validClaims(iss), "typ", "Bearer"))
		}, ""},
		// An ID token without nonce or hash claims, from a provider whose client id is
		// the audience (one app registration for the storefront and the API): aud,
		// iss and signature are all right; only its shape tells it apart.
		{"ID token without nonce: Auth0/Entra shape (no client, no scope)", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"typ": "JWT"}, with(idTokenClaims(iss),
				"email", "ann@example.com", "email_verified", true, "name", "Ann"))
		}, auth.ReasonNotAccessToken},
		{"ID token without nonce, azp is the audience", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"typ": "JWT"}, with(idTokenClaims(iss), "azp", audience))
		}, auth.ReasonNotAccessToken},
		{"ID token without nonce, no typ header, aud a list", func(t *testing.T) string {
			return mustSignRaw(t, iss, nil, with(idTokenClaims(iss), "aud", []string{audience}))
		}, auth.ReasonNotAccessToken},
		{"Cognito ID token: token_use id, with a scope", func(t *testing.T) string {
			return mustSignRaw(t, iss, nil, with(validClaims(iss), "token_use", "id"))
		}, auth.ReasonNotAccessToken},
		{"access token: scope, client is the audience (Entra, one app)", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"typ": "JWT"}, with(idTokenClaims(iss), "azp", audience, "scp", "access_as_user"))
		}, ""},
		{"access token: Okta scp list and cid", func(t *testing.T) string {
			return mustSignRaw(t, iss, nil, with(idTokenClaims(iss), "cid", "0oa1storefront", "scp", []string{"openid"}))
		}, ""},
		{"access token: no scope, another client (machine to machine)", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"typ": "JWT"}, with(idTokenClaims(iss), "azp", "storefront"))
		}, ""},
		{"access token: empty scope and the audience as client", func(t *testing.T) string {
			return mustSignRaw(t, iss, nil, with(idTokenClaims(iss), "client_id", audience, "scope", ""))
		}, auth.ReasonNotAccessToken},
		{"logout token typ header", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"typ": "logout+jwt"}, validClaims(iss))
		}, auth.ReasonNotAccessToken},
		{"typ header not a string", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"typ": 1}, validClaims(iss))
		}, auth.ReasonNotAccessToken},
		{"typ header application/at+jwt, any case", func(t *testing.T) string {
			return mustSignRaw(t, iss, map[string]any{"typ": "Application/AT+JWT"}, validClaims(iss))
		}, ""},
		{"no typ header", func(t *testing.T) string {
			return mustSignRaw(t, iss, nil, validClaims(iss))
		}, ""},
		{"empty string", func(*testing.T) string { return "" }, auth.ReasonMalformed},
		{"two segments", func(*testing.T) string { return "eyJhbGciOiJSUzI1NiJ9.e30" }, auth.ReasonMalformed},
		{"garbage segments", func(*testing.T) string { return "a.b.c" }, auth.ReasonMalformed},
		{"JWS JSON serialization", func(t *testing.T) string {
			tok := mustMint(t, iss, devidp.Claims{Subject: "user-1"})
			p := strings.Split(tok, ".")
			b, err := json.Marshal(map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]})
			require.NoError(t, err)
			return string(b)
		}, auth.ReasonMalformed},
		{"payload not an object", func(t *testing.T) string {
			tok := mustMint(t, iss, devidp.Claims{Subject: "user-1"})
			p := strings.Split(tok, ".")
			return p[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`["x"]`)) + "." + p[2]
		}, auth.ReasonMalformed},
		{"too large", func(t *testing.T) string {
			return mustMint(t, iss, devidp.Claims{Subject: "user-1", Extra: map[string]any{"pad": strings.Repeat("x", auth.MaxTokenBytes)}})
		}, auth.ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := tt.token(t)
			p, err := v.Verify(context.Background(), tok)
			if tt.wantReason == "" {
				require.NoError(t, err)
				require.Equal(t, "user-1", p.Subject)
				return
			}
			require.Error(t, err)
			require.Nil(t, p)
			require.ErrorIs(t, err, auth.ErrInvalidToken)
			require.Equal(t, tt.wantReason, auth.FailureReason(err))
			if len(tok) > 16 { // short garbage shares letters with any message
				require.NotContains(t, err.Error(), tok)
				require.NotContains(t, err.Error(), strings.Split(tok, ".")[0])
			}
		})
	}
}

// Key rotation (a key published after start is accepted once the key cool-down has
// passed) and the cool-down itself are tested in keyset_internal_test.go, which
// controls the cool-down's clock.

func TestVerifyBuildsPrincipal(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	v := newVerifier(t, iss, "")
	authTime := time.Now().Add(-7 * time.Minute).Truncate(time.Second)
	exp := time.Now().Add(30 * time.Minute).Truncate(time.Second)

	tests := []struct {
		name   string
		claims devidp.Claims
		want   auth.Principal
	}{
		{
			name: "all claims",
			claims: devidp.Claims{Subject: "user-1", Email: "ann@example.com", Name: "Ann", Roles: []string{"support"},
				AuthTime: authTime, Expiry: exp, ACR: "urn:mace:incommon:iap:silver", AMR: []string{"pwd", "otp"}},
			want: auth.Principal{Issuer: iss.IssuerURL(), Subject: "user-1", Email: "ann@example.com", EmailVerified: true, Name: "Ann",
				Roles: []auth.Role{auth.RoleCustomer, auth.RoleSupport}, AuthTime: authTime,
				ACR: "urn:mace:incommon:iap:silver", AMR: []string{"pwd", "otp"}, Expiry: exp},
		},
		{
			name:   "optional claims absent",
			claims: devidp.Claims{Subject: "user-2", Expiry: exp},
			want:   auth.Principal{Issuer: iss.IssuerURL(), Subject: "user-2", Roles: []auth.Role{auth.RoleCustomer}, Expiry: exp},
		},
		{
			name: "optional claims of the wrong type",
			claims: devidp.Claims{Subject: "user-3", Expiry: exp, Extra: map[string]any{
				"auth_time": "yesterday", "email": 42, "name": []string{"x"}, "acr": 1, "amr": []any{"pwd", 1},
			}},
			want: auth.Principal{Issuer: iss.IssuerURL(), Subject: "user-3", Roles: []auth.Role{auth.RoleCustomer}, Expiry: exp},
		},
		{
			name: "look-alike email_verified and amr",
			claims: devidp.Claims{Subject: "user-5", Email: "eve@example.com", Expiry: exp, Extra: map[string]any{
				"email_verified": "true", "amr": "mfa", "acr": []string{"gold"},
			}},
			want: auth.Principal{Issuer: iss.IssuerURL(), Subject: "user-5", Email: "eve@example.com", Roles: []auth.Role{auth.RoleCustomer}, Expiry: exp},
		},
		{
			name:   "email_verified false",
			claims: devidp.Claims{Subject: "user-6", Email: "eve@example.com", Expiry: exp, Extra: map[string]any{"email_verified": false}},
			want:   auth.Principal{Issuer: iss.IssuerURL(), Subject: "user-6", Email: "eve@example.com", Roles: []auth.Role{auth.RoleCustomer}, Expiry: exp},
		},
		{
			name:   "email_verified 1",
			claims: devidp.Claims{Subject: "user-7", Email: "eve@example.com", Expiry: exp, Extra: map[string]any{"email_verified": 1}},
			want:   auth.Principal{Issuer: iss.IssuerURL(), Subject: "user-7", Email: "eve@example.com", Roles: []auth.Role{auth.RoleCustomer}, Expiry: exp},
		},
		{
			name:   "fractional auth_time",
			claims: devidp.Claims{Subject: "user-4", Expiry: exp, Extra: map[string]any{"auth_time": float64(authTime.Unix()) + 0.5}},
			want: auth.Principal{Issuer: iss.IssuerURL(), Subject: "user-4", Roles: []auth.Role{auth.RoleCustomer},
				AuthTime: authTime.Add(500 * time.Millisecond), Expiry: exp},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := v.Verify(context.Background(), mustMint(t, iss, tt.claims))
			require.NoError(t, err)
			require.True(t, tt.want.AuthTime.Equal(p.AuthTime), "auth_time: want %v got %v", tt.want.AuthTime, p.AuthTime)
			require.True(t, tt.want.Expiry.Equal(p.Expiry))
			tt.want.AuthTime, tt.want.Expiry = p.AuthTime, p.Expiry // compared above, modulo monotonic clock
			require.Equal(t, tt.want, *p)
		})
	}
}

func TestVerifyRoles(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	const nsClaim = "https://scoville.example/roles"
	verifiers := map[string]*auth.Verifier{
		"":                   newVerifier(t, iss, ""),
		"realm_access.roles": newVerifier(t, iss, "realm_access.roles"),
		nsClaim:              newVerifier(t, iss, nsClaim),
		"a.b":                newVerifier(t, iss, "a.b"),
	}
	customer := []auth.Role{auth.RoleCustomer}

	tests := []struct {
		name       string
		rolesClaim string
		claims     devidp.Claims
		want       []auth.Role
	}{
		{"no roles claim", "", devidp.Claims{}, customer},
		{"top-level admin", "", devidp.Claims{Roles: []string{"admin"}}, []auth.Role{auth.RoleCustomer, auth.RoleAdmin}},
		{"top-level support", "", devidp.Claims{Roles: []string{"support"}}, []auth.Role{auth.RoleCustomer, auth.RoleSupport}},
		{"both, plus unknown names", "", devidp.Claims{Roles: []string{"superuser", "admin", "support", "customer"}},
			[]auth.Role{auth.RoleCustomer, auth.RoleSupport, auth.RoleAdmin}},
		{"upper-case names are not role names", "", devidp.Claims{Roles: []string{"ADMIN", "Support"}}, customer},
		{"single string value", "", devidp.Claims{Extra: map[string]any{"roles": "support"}}, []auth.Role{auth.RoleCustomer, auth.RoleSupport}},
		{"comma string is one unknown name", "", devidp.Claims{Extra: map[string]any{"roles": "admin,support"}}, customer},
		{"number", "", devidp.Claims{Extra: map[string]any{"roles": 3}}, customer},
		{"boolean", "", devidp.Claims{Extra: map[string]any{"roles": true}}, customer},
		{"object", "", devidp.Claims{Extra: map[string]any{"roles": map[string]any{"admin": true}}}, customer},
		{"array with a non-string", "", devidp.Claims{Extra: map[string]any{"roles": []any{"admin", 1}}}, customer},
		{"nested array", "", devidp.Claims{Extra: map[string]any{"roles": []any{[]any{"admin"}}}}, customer},
		{"dotted path", "realm_access.roles", devidp.Claims{Extra: map[string]any{
			"realm_access": map[string]any{"roles": []string{"offline_access", "admin"}},
		}}, []auth.Role{auth.RoleCustomer, auth.RoleAdmin}},
		{"dotted path ignores top-level roles", "realm_access.roles", devidp.Claims{Roles: []string{"admin"}}, customer},
		{"dotted path through a non-object", "realm_access.roles", devidp.Claims{Extra: map[string]any{"realm_access": "admin"}}, customer},
		{"dotted path to a string", "realm_access.roles", devidp.Claims{Extra: map[string]any{
			"realm_access": map[string]any{"roles": "support"},
		}}, []auth.Role{auth.RoleCustomer, auth.RoleSupport}},
		{"namespaced URL claim with dots", nsClaim, devidp.Claims{Extra: map[string]any{nsClaim: []string{"support"}}},
			[]auth.Role{auth.RoleCustomer, auth.RoleSupport}},
		{"namespaced claim absent", nsClaim, devidp.Claims{Roles: []string{"admin"}}, customer},
		{"literal name wins over path", "a.b", devidp.Claims{Extra: map[string]any{
			"a.b": []string{"admin"}, "a": map[string]any{"b": []string{"support"}},
		}}, []auth.Role{auth.RoleCustomer, auth.RoleAdmin}},
		{"path used when no literal", "a.b", devidp.Claims{Extra: map[string]any{
			"a": map[string]any{"b": []string{"support"}},
		}}, []auth.Role{auth.RoleCustomer, auth.RoleSupport}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.claims
			c.Subject = "user-1"
			p, err := verifiers[tt.rolesClaim].Verify(context.Background(), mustMint(t, iss, c))
			require.NoError(t, err)
			require.Equal(t, tt.want, p.Roles)
		})
	}
}

func TestAdminImpliesSupport(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	v := newVerifier(t, iss, "")

	tests := []struct {
		roles                []string
		customer, sup, admin bool
	}{
		{nil, true, false, false},
		{[]string{"support"}, true, true, false},
		{[]string{"admin"}, true, true, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.roles), func(t *testing.T) {
			t.Parallel()
			p, err := v.Verify(context.Background(), mustMint(t, iss, devidp.Claims{Subject: "u", Roles: tt.roles}))
			require.NoError(t, err)
			require.Equal(t, tt.customer, p.Has(auth.RoleCustomer))
			require.Equal(t, tt.sup, p.Has(auth.RoleSupport))
			require.Equal(t, tt.admin, p.Has(auth.RoleAdmin))
		})
	}
}

func TestVerifyUsesConfiguredClock(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	future := time.Now().Add(2 * time.Hour)
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		IssuerURL: iss.IssuerURL(), Audience: audience, Now: func() time.Time { return future },
	})
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), mustMint(t, iss, devidp.Claims{Subject: "u"}))
	require.Equal(t, auth.ReasonExpired, auth.FailureReason(err))
}

func TestFailureReason(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	v := newVerifier(t, iss, "")
	_, tokenErr := v.Verify(context.Background(), mustMint(t, iss, devidp.Claims{Subject: "u", Audience: []string{"x"}}))
	require.Error(t, tokenErr)

	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"foreign error", errors.New("boom"), auth.ReasonUnknown},
		{"sentinel alone", auth.ErrInvalidToken, auth.ReasonUnknown},
		{"verify error", tokenErr, auth.ReasonAudience},
		{"wrapped verify error", fmt.Errorf("resolver: %w", tokenErr), auth.ReasonAudience},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, auth.FailureReason(tt.err))
		})
	}
	// The message is the reason only: go-oidc's detail (which echoes claim values
	// such as the audience) stays out of it.
	require.Equal(t, "auth: invalid access token: audience", tokenErr.Error())
}

func TestVerifyRequireATJWT(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	v, err := auth.NewVerifier(context.Background(), auth.Config{IssuerURL: iss.IssuerURL(), Audience: audience, RequireATJWT: true})
	require.NoError(t, err)

	tests := []struct {
		name   string
		header map[string]any
		claims map[string]any
		ok     bool
	}{
		{"at+jwt", map[string]any{"typ": "at+jwt"}, validClaims(iss), true},
		{"application/at+jwt, any case", map[string]any{"typ": "application/AT+JWT"}, validClaims(iss), true},
		{"JWT", map[string]any{"typ": "JWT"}, validClaims(iss), false},
		{"no typ", nil, validClaims(iss), false},
		{"typ at+jwt with a space", map[string]any{"typ": "at+jwt "}, validClaims(iss), false},
		{"ID token without nonce, aud is its client", map[string]any{"typ": "JWT"}, with(idTokenClaims(iss), "azp", audience, "scope", "openid"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := iss.SignRaw(tt.header, tt.claims)
			require.NoError(t, err)
			p, err := v.Verify(context.Background(), tok)
			if tt.ok {
				require.NoError(t, err)
				require.Equal(t, "user-1", p.Subject)
				return
			}
			require.Equal(t, auth.ReasonNotAccessToken, auth.FailureReason(err))
		})
	}
}
