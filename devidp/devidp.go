// Package devidp is a development OpenID Connect issuer. It publishes a discovery
// document and a JWKS like a real identity provider, so the tokens it mints go
// through exactly the same go-oidc verification as production tokens.
//
// It mints any token anyone asks for: never expose it outside local development
// and tests.
package devidp

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	_ "crypto/sha512" // registers SHA-384 and SHA-512 for RS384/512 and PS384/512
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// AccessTokenType is the JWS "typ" header of every token Mint produces (RFC 9068).
const AccessTokenType = "at+jwt"

// DefaultClientID and DefaultScope are the client_id and scope claims of a token Mint
// produces unless Claims.Extra sets others: an access token names the client it was
// issued to (RFC 9068 section 2.2) and the scope it grants.
const (
	DefaultClientID = "scoville-dev-client"
	DefaultScope    = "openid profile email"
)

// DefaultMintLifetime is the lifetime Mint gives a token whose Claims.Expiry is zero.
const DefaultMintLifetime = time.Hour

// maxKeys bounds how many keys stay published, so repeated rotation cannot grow
// the JWKS without limit; the oldest key is dropped first.
const maxKeys = 20

// rsaBits is the size of every signing key.
const rsaBits = 2048

// Issuer is a development OpenID Connect issuer holding one or more RSA signing keys.
// The newest key signs; all keys stay published in the JWKS. Safe for concurrent use.
type Issuer struct {
	issuerURL string // exactly as given: it is the iss claim and the discovery issuer
	base      string // issuerURL without a trailing slash, for building endpoint URLs
	path      string // path part of base, under which Handler serves
	audience  string

	mu   sync.RWMutex
	keys []signingKey // oldest first; the last one is current

	// The authorization code flow (authorize.go).
	flowMu  sync.Mutex
	clients map[string][]string  // public client id -> exact redirect URIs
	codes   map[string]*authCode // issued codes, until they expire
	now     func() time.Time     // nil: time.Now
}

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

// Claims describes the access token Mint produces. Zero values pick the defaults
// documented on each field.
type Claims struct {
	Subject string
	// Email is omitted when empty; when set, email_verified is true, as from an
	// issuer that has verified the address (Extra may set it false or remove it).
	Email string
	Name  string // omitted when empty
	// Roles go in the top-level "roles" claim (omitted when empty); put them
	// elsewhere, e.g. realm_access.roles, with Extra.
	Roles []string
	// Audience defaults to the issuer's audience when empty.
	Audience []string
	// AuthTime is when the user logged in; zero omits the auth_time claim.
	AuthTime time.Time
	// IssuedAt defaults to now; nbf is always set to the same instant.
	IssuedAt time.Time
	// Expiry defaults to IssuedAt + DefaultMintLifetime.
	Expiry time.Time
	ACR    string   // omitted when empty
	AMR    []string // omitted when empty
	// Extra adds or overrides top-level claims after all the above are set, for
	// example realm_access.roles or a wrong iss. A nil value removes the claim
	// (e.g. "exp": nil mints a token without exp).
	Extra map[string]any
}

// New returns an issuer whose iss claim and discovery issuer are exactly issuerURL,
// minting tokens for audience by default. It generates a first RSA-2048 key with a
// random kid.
func New(issuerURL string, audience string) (*Issuer, error) {
	u, err := url.Parse(issuerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("devidp: issuer URL must be an absolute http(s) URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("devidp: issuer URL must not have a query or fragment")
	}
	if audience == "" {
		return nil, errors.New("devidp: audience is required")
	}
	base := strings.TrimSuffix(issuerURL, "/")
	iss := &Issuer{
		issuerURL: issuerURL,
		base:      base,
		path:      strings.TrimSuffix(u.EscapedPath(), "/"),
		audience:  audience,
	}
	if _, err := iss.RotateKey(); err != nil {
		return nil, err
	}
	return iss, nil
}

// IssuerURL returns the issuer URL exactly as given to New: the value of every iss
// claim and of the discovery document's issuer.
func (i *Issuer) IssuerURL() string { return i.issuerURL }

// Audience returns the audience Mint uses when Claims.Audience is empty.
func (i *Issuer) Audience() string { return i.audience }

// JWKSURL returns the URL the discovery document announces as jwks_uri.
func (i *Issuer) JWKSURL() string { return i.base + "/jwks" }

// TokenURL returns the URL of the development mint endpoint (token_endpoint).
func (i *Issuer) TokenURL() string { return i.base + "/token" }

// RotateKey adds a fresh RSA-2048 signing key and makes it the one Mint and SignRaw
// use. Older keys stay published in the JWKS (up to the 20 most recent), so tokens
// they signed keep verifying.
func (i *Issuer) RotateKey() (kid string, err error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return "", fmt.Errorf("devidp: generate key: %w", err)
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("devidp: generate kid: %w", err)
	}
	kid = hex.EncodeToString(b[:])
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append(i.keys, signingKey{kid: kid, priv: priv})
	if len(i.keys) > maxKeys {
		i.keys = append([]signingKey(nil), i.keys[len(i.keys)-maxKeys:]...)
	}
	return kid, nil
}

// KeyID returns the kid of the current signing key.
func (i *Issuer) KeyID() string { return i.current().kid }

// PublicKey returns the public half of the current signing key.
func (i *Issuer) PublicKey() *rsa.PublicKey { return &i.current().priv.PublicKey }

// PublicKeyPEM returns the current public key as a PKIX "PUBLIC KEY" PEM block, the
// bytes an attacker would try as an HMAC secret in an algorithm-confusion attack.
func (i *Issuer) PublicKeyPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(i.PublicKey())
	if err != nil {
		// An *rsa.PublicKey always marshals; reaching this is a programming error.
		panic(fmt.Sprintf("devidp: marshal public key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func (i *Issuer) current() signingKey {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.keys[len(i.keys)-1]
}

func (i *Issuer) publishedKeys() []signingKey {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return append([]signingKey(nil), i.keys...)
}

// Mint signs an RFC 9068 access token (header typ "at+jwt", RS256, current kid)
// carrying iss, sub, aud, exp, iat, nbf (= iat), jti, client_id (DefaultClientID),
// scope (DefaultScope) and the optional claims set in c.
func (i *Issuer) Mint(c Claims) (string, error) {
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	exp := c.Expiry
	if exp.IsZero() {
		exp = iat.Add(DefaultMintLifetime)
	}
	claims := map[string]any{
		"iss":       i.issuerURL,
		"sub":       c.Subject,
		"exp":       exp.Unix(),
		"iat":       iat.Unix(),
		"nbf":       iat.Unix(),
		"jti":       uuid.NewString(),
		"client_id": DefaultClientID,
		"scope":     DefaultScope,
	}
	switch len(c.Audience) {
	case 0:
		claims["aud"] = i.audience
	case 1:
		claims["aud"] = c.Audience[0]
	default:
		claims["aud"] = c.Audience
	}
	if !c.AuthTime.IsZero() {
		claims["auth_time"] = c.AuthTime.Unix()
	}
	setIf := func(name string, v string) {
		if v != "" {
			claims[name] = v
		}
	}
	setIf("email", c.Email)
	if c.Email != "" {
		claims["email_verified"] = true
	}
	setIf("name", c.Name)
	setIf("acr", c.ACR)
	if len(c.Roles) > 0 {
		claims["roles"] = c.Roles
	}
	if len(c.AMR) > 0 {
		claims["amr"] = c.AMR
	}
	for k, v := range c.Extra {
		if v == nil {
			delete(claims, k)
			continue
		}
		claims[k] = v
	}
	return i.SignRaw(map[string]any{"typ": AccessTokenType}, claims)
}

// SignRaw signs claims as a compact JWS with the current key, for tests that need
// tokens Mint would never produce. The header starts as {"alg":"RS256","kid":<current
// kid>} and entries of header are merged in; a nil value removes an entry (e.g.
// "kid": nil for a kid-less token). alg may be any RSA algorithm (RS256/384/512,
// PS256/384/512), although the JWKS advertises the key for RS256; use
// EncodeUnsigned or SignHS256 for none and HMAC.
func (i *Issuer) SignRaw(header map[string]any, claims map[string]any) (string, error) {
	key := i.current()
	h := map[string]any{"alg": "RS256", "kid": key.kid}
	for k, v := range header {
		if v == nil {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	alg, _ := h["alg"].(string)
	hash, pss := rsaAlgorithm(alg)
	if hash == 0 {
		return "", errors.New("devidp: SignRaw signs RSA algorithms only (RS256/384/512, PS256/384/512)")
	}
	input, err := signingInput(h, claims)
	if err != nil {
		return "", err
	}
	hh := hash.New()
	hh.Write([]byte(input))
	digest := hh.Sum(nil)
	var sig []byte
	if pss {
		sig, err = rsa.SignPSS(rand.Reader, key.priv, hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, key.priv, hash, digest)
	}
	if err != nil {
		return "", fmt.Errorf("devidp: sign: %w", err)
	}
	return input + "." + b64(sig), nil
}

// rsaAlgorithm maps a JWS RSA algorithm to its hash and whether it is PSS; hash 0
// means alg is not an RSA algorithm.
func rsaAlgorithm(alg string) (hash crypto.Hash, pss bool) {
	switch alg {
	case "RS256":
		return crypto.SHA256, false
	case "RS384":
		return crypto.SHA384, false
	case "RS512":
		return crypto.SHA512, false
	case "PS256":
		return crypto.SHA256, true
	case "PS384":
		return crypto.SHA384, true
	case "PS512":
		return crypto.SHA512, true
	}
	return 0, false
}

// EncodeUnsigned returns an "alg":"none" JWT (empty signature) for tests that check
// unsigned tokens are refused. header's entries are merged over {"alg":"none"}.
func EncodeUnsigned(header map[string]any, claims map[string]any) (string, error) {
	h := map[string]any{"alg": "none"}
	for k, v := range header {
		h[k] = v
	}
	input, err := signingInput(h, claims)
	if err != nil {
		return "", err
	}
	return input + ".", nil
}

// SignHS256 returns an HMAC-SHA256 JWT keyed with secret, for tests that check
// symmetric tokens (e.g. keyed with an issuer's public key) are refused. header's
// entries are merged over {"alg":"HS256"}.
func SignHS256(header map[string]any, claims map[string]any, secret []byte) (string, error) {
	h := map[string]any{"alg": "HS256"}
	for k, v := range header {
		h[k] = v
	}
	input, err := signingInput(h, claims)
	if err != nil {
		return "", err
	}
	return input + "." + b64(hmacSHA256(secret, []byte(input))), nil
}

func signingInput(header, claims map[string]any) (string, error) {
	hb, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("devidp: encode header: %w", err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("devidp: encode claims: %w", err)
	}
	return b64(hb) + "." + b64(cb), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
