package devidp_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/devidp"
)

const (
	clientID    = "scoville-playground"
	redirectURI = "http://127.0.0.1:8080/playground"
	appOrigin   = "http://127.0.0.1:8080"
	// verifier is a valid RFC 7636 code_verifier (43 characters).
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

func challengeOf(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func startFlowIssuer(t *testing.T) *devidp.Issuer {
	t.Helper()
	iss, _ := startIssuer(t)
	require.NoError(t, iss.RegisterClient(clientID, redirectURI, "http://localhost:8080/playground"))
	return iss
}

func authorizeParams() url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirectURI},
		"scope":                 {"openid profile email"},
		"state":                 {"st-123"},
		"code_challenge":        {challengeOf(verifier)},
		"code_challenge_method": {"S256"},
	}
}

// approve posts the sign-in page's form as user and returns the redirect.
func approve(t *testing.T, iss *devidp.Issuer, params url.Values, user string) *url.URL {
	t.Helper()
	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	form.Set("user", user)
	resp, err := noRedirects.PostForm(iss.AuthorizeURL(), form)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	return loc
}

// codeFor signs in as user and returns the code sent back to the client.
func codeFor(t *testing.T, iss *devidp.Issuer, user string) string {
	t.Helper()
	loc := approve(t, iss, authorizeParams(), user)
	code := loc.Query().Get("code")
	require.NotEmpty(t, code, loc.String())
	return code
}

func exchange(t *testing.T, iss *devidp.Issuer, form url.Values, origin string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, iss.TokenURL(), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp, body
}

func exchangeForm(code string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"client_id":     {clientID},
		"code_verifier": {verifier},
	}
}

func TestDiscoveryAdvertisesCodeFlow(t *testing.T) {
	t.Parallel()
	iss := startFlowIssuer(t)
	resp, err := http.Get(iss.IssuerURL() + "/.well-known/openid-configuration")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"), "browser clients read discovery")
	var doc map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	require.Equal(t, iss.AuthorizeURL(), doc["authorization_endpoint"])
	require.Equal(t, iss.TokenURL(), doc["token_endpoint"])
	require.Equal(t, []any{"S256"}, doc["code_challenge_methods_supported"])
	require.Equal(t, []any{"code"}, doc["response_types_supported"])
	require.Contains(t, doc["grant_types_supported"], "authorization_code")
	require.Equal(t, true, doc["authorization_response_iss_parameter_supported"])
}

func TestAuthorizationCodeFlow(t *testing.T) {
	t.Parallel()
	iss := startFlowIssuer(t)

	// The sign-in page lists the demo users in a form that posts back here.
	resp, err := http.Get(iss.AuthorizeURL() + "?" + authorizeParams().Encode())
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, "default-src 'none'; form-action 'self' "+appOrigin+"; frame-ancestors 'none'", resp.Header.Get("Content-Security-Policy"))
	for _, u := range devidp.DemoUsers {
		require.Contains(t, string(page), `id="user-`+u.Key+`"`)
	}
	require.Contains(t, string(page), `action="`+iss.AuthorizeURL()+`"`)

	loc := approve(t, iss, authorizeParams(), "admin")
	require.Equal(t, redirectURI, loc.Scheme+"://"+loc.Host+loc.Path)
	require.Equal(t, "st-123", loc.Query().Get("state"))
	require.Equal(t, iss.IssuerURL(), loc.Query().Get("iss"))

	resp, body := exchange(t, iss, exchangeForm(loc.Query().Get("code")), appOrigin)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, appOrigin, resp.Header.Get("Access-Control-Allow-Origin"), "the client's page may read the answer")
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Equal(t, "Bearer", body["token_type"])
	require.EqualValues(t, devidp.CodeTokenLifetime.Seconds(), body["expires_in"])
	require.Equal(t, "openid profile email", body["scope"])

	// The token verifies like any other, for the demo admin.
	p, err := oidc.NewProvider(context.Background(), iss.IssuerURL())
	require.NoError(t, err)
	tok, _ := body["access_token"].(string)
	_, err = p.Verifier(&oidc.Config{ClientID: audience}).Verify(context.Background(), tok)
	require.NoError(t, err)
	claims := decodePart(t, tok, 1)
	require.Equal(t, "demo-admin", claims["sub"])
	require.Equal(t, []any{"admin"}, claims["roles"])
	require.Equal(t, clientID, claims["client_id"])
	require.NotNil(t, claims["auth_time"])
}

func TestLoginHintApprovesAtOnce(t *testing.T) {
	t.Parallel()
	iss := startFlowIssuer(t)
	params := authorizeParams()
	params.Set("login_hint", "support")
	resp, err := noRedirects.Get(iss.AuthorizeURL() + "?" + params.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	_, body := exchange(t, iss, exchangeForm(loc.Query().Get("code")), "")
	tok, _ := body["access_token"].(string)
	require.Equal(t, "demo-support", decodePart(t, tok, 1)["sub"])
}

func TestTokenExchangeRefusals(t *testing.T) {
	t.Parallel()
	iss := startFlowIssuer(t)
	require.NoError(t, iss.RegisterClient("other-client", "http://127.0.0.1:9999/cb"))

	refused := func(t *testing.T, form url.Values, status int, oauthErr string) {
		t.Helper()
		resp, body := exchange(t, iss, form, appOrigin)
		require.Equal(t, status, resp.StatusCode, body)
		require.Equal(t, oauthErr, body["error"])
		require.NotContains(t, body, "access_token")
	}

	t.Run("wrong verifier, and the code is used up by the attempt", func(t *testing.T) {
		t.Parallel()
		code := codeFor(t, iss, "admin")
		form := exchangeForm(code)
		form.Set("code_verifier", strings.Repeat("x", 43))
		refused(t, form, http.StatusBadRequest, "invalid_grant")
		refused(t, exchangeForm(code), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("code reused", func(t *testing.T) {
		t.Parallel()
		code := codeFor(t, iss, "admin")
		resp, _ := exchange(t, iss, exchangeForm(code), appOrigin)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		refused(t, exchangeForm(code), http.StatusBadRequest, "invalid_grant")
	})
	// A fresh code exchanged with one field of the form changed to each value.
	for _, tc := range []struct {
		name, field string
		values      []string
		status      int
		errorCode   string
	}{
		{"wrong redirect URI", "redirect_uri", []string{"http://localhost:8080/playground", redirectURI + "/", redirectURI + "?x=1", ""},
			http.StatusBadRequest, "invalid_grant"},
		{"another client", "client_id", []string{"other-client"}, http.StatusBadRequest, "invalid_grant"},
		{"unknown client", "client_id", []string{"nobody"}, http.StatusUnauthorized, "invalid_client"},
		{"malformed verifier", "code_verifier", []string{"", "short", strings.Repeat("a", 129), strings.Repeat("a", 42) + "+"},
			http.StatusBadRequest, "invalid_request"},
		{"other grant types", "grant_type", []string{"password"}, http.StatusBadRequest, "unsupported_grant_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, v := range tc.values {
				form := exchangeForm(codeFor(t, iss, "admin"))
				form.Set(tc.field, v)
				refused(t, form, tc.status, tc.errorCode)
			}
		})
	}
	t.Run("unknown code", func(t *testing.T) {
		t.Parallel()
		refused(t, exchangeForm(strings.Repeat("0", 64)), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("verifier sent as the challenge (plain)", func(t *testing.T) {
		t.Parallel()
		params := authorizeParams()
		params.Set("code_challenge", verifier)
		loc := approve(t, iss, params, "admin")
		form := exchangeForm(loc.Query().Get("code"))
		refused(t, form, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("a page on another origin cannot read the answer", func(t *testing.T) {
		t.Parallel()
		resp, _ := exchange(t, iss, exchangeForm(codeFor(t, iss, "admin")), "http://evil.example")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	})
}

func TestAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	iss := startFlowIssuer(t)

	// An unknown client or unregistered redirect URI is answered on the issuer's
	// own page, never by a redirect to that URI.
	for name, mutate := range map[string]func(url.Values){
		"unknown client":               func(v url.Values) { v.Set("client_id", "nobody") },
		"no client":                    func(v url.Values) { v.Del("client_id") },
		"unregistered redirect":        func(v url.Values) { v.Set("redirect_uri", "http://evil.example/playground") },
		"redirect with trailing slash": func(v url.Values) { v.Set("redirect_uri", redirectURI+"/") },
		"redirect with a query":        func(v url.Values) { v.Set("redirect_uri", redirectURI+"?next=/") },
		"no redirect":                  func(v url.Values) { v.Del("redirect_uri") },
	} {
		params := authorizeParams()
		mutate(params)
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			var resp *http.Response
			var err error
			if method == http.MethodGet {
				resp, err = noRedirects.Get(iss.AuthorizeURL() + "?" + params.Encode())
			} else {
				params.Set("user", "admin")
				resp, err = noRedirects.PostForm(iss.AuthorizeURL(), params)
			}
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, name+" "+method)
			require.Empty(t, resp.Header.Get("Location"), name)
		}
	}

	// Other faults go back to the client, with the state.
	for name, tc := range map[string]struct {
		mutate func(url.Values)
		want   string
	}{
		"implicit flow":         {func(v url.Values) { v.Set("response_type", "token") }, "unsupported_response_type"},
		"no PKCE":               {func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, "invalid_request"},
		"plain PKCE":            {func(v url.Values) { v.Set("code_challenge_method", "plain") }, "invalid_request"},
		"malformed challenge":   {func(v url.Values) { v.Set("code_challenge", "abc") }, "invalid_request"},
		"unknown demo user":     {func(v url.Values) { v.Set("login_hint", "root") }, "access_denied"},
		"user without approval": {func(v url.Values) { v.Set("user", "admin"); v.Set("login_hint", "nobody") }, "access_denied"},
	} {
		params := authorizeParams()
		tc.mutate(params)
		resp, err := noRedirects.Get(iss.AuthorizeURL() + "?" + params.Encode())
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, name)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, tc.want, loc.Query().Get("error"), name)
		require.Equal(t, "st-123", loc.Query().Get("state"), name)
		require.Empty(t, loc.Query().Get("code"), name)
	}
}

func TestRegisterClientRefusesBadInput(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	require.Error(t, iss.RegisterClient("", redirectURI))
	require.Error(t, iss.RegisterClient(" c", redirectURI))
	require.Error(t, iss.RegisterClient("c"))
	require.Error(t, iss.RegisterClient("c", "/playground"))
	require.Error(t, iss.RegisterClient("c", "javascript:alert(1)"))
	require.Error(t, iss.RegisterClient("c", redirectURI+"#x"))
}
