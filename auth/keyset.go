package auth

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DefaultKeyRefreshCooldown is the least time between two JWKS fetches caused by
// tokens naming a key id the cache does not hold.
const DefaultKeyRefreshCooldown = 30 * time.Second

// keyFetchRetry is how soon a fetch may be retried after one that failed, so an
// issuer blip does not lock every token out for a whole cool-down.
const keyFetchRetry = 2 * time.Second

// maxJWKSBytes bounds the JWKS document read from the issuer.
const maxJWKSBytes = 1 << 20

// keySet is the issuer's JWKS, cached. go-oidc's RemoteKeySet refetches the JWKS
// for every token whose kid it does not hold, so a flood of tokens with invented
// kids becomes a flood of requests to the issuer (IAM-1). keySet refetches at most
// once per cool-down for such tokens: the first unknown kid refetches, and another
// inside the cool-down is checked against the cached keys only (and fails). A key
// rotated in at the issuer is picked up by the first token that names it, at once
// unless a refetch happened within the cool-down. Concurrent misses share one fetch. Safe for concurrent use.
type keySet struct {
	client   *http.Client
	url      string
	cooldown time.Duration
	now      func() time.Time
	algs     []jose.SignatureAlgorithm

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	loaded   bool      // a fetch has succeeded
	next     time.Time // no fetch for a miss before this; zero: fetch allowed
	inflight *keyFetch // the running fetch, if any
	// dropped counts the fetches that found a key gone (removed, or changed under
	// its kid): whatever was verified with the keys before may no longer verify.
	dropped atomic.Uint64
}

// generation changes whenever a fetch finds that a key held before is no longer
// published; tokens verified under an earlier generation must be verified again.
func (k *keySet) generation() uint64 { return k.dropped.Load() }

// keptAll reports whether every key of old is in cur, with the same kid and key.
func keptAll(old, cur []jose.JSONWebKey) bool {
	for i := range old {
		want, err := old[i].Thumbprint(crypto.SHA256)
		if err != nil {
			return false
		}
		found := false
		for j := range cur {
			if cur[j].KeyID != old[i].KeyID {
				continue
			}
			if got, err := cur[j].Thumbprint(crypto.SHA256); err == nil && bytes.Equal(got, want) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// keyFetch is one JWKS request that waiting verifications share.
type keyFetch struct {
	done chan struct{}
	keys []jose.JSONWebKey
	err  error
}

func newKeySet(client *http.Client, jwksURL string, cooldown time.Duration, now func() time.Time, algs []string) *keySet {
	ja := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		ja[i] = jose.SignatureAlgorithm(a)
	}
	return &keySet{client: client, url: jwksURL, cooldown: cooldown, now: now, algs: ja}
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("not exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID

	k.mu.Lock()
	cached := k.keys
	k.mu.Unlock()
	if payload, ok := verifyWith(jws, kid, cached); ok {
		return payload, nil
	}
	keys, err := k.refresh(ctx)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, kid, keys); ok {
		return payload, nil
	}
	return nil, errors.New("signature does not verify with any published key")
}

// verifyWith tries the keys carrying kid (all of them when the token names none).
func verifyWith(jws *jose.JSONWebSignature, kid string, keys []jose.JSONWebKey) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refresh returns the keys after a fetch when one is allowed (none running and the
// cool-down over), else the keys as cached. The fetch runs detached from ctx so a
// caller giving up does not fail the others waiting for it.
func (k *keySet) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	f := k.inflight
	if f == nil {
		if now := k.now(); !k.next.IsZero() && now.Before(k.next) {
			keys := k.keys
			k.mu.Unlock()
			return keys, nil
		}
		f = &keyFetch{done: make(chan struct{})}
		k.inflight = f
		go k.fetch(f)
	}
	k.mu.Unlock()

	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.done:
		return f.keys, f.err
	}
}

func (k *keySet) fetch(f *keyFetch) {
	keys, err := k.download()
	k.mu.Lock()
	if err == nil {
		// The first load is not a refresh: the first unknown kid after it may still
		// fetch once, so a key rotated in soon after start is picked up at once.
		// (Whether a load happened, not whether it found keys: an issuer publishing
		// none must not turn every invented kid into a fetch.)
		if k.loaded {
			k.next = k.now().Add(k.cooldown)
		}
		if !keptAll(k.keys, keys) {
			k.dropped.Add(1)
		}
		k.keys, k.loaded = keys, true
	} else {
		f.err = fmt.Errorf("fetching the issuer's keys: %w", err)
		keys = k.keys
		k.next = k.now().Add(min(k.cooldown, keyFetchRetry))
	}
	f.keys = keys
	k.inflight = nil
	k.mu.Unlock()
	close(f.done)
}

// download reads the JWKS. Keys go-jose cannot parse, private keys and keys for
// other uses than signing are skipped rather than failing the whole set.
func (k *keySet) download() ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS answered HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("JWKS larger than 1 MiB")
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errors.New("JWKS is not a JSON key set")
	}
	keys := make([]jose.JSONWebKey, 0, len(doc.Keys))
	for _, raw := range doc.Keys {
		var key jose.JSONWebKey
		if err := json.Unmarshal(raw, &key); err != nil || !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		keys = append(keys, key)
	}
	return keys, nil
}
