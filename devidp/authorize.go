package devidp

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// PlaygroundClientID is the public client `scoville devidp` registers for the
// Playground; PLAYGROUND_OIDC_CLIENT_ID names it on the server.
const PlaygroundClientID = "scoville-playground"

// CodeLifetime is how long an authorization code can be exchanged: RFC 6749
// recommends at most ten minutes; a browser exchanges it within a second.
const CodeLifetime = time.Minute

// CodeTokenLifetime is the lifetime of an access token got with a code.
const CodeTokenLifetime = time.Hour

// maxPendingCodes bounds how many codes wait for their exchange, so a script that
// asks for codes in a loop cannot grow memory without limit.
const maxPendingCodes = 1000

// DemoUser is someone the development sign-in page lets anyone become.
type DemoUser struct {
	Key     string // what the page and login_hint call the user: customer, support, admin
	Subject string
	Email   string
	Name    string
	Roles   []string
}

// DemoUsers are the accounts of the development sign-in page, the same people
// `make run` mints tokens for.
var DemoUsers = []DemoUser{
	{Key: "customer", Subject: "demo-customer", Email: "customer@example.com", Name: "Demo Customer"},
	{Key: "support", Subject: "demo-support", Email: "support@example.com", Name: "Demo Support", Roles: []string{"support"}},
	{Key: "admin", Subject: "demo-admin", Email: "admin@example.com", Name: "Demo Admin", Roles: []string{"admin"}},
}

func demoUser(key string) (DemoUser, bool) {
	for _, u := range DemoUsers {
		if u.Key == key {
			return u, true
		}
	}
	return DemoUser{}, false
}

// authCode is one issued authorization code, kept until it expires so that a
// second exchange is recognised and refused.
type authCode struct {
	clientID    string
	redirectURI string
	challenge   string
	scope       string
	user        DemoUser
	approvedAt  time.Time
	expires     time.Time
	used        bool
}

// AuthorizeURL returns the URL the discovery document announces as
// authorization_endpoint.
func (i *Issuer) AuthorizeURL() string { return i.base + "/authorize" }

// RegisterClient registers a public client (no secret; PKCE S256 required) and
// the exact redirect URIs it may use. Registering an id again replaces its URIs.
func (i *Issuer) RegisterClient(clientID string, redirectURIs ...string) error {
	if strings.TrimSpace(clientID) == "" || clientID != strings.TrimSpace(clientID) {
		return errors.New("devidp: client id must be non-empty, without surrounding spaces")
	}
	if len(redirectURIs) == 0 {
		return errors.New("devidp: a client needs at least one redirect URI")
	}
	for _, r := range redirectURIs {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			return errors.New("devidp: redirect URIs must be absolute http(s) URLs without a fragment")
		}
	}
	i.flowMu.Lock()
	defer i.flowMu.Unlock()
	if i.clients == nil {
		i.clients = map[string][]string{}
	}
	i.clients[clientID] = append([]string(nil), redirectURIs...)
	return nil
}

// redirectAllowed reports whether redirectURI is registered, byte for byte, for
// clientID.
func (i *Issuer) redirectAllowed(clientID, redirectURI string) bool {
	i.flowMu.Lock()
	defer i.flowMu.Unlock()
	for _, r := range i.clients[clientID] {
		if r == redirectURI {
			return true
		}
	}
	return false
}

// clientOrigin reports whether origin is the origin of one of clientID's redirect
// URIs: the only pages allowed to read the token endpoint's answers (CORS).
func (i *Issuer) clientOrigin(clientID, origin string) bool {
	if origin == "" {
		return false
	}
	i.flowMu.Lock()
	defer i.flowMu.Unlock()
	for _, r := range i.clients[clientID] {
		if u, err := url.Parse(r); err == nil && u.Scheme+"://"+u.Host == origin {
			return true
		}
	}
	return false
}

// pkceValue is the RFC 7636 alphabet and length of code_verifier and of an S256
// code_challenge (43 characters).
var (
	pkceVerifier  = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)
	pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
)

// authRequest is a validated authorization request.
type authRequest struct {
	ClientID, RedirectURI, State, Scope, Challenge string
}

// parseAuthRequest validates the parameters of GET or POST /authorize. A bad
// client or redirect URI is reported with redirect false: RFC 6749 section
// 4.1.2.1 forbids redirecting to an unverified URI. Other faults are reported
// to the client at its redirect URI.
func (i *Issuer) parseAuthRequest(v url.Values) (req authRequest, oauthErr string, redirect bool) {
	req = authRequest{
		ClientID:    v.Get("client_id"),
		RedirectURI: v.Get("redirect_uri"),
		State:       v.Get("state"),
		Scope:       v.Get("scope"),
		Challenge:   v.Get("code_challenge"),
	}
	if req.ClientID == "" || req.RedirectURI == "" || !i.redirectAllowed(req.ClientID, req.RedirectURI) {
		return req, "unknown client or a redirect URI not registered for it", false
	}
	switch {
	case v.Get("response_type") != "code":
		return req, "unsupported_response_type", true
	case v.Get("code_challenge_method") != "S256" || !pkceChallenge.MatchString(req.Challenge):
		// PKCE is required, and only S256: "plain" would hand the verifier over.
		return req, "invalid_request", true
	}
	return req, "", true
}

var authorizePage = template.Must(template.New("authorize").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Development sign-in</title></head>
<body>
<h1>Development sign-in</h1>
<p>This is the development identity provider: choose who to be. {{.ClientID}} receives a token for that person.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="response_type" value="code">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="scope" value="{{.Scope}}">
<input type="hidden" name="code_challenge" value="{{.Challenge}}">
<input type="hidden" name="code_challenge_method" value="S256">
{{range .Users}}<p><button type="submit" name="user" value="{{.Key}}" id="user-{{.Key}}">{{.Name}} ({{.Email}}{{range .Roles}}, {{.}}{{end}})</button></p>
{{end}}</form>
</body></html>
`))

// serveAuthorize is the authorization endpoint. GET shows the page where the
// developer picks a demo user, or approves at once when login_hint names one;
// POST (the page's form) approves. Approval redirects to the client with a
// single-use code.
func (i *Issuer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeAuthorizeError(w, "the request must be a form under 64 KiB")
		return
	}
	v := r.Form
	if r.Method == http.MethodPost {
		v = r.PostForm
	}
	req, oauthErr, redirect := i.parseAuthRequest(v)
	if !redirect {
		writeAuthorizeError(w, oauthErr)
		return
	}
	if oauthErr != "" {
		i.redirectBack(w, r, req, url.Values{"error": {oauthErr}})
		return
	}
	key := v.Get("user")
	if r.Method == http.MethodGet {
		key = v.Get("login_hint")
	}
	if key == "" && r.Method == http.MethodGet {
		target, _ := url.Parse(req.RedirectURI)
		w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self' "+target.Scheme+"://"+target.Host+"; frame-ancestors 'none'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = authorizePage.Execute(w, struct {
			authRequest
			Action string
			Users  []DemoUser
		}{req, i.AuthorizeURL(), DemoUsers})
		return
	}
	user, ok := demoUser(key)
	if !ok {
		i.redirectBack(w, r, req, url.Values{"error": {"access_denied"}, "error_description": {"unknown demo user"}})
		return
	}
	code, err := i.issueCode(req, user)
	if err != nil {
		i.redirectBack(w, r, req, url.Values{"error": {"temporarily_unavailable"}})
		return
	}
	i.redirectBack(w, r, req, url.Values{"code": {code}})
}

// redirectBack sends the browser to the client's redirect URI with params, the
// state and the issuer (RFC 9207).
func (i *Issuer) redirectBack(w http.ResponseWriter, r *http.Request, req authRequest, params url.Values) {
	u, _ := url.Parse(req.RedirectURI) // registered, so it parses
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if req.State != "" {
		q.Set("state", req.State)
	}
	q.Set("iss", i.issuerURL)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func writeAuthorizeError(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte("sign-in refused: " + msg + "\n"))
}

func (i *Issuer) issueCode(req authRequest, user DemoUser) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	code := hex.EncodeToString(b[:])
	now := i.clock()
	i.flowMu.Lock()
	defer i.flowMu.Unlock()
	for k, c := range i.codes {
		if !now.Before(c.expires) {
			delete(i.codes, k)
		}
	}
	if len(i.codes) >= maxPendingCodes {
		return "", errors.New("devidp: too many pending codes")
	}
	if i.codes == nil {
		i.codes = map[string]*authCode{}
	}
	i.codes[code] = &authCode{
		clientID: req.ClientID, redirectURI: req.RedirectURI, challenge: req.Challenge,
		scope: req.Scope, user: user, approvedAt: now, expires: now.Add(CodeLifetime),
	}
	return code, nil
}

// redeemCode returns the code's grant once. Any exchange attempt uses the code up,
// even one that fails, so a stolen code cannot be tried against verifiers.
func (i *Issuer) redeemCode(code string) (authCode, bool) {
	i.flowMu.Lock()
	defer i.flowMu.Unlock()
	c, ok := i.codes[code]
	if !ok || c.used || !i.clock().Before(c.expires) {
		return authCode{}, false
	}
	c.used = true
	return *c, true
}

// tokenError is an RFC 6749 section 5.2 error answer.
type tokenError struct {
	status      int
	code        string
	description string
}

// exchangeCode is POST /token with grant_type=authorization_code: the code, the
// client it was issued to, the exact redirect URI and the PKCE verifier must all
// match.
func (i *Issuer) exchangeCode(r *http.Request) (tokenResponse, *tokenError) {
	f := r.PostForm
	clientID := f.Get("client_id")
	i.flowMu.Lock()
	_, known := i.clients[clientID]
	i.flowMu.Unlock()
	if !known {
		return tokenResponse{}, &tokenError{http.StatusUnauthorized, "invalid_client", "unknown client"}
	}
	verifier := f.Get("code_verifier")
	if !pkceVerifier.MatchString(verifier) {
		return tokenResponse{}, &tokenError{http.StatusBadRequest, "invalid_request", "code_verifier must be 43 to 128 characters of [A-Za-z0-9._~-]"}
	}
	c, ok := i.redeemCode(f.Get("code"))
	if !ok {
		return tokenResponse{}, &tokenError{http.StatusBadRequest, "invalid_grant", "the code is unknown, expired or already used"}
	}
	if c.clientID != clientID || c.redirectURI != f.Get("redirect_uri") {
		return tokenResponse{}, &tokenError{http.StatusBadRequest, "invalid_grant", "the code was issued to another client or redirect URI"}
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(b64(sum[:])), []byte(c.challenge)) != 1 {
		return tokenResponse{}, &tokenError{http.StatusBadRequest, "invalid_grant", "the code_verifier does not match the code_challenge"}
	}
	now := i.clock()
	extra := map[string]any{"client_id": clientID} // RFC 9068 section 2.2
	if c.scope != "" {
		extra["scope"] = c.scope
	}
	tok, err := i.Mint(Claims{
		Subject: c.user.Subject, Email: c.user.Email, Name: c.user.Name, Roles: c.user.Roles,
		AuthTime: c.approvedAt, IssuedAt: now, Expiry: now.Add(CodeTokenLifetime), Extra: extra,
	})
	if err != nil {
		return tokenResponse{}, &tokenError{http.StatusInternalServerError, "server_error", "could not sign the token"}
	}
	return tokenResponse{
		AccessToken: tok, TokenType: "Bearer",
		ExpiresIn: int64(CodeTokenLifetime / time.Second), Scope: c.scope,
	}, nil
}

// clock is the issuer's time source; tests of code expiry replace it.
func (i *Issuer) clock() time.Time {
	if i.now != nil {
		return i.now()
	}
	return time.Now()
}
