package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// MaxTokenBytes is the longest access token Verify and Middleware accept; longer
// ones are refused before any parsing.
const MaxTokenBytes = 16 << 10

// DefaultRolesClaim is where roles are read when Config.RolesClaim is empty.
const DefaultRolesClaim = "roles"

// allowedAlgorithms is the explicit signature-algorithm allow-list: asymmetric
// algorithms only, never HS* (a public key used as an HMAC secret) and never none.
var allowedAlgorithms = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.EdDSA,
}

// nbfLeeway is the clock skew tolerated for nbf; go-oidc's own check allows 5 min.
const nbfLeeway = time.Minute

// Discovery retry: attempts back off by these pauses, all within discoveryBudget.
const discoveryBudget = 14 * time.Second

var defaultDiscoveryBackoff = []time.Duration{
	500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
}

// Config says which issuer and audience Verify accepts.
type Config struct {
	// IssuerURL is the OIDC issuer (OIDC_ISSUER_URL); it must equal the discovery
	// document's issuer and every token's iss exactly.
	IssuerURL string
	// Audience must appear in every token's aud.
	Audience string
	// RolesClaim names the claim holding role names: a literal top-level claim name
	// first (e.g. "https://scoville.example/roles"), else a dotted path
	// ("realm_access.roles"). Empty means DefaultRolesClaim.
	RolesClaim string
	// HTTPClient fetches discovery and JWKS. Nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock for exp and nbf. Nil means time.Now.
	Now func() time.Time
	// RequireATJWT (OIDC_REQUIRE_AT_JWT) accepts only tokens whose JWS typ header is
	// "at+jwt" or "application/at+jwt" (RFC 9068), which no ID token carries. Leave
	// it off for issuers that do not mark their access tokens so.
	RequireATJWT bool
	// KeyRefreshCooldown is the least time between two JWKS fetches triggered by
	// tokens naming a key id not in the cache (IAM-1): a flood of invented key ids
	// costs the issuer one request per cool-down, and a key rotated in at the issuer
	// is accepted at the latest one cool-down after the first token that names it.
	// Zero means DefaultKeyRefreshCooldown.
	KeyRefreshCooldown time.Duration
	// TokenCacheSize bounds how many verified tokens are remembered until they
	// expire (see Verify). Zero means DefaultTokenCacheSize; negative turns the cache
	// off.
	TokenCacheSize int

	// discoveryBackoff overrides defaultDiscoveryBackoff (tests only).
	discoveryBackoff []time.Duration
	// keyClock times the key cool-down; nil means time.Now (tests only).
	keyClock func() time.Time
}

// TokenVerifier turns a raw bearer token into a Principal. *Verifier implements it;
// tests of code above the middleware may fake it.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*Principal, error)
}

// Verifier checks access tokens of one issuer and audience against the issuer's
// published keys. Keys are fetched from the JWKS and re-fetched when a token names
// an unknown kid, at most once per Config.KeyRefreshCooldown, so keys rotated in at
// the issuer work without a restart and invented kids cannot flood the issuer. Safe
// for concurrent use.
type Verifier struct {
	oidc       *oidc.IDTokenVerifier
	issuer     string
	audience   string
	rolesClaim string
	requireAT  bool
	now        func() time.Time
	cache      *tokenCache // nil: every token is verified every time
	keys       *keySet
}

var _ TokenVerifier = (*Verifier)(nil)

// NewVerifier runs OIDC discovery at cfg.IssuerURL, retrying a few times with
// backoff (under 15 s in all) so the API can start alongside its issuer, and returns
// a Verifier. The error names OIDC_ISSUER_URL but never URL credentials.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.IssuerURL == "" {
		return nil, errors.New("auth: OIDC_ISSUER_URL is empty: set it to the OpenID Connect issuer URL")
	}
	u, err := url.Parse(cfg.IssuerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("auth: OIDC_ISSUER_URL must be an absolute http(s) URL")
	}
	if cfg.Audience == "" {
		return nil, errors.New("auth: the access-token audience is empty: set it to the audience the issuer puts in aud")
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	rolesClaim := cfg.RolesClaim
	if rolesClaim == "" {
		rolesClaim = DefaultRolesClaim
	}
	backoff := cfg.discoveryBackoff
	if backoff == nil {
		backoff = defaultDiscoveryBackoff
	}

	provider, err := discover(oidc.ClientContext(ctx, client), cfg.IssuerURL, backoff)
	if err != nil {
		return nil, fmt.Errorf("auth: OIDC discovery at OIDC_ISSUER_URL=%s failed: %w", u.Redacted(), err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.JWKSURI == "" {
		return nil, fmt.Errorf("auth: the discovery document at OIDC_ISSUER_URL=%s has no jwks_uri", u.Redacted())
	}
	cooldown := cfg.KeyRefreshCooldown
	if cooldown <= 0 {
		cooldown = DefaultKeyRefreshCooldown
	}
	keyClock := cfg.keyClock
	if keyClock == nil {
		keyClock = time.Now
	}
	// The key set outlives ctx; each Verify's own context bounds waiting for a fetch.
	keys := newKeySet(client, meta.JWKSURI, cooldown, keyClock, allowedAlgorithms)
	var cache *tokenCache
	switch {
	case cfg.TokenCacheSize == 0:
		cache = newTokenCache(DefaultTokenCacheSize)
	case cfg.TokenCacheSize > 0:
		cache = newTokenCache(cfg.TokenCacheSize)
	}
	return &Verifier{
		cache: cache,
		keys:  keys,
		oidc: oidc.NewVerifier(cfg.IssuerURL, probingKeySet{inner: keys}, &oidc.Config{
			ClientID:             cfg.Audience,
			SupportedSigningAlgs: slices.Clone(allowedAlgorithms),
			Now:                  now,
		}),
		issuer:     cfg.IssuerURL,
		audience:   cfg.Audience,
		rolesClaim: rolesClaim,
		requireAT:  cfg.RequireATJWT,
		now:        now,
	}, nil
}

// discover calls oidc.NewProvider until it succeeds, the budget runs out, the
// backoff schedule is exhausted or the issuer answers with a different issuer.
func discover(ctx context.Context, issuer string, backoff []time.Duration) (*oidc.Provider, error) {
	ctx, cancel := context.WithTimeout(ctx, discoveryBudget)
	defer cancel()
	attempts := 0
	for {
		attempts++
		p, err := oidc.NewProvider(ctx, issuer)
		if err == nil {
			return p, nil
		}
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, err // configuration error: retrying cannot help
		}
		if attempts > len(backoff) {
			return nil, fmt.Errorf("%d attempts: %w", attempts, err)
		}
		t := time.NewTimer(backoff[attempts-1])
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%d attempts, gave up: %w", attempts, err)
		case <-t.C:
		}
	}
}

// probingKeySet wraps the issuer's key set (keySet) to record, for the Verify call whose
// context carries a *sigProbe, whether signature verification ran and succeeded.
// That tells a bad signature apart from the claim checks go-oidc runs afterwards.
type probingKeySet struct{ inner oidc.KeySet }

type sigProbe struct{ called, ok bool }

type probeKey struct{}

func (k probingKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.inner.VerifySignature(ctx, jwt)
	if p, ok := ctx.Value(probeKey{}).(*sigProbe); ok {
		p.called, p.ok = true, err == nil
	}
	return payload, err
}

// Verify checks raw as an access token of the configured issuer and audience and
// returns who it names. go-oidc checks the signature (against the allow-list of
// algorithms and the issuer's JWKS), iss, aud, exp and nbf; Verify adds: a size
// limit, a required numeric exp, nbf with 1 min leeway, a non-empty sub and that the
// token is an access token, not an ID token. Every error wraps ErrInvalidToken and
// has a FailureReason; none contains the token or claim values.
//
// A token that passed is remembered, by its SHA-256 hash, until its exp: the same
// token again is answered from memory, with the same principal, and is refused like
// any other once expired. Only that exact token matches; nothing else is cached.
// When a fetch of the issuer's keys finds a key gone, every remembered token is
// verified again, so a token signed with a revoked key is refused as it would be
// without the cache.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	if len(raw) > MaxTokenBytes {
		return nil, invalid(ReasonTooLarge, nil)
	}
	if v.cache == nil {
		return v.verify(ctx, raw)
	}
	key, gen := tokenKey(raw), v.keys.generation()
	if p, ok := v.cache.get(key, gen, v.now()); ok {
		return p, nil
	}
	p, err := v.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	v.cache.put(key, gen, p, v.now())
	return p, nil
}

// verify is Verify without the cache.
func (v *Verifier) verify(ctx context.Context, raw string) (*Principal, error) {
	header, unverifiedClaims, err := splitCompact(raw)
	if err != nil {
		return nil, invalid(ReasonMalformed, err)
	}
	// Refuse disallowed algorithms before any key is looked at. go-oidc refuses
	// them too; checking here gives the precise reason.
	if alg, ok := header["alg"].(string); !ok || !slices.Contains(allowedAlgorithms, alg) {
		return nil, invalid(ReasonAlgorithm, nil)
	}

	probe := &sigProbe{}
	tok, err := v.oidc.Verify(context.WithValue(ctx, probeKey{}, probe), raw)
	if err != nil {
		return nil, v.classify(err, probe, unverifiedClaims)
	}

	// From here the header and claims are authenticated: the signature covers both
	// segments exactly as splitCompact decoded them, so those decoded claims are the
	// verified ones and are not decoded again.
	claims := unverifiedClaims
	now := v.now()

	// go-oidc reports a missing exp as expired at the zero time; refuse it here by
	// name, and do not rely on go-oidc for it.
	expClaim, ok := claims["exp"]
	if !ok || expClaim == nil {
		return nil, invalid(ReasonMissingExp, nil)
	}
	exp, ok := numericDate(expClaim)
	if !ok {
		return nil, invalid(ReasonMalformed, errors.New("exp is not a NumericDate"))
	}
	if !now.Before(exp) {
		return nil, invalid(ReasonExpired, nil)
	}
	if nbfClaim, present := claims["nbf"]; present {
		nbf, ok := numericDate(nbfClaim)
		if !ok {
			return nil, invalid(ReasonMalformed, errors.New("nbf is not a NumericDate"))
		}
		if nbf.After(now.Add(nbfLeeway)) {
			return nil, invalid(ReasonNotYetValid, nil)
		}
	}
	if reason := v.notAccessToken(header, claims); reason != "" {
		return nil, invalid(ReasonNotAccessToken, errors.New(reason))
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, invalid(ReasonMissingSubject, nil)
	}

	p := &Principal{
		Issuer:  tok.Issuer,
		Subject: sub,
		Email:   stringClaim(claims, "email"),
		Name:    stringClaim(claims, "name"),
		Roles:   rolesFrom(lookupClaim(claims, v.rolesClaim)),
		ACR:     stringClaim(claims, "acr"),
		AMR:     stringList(claims["amr"]),
		Expiry:  exp,
	}
	p.EmailVerified, _ = claims["email_verified"].(bool)
	if at, ok := numericDate(claims["auth_time"]); ok {
		p.AuthTime = at
	}
	return p, nil
}

// classify turns a go-oidc failure into a reason. go-oidc's errors are untyped
// except TokenExpiredError, so the other reasons are derived from what is known:
// whether the signature check ran and passed (probe) and, when it passed, the
// now-authenticated claims checked in go-oidc's order (iss, aud, nbf).
func (v *Verifier) classify(err error, probe *sigProbe, claims map[string]any) error {
	switch {
	case !probe.called:
		return invalid(ReasonMalformed, err) // go-jose refused to parse it
	case !probe.ok:
		return invalid(ReasonBadSignature, err)
	}
	var expired *oidc.TokenExpiredError
	if errors.As(err, &expired) {
		if expired.Expiry.IsZero() {
			return invalid(ReasonMissingExp, err)
		}
		return invalid(ReasonExpired, err)
	}
	if iss, _ := claims["iss"].(string); iss != v.issuer {
		return invalid(ReasonIssuer, err)
	}
	if !slices.Contains(stringOrList(claims["aud"]), v.audience) {
		return invalid(ReasonAudience, err)
	}
	if nbf, ok := numericDate(claims["nbf"]); ok && nbf.After(v.now()) {
		return invalid(ReasonNotYetValid, err)
	}
	return invalid(ReasonMalformed, err)
}

// Typ header values of access tokens (RFC 9068 and the generic JWT); compared
// case-insensitively. atJWTTypes are the RFC 9068 ones alone.
var (
	accessTokenTypes = []string{"at+jwt", "application/at+jwt", "jwt"}
	atJWTTypes       = accessTokenTypes[:2]
)

// Claims that carry an access token's granted scope (scope: RFC 9068, Keycloak,
// Auth0; scp: Okta, Entra ID) and the client it was issued to (client_id: RFC 9068;
// azp: Keycloak, Auth0, Entra ID v2; cid: Okta; appid: Entra ID v1).
var (
	scopeClaims  = []string{"scope", "scp"}
	clientClaims = []string{"client_id", "azp", "cid", "appid"}
)

// notAccessToken says why an authenticated token is not an access token, or "".
// An ID token must not be usable as an API credential: it is handed to the client
// (and often to third parties) for a different purpose. Where the audience is also
// a client id, the issuer mints ID tokens with exactly this aud, so besides the
// markers of ID tokens (typ, nonce, hash claims) the token must show it is an
// access token: it carries a scope, or names a client other than the audience.
func (v *Verifier) notAccessToken(header, claims map[string]any) string {
	typ, typPresent := header["typ"]
	typStr, _ := typ.(string)
	if typPresent && !slices.Contains(accessTokenTypes, strings.ToLower(typStr)) {
		return "typ header is not an access-token type"
	}
	if v.requireAT && !slices.Contains(atJWTTypes, strings.ToLower(typStr)) {
		return "typ header is not at+jwt (OIDC_REQUIRE_AT_JWT)"
	}
	for _, idOnly := range []string{"nonce", "at_hash", "c_hash"} {
		if _, present := claims[idOnly]; present {
			return "carries an ID-token-only claim"
		}
	}
	// Keycloak marks its tokens with a typ claim: Bearer for access tokens; ID,
	// Refresh and Offline for the others.
	if typ, ok := claims["typ"].(string); ok {
		switch strings.ToLower(typ) {
		case "id", "refresh", "offline":
			return "typ claim is not an access-token type"
		}
	}
	// Amazon Cognito: token_use is "access" or "id".
	if use, present := claims["token_use"]; present && use != "access" {
		return "token_use claim is not access"
	}
	if slices.ContainsFunc(scopeClaims, func(name string) bool {
		return slices.ContainsFunc(stringOrList(claims[name]), func(s string) bool { return strings.TrimSpace(s) != "" })
	}) {
		return ""
	}
	for _, name := range clientClaims {
		if c, ok := claims[name].(string); ok && c != "" && c != v.audience {
			return ""
		}
	}
	return "carries no scope and names no client other than the audience"
}

// splitCompact decodes the header and claims of a compact JWS (three base64url
// segments) without verifying anything. Other serializations are refused.
func splitCompact(raw string) (header, claims map[string]any, err error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return nil, nil, errors.New("not a compact JWS")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, nil, errors.New("header is not base64url")
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, nil, errors.New("payload is not base64url")
	}
	if header, err = decodeObject(hb); err != nil {
		return nil, nil, errors.New("header is not a JSON object")
	}
	if claims, err = decodeObject(cb); err != nil {
		return nil, nil, errors.New("payload is not a JSON object")
	}
	return header, claims, nil
}

// decodeObject decodes one JSON object, keeping numbers as json.Number.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil || dec.More() {
		return nil, errors.New("not a single JSON object")
	}
	return m, nil
}

// maxNumericDate is 9999-12-31T23:59:59Z; larger values are refused rather than
// overflowing time conversions.
const maxNumericDate = 253402300799

// numericDate reads an RFC 7519 NumericDate (a JSON number of seconds).
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < -maxNumericDate || f > maxNumericDate {
		return time.Time{}, false
	}
	if i, err := n.Int64(); err == nil {
		return time.Unix(i, 0), true
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

func stringClaim(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}

// stringList returns v as a list of strings when it is a JSON array holding only
// strings, else nil.
func stringList(v any) []string {
	arr, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// stringOrList accepts a single string or an array of strings.
func stringOrList(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	return stringList(v)
}

// lookupClaim finds the claim named name: first as a literal top-level name (which
// may contain dots, like Auth0's namespaced URLs), else as a dotted path through
// nested objects.
func lookupClaim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	if !strings.Contains(name, ".") {
		return nil
	}
	var cur any = claims
	for _, seg := range strings.Split(name, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = obj[seg]; !ok {
			return nil
		}
	}
	return cur
}

// rolesFrom maps the roles claim to Roles: always RoleCustomer, plus RoleSupport
// and RoleAdmin for the exact names "support" and "admin". Unknown names and values
// of other types grant nothing more.
func rolesFrom(v any) []Role {
	roles := []Role{RoleCustomer}
	names := stringOrList(v)
	if slices.Contains(names, "support") {
		roles = append(roles, RoleSupport)
	}
	if slices.Contains(names, "admin") {
		roles = append(roles, RoleAdmin)
	}
	return roles
}
