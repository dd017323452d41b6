package auth

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// DefaultTokenCacheSize is how many verified tokens a Verifier remembers when
// Config.TokenCacheSize is zero.
const DefaultTokenCacheSize = 10_000

// tokenCache remembers the principals of verified tokens until the tokens expire,
// so that a client sending the same token again is not verified again (signature,
// JWS parsing, claims). It is keyed by the SHA-256 hash of the whole token, never
// the token itself: only the exact token that was verified matches (the same claims
// under another signature are another key), and the memory holds nothing that could
// be replayed. An entry verified with keys the issuer has since withdrawn is not
// used (see keySet.generation). At most max entries are kept; when it is full, expired entries are
// dropped first, then arbitrary ones. Safe for concurrent use.
type tokenCache struct {
	mu      sync.Mutex
	max     int
	entries map[[sha256.Size]byte]cached
}

// cached is a verified token's principal and the generation of the issuer's keys
// (keySet.generation) it was verified with.
type cached struct {
	p   *Principal
	gen uint64
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[[sha256.Size]byte]cached)}
}

// tokenBuffers hold a token's bytes while it is hashed: the conversion of a
// token-sized string would otherwise be a heap copy per request.
var tokenBuffers = sync.Pool{New: func() any { return new([]byte) }}

func tokenKey(raw string) [sha256.Size]byte {
	b := tokenBuffers.Get().(*[]byte)
	*b = append((*b)[:0], raw...)
	key := sha256.Sum256(*b)
	clear(*b) // the pool keeps no token
	tokenBuffers.Put(b)
	return key
}

// get returns a copy of the principal of the token hashed to key when it is cached,
// was verified with the keys of generation gen and is not expired at now. Any other
// entry is dropped and never returned.
func (c *tokenCache) get(key [sha256.Size]byte, gen uint64, now time.Time) (*Principal, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && (e.gen != gen || !now.Before(e.p.Expiry)) {
		delete(c.entries, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	return clonePrincipal(e.p), true
}

// put remembers p, a token's principal verified with the keys of generation gen,
// until p.Expiry.
func (c *tokenCache) put(key [sha256.Size]byte, gen uint64, p *Principal, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.p.Expiry) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = cached{p: clonePrincipal(p), gen: gen}
}

// len is how many tokens are remembered.
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// clonePrincipal copies p so that no caller can change what the cache holds.
func clonePrincipal(p *Principal) *Principal {
	q := *p
	q.Roles = slices.Clone(p.Roles)
	q.AMR = slices.Clone(p.AMR)
	return &q
}
