package devidp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Limits of the POST /token mint endpoint.
const (
	// DefaultTokenTTL is the lifetime of a token minted over HTTP without ttl.
	DefaultTokenTTL = 12 * time.Hour
	// MaxTokenTTL is the longest ttl POST /token accepts.
	MaxTokenTTL = 24 * time.Hour
)

// maxFormBytes bounds the body POST /token reads.
const maxFormBytes = 64 << 10

// roleName is what POST /token accepts as one role: the lower-case names the API
// maps (admin, support) and any other lower-case name, which verifiers ignore.
var roleName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// Handler serves the issuer under the path of its issuer URL:
//
//	GET  /.well-known/openid-configuration  discovery document (any origin may read it)
//	GET  /jwks                              every published public key (no-store; any origin)
//	GET  /authorize                         authorization code flow with PKCE S256 for the
//	POST /authorize                         clients registered with RegisterClient: a page
//	                                        to pick a demo user (or login_hint=admin etc.)
//	POST /token                             grant_type=authorization_code: the code exchange
//	                                        (readable by the client's redirect origins);
//	                                        no grant_type: the development mint endpoint
//	                                        (form fields sub, email, name, roles, auth_age, ttl)
//	POST /rotate                            RotateKey; returns {"kid": ...}
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+i.path+"/.well-known/openid-configuration", i.serveDiscovery)
	mux.HandleFunc("GET "+i.path+"/jwks", i.serveJWKS)
	mux.HandleFunc("GET "+i.path+"/authorize", i.serveAuthorize)
	mux.HandleFunc("POST "+i.path+"/authorize", i.serveAuthorize)
	mux.HandleFunc("POST "+i.path+"/token", i.serveToken)
	mux.HandleFunc("POST "+i.path+"/rotate", i.serveRotate)
	return mux
}

// StartTestServer starts an Issuer on a loopback httptest server and returns both;
// the issuer URL is the server's URL, so discovery works without configuration.
// The caller must Close the server.
func StartTestServer(audience string) (*Issuer, *httptest.Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("devidp: listen on loopback: %w", err)
	}
	iss, err := New("http://"+l.Addr().String(), audience)
	if err != nil {
		_ = l.Close()
		return nil, nil, err
	}
	srv := httptest.NewUnstartedServer(iss.Handler())
	_ = srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	return iss, srv, nil
}

// discovery is the subset of OpenID Connect Discovery 1.0 metadata the issuer offers.
type discovery struct {
	Issuer                            string   `json:"issuer"`
	JWKSURI                           string   `json:"jwks_uri"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseIssParameter bool     `json:"authorization_response_iss_parameter_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	// Public metadata: a browser client on any origin reads it before signing in.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, discovery{
		Issuer:                            i.issuerURL,
		JWKSURI:                           i.JWKSURL(),
		AuthorizationEndpoint:             i.AuthorizeURL(),
		TokenEndpoint:                     i.TokenURL(),
		CodeChallengeMethodsSupported:     []string{"S256"},
		AuthorizationResponseIssParameter: true,
		ResponseTypesSupported:            []string{"code"},
		SubjectTypesSupported:             []string{"public"},
		GrantTypesSupported:               []string{"authorization_code", "client_credentials"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		TokenEndpointAuthMethodsSupported: []string{"none"},
		ScopesSupported:                   []string{"openid", "email", "profile"},
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti",
			"auth_time", "email", "name", "roles", "acr", "amr"},
	})
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	keys := i.publishedKeys()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       &k.priv.PublicKey,
			KeyID:     k.kid,
			Algorithm: "RS256",
			Use:       "sig",
		})
	}
	writeJSON(w, http.StatusOK, set)
}

// tokenResponse is the RFC 6749 section 5.1 success body of POST /token.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeError(w, "the body must be an application/x-www-form-urlencoded form under 64 KiB")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "", "client_credentials":
		// The development mint endpoint, below.
	case "authorization_code":
		clientID := r.PostForm.Get("client_id")
		if i.clientOrigin(clientID, r.Header.Get("Origin")) {
			w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		}
		w.Header().Add("Vary", "Origin")
		resp, terr := i.exchangeCode(r)
		if terr != nil {
			writeJSON(w, terr.status, map[string]string{"error": terr.code, "error_description": terr.description})
			return
		}
		writeJSON(w, http.StatusOK, resp)
		return
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{
			"error": "unsupported_grant_type", "error_description": "grant_type must be authorization_code, or empty for the development mint",
		})
		return
	}
	c, ttl, err := claimsFromForm(r, time.Now())
	if err != nil {
		writeError(w, err.Error())
		return
	}
	tok, err := i.Mint(c)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{
			"error": "server_error", "error_description": "could not sign the token",
		})
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: tok,
		TokenType:   "Bearer",
		ExpiresIn:   int64(ttl / time.Second),
	})
}

// claimsFromForm reads the POST /token fields. Error messages name the field but
// never echo a submitted value.
func claimsFromForm(r *http.Request, now time.Time) (Claims, time.Duration, error) {
	f := r.PostForm
	c := Claims{
		Subject:  strings.TrimSpace(f.Get("sub")),
		Email:    strings.TrimSpace(f.Get("email")),
		Name:     strings.TrimSpace(f.Get("name")),
		IssuedAt: now,
	}
	if c.Subject == "" {
		return Claims{}, 0, errors.New("sub is required")
	}
	if raw := strings.TrimSpace(f.Get("roles")); raw != "" {
		for _, name := range strings.Split(raw, ",") {
			name = strings.TrimSpace(name)
			if !roleName.MatchString(name) {
				return Claims{}, 0, errors.New("roles must be a comma-separated list of lower-case role names, e.g. admin,support")
			}
			c.Roles = append(c.Roles, name)
		}
	}
	switch raw := strings.TrimSpace(f.Get("auth_age")); raw {
	case "none":
	case "":
		c.AuthTime = now
	default:
		age, err := time.ParseDuration(raw)
		if err != nil || age < 0 {
			return Claims{}, 0, errors.New("auth_age must be a non-negative Go duration (e.g. 10m) or none")
		}
		c.AuthTime = now.Add(-age)
	}
	ttl := DefaultTokenTTL
	if raw := strings.TrimSpace(f.Get("ttl")); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 || d > MaxTokenTTL {
			return Claims{}, 0, errors.New("ttl must be a positive Go duration of at most 24h")
		}
		ttl = d
	}
	c.Expiry = now.Add(ttl)
	return c, ttl, nil
}

func (i *Issuer) serveRotate(w http.ResponseWriter, _ *http.Request) {
	kid, err := i.RotateKey()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{
			"error": "server_error", "error_description": "could not generate a key",
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"kid": kid})
}

func writeError(w http.ResponseWriter, description string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{
		"error": "invalid_request", "error_description": description,
	})
}

// writeJSON writes v with no-store caching: tokens must not be cached, and a JWKS
// that is never cached lets rotation show at once.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
