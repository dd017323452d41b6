// Package idempotency makes a client's retried mutation safe: the same key with the
// same input returns the first result and runs the effect once, even when two requests
// race; the same key with another input is refused. Keys are scoped to the caller and
// the operation and kept at least 24 hours; after that a key is retired, never run
// again: a late retry is refused rather than repeating an effect the payment provider
// no longer remembers. Stored results are sealed (package sealing).
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/sealing"
)

// Errors callers map to API.md's user error codes.
var (
	// ErrKeyReused: the key was used before with a different input (IDEMPOTENCY_KEY_REUSED).
	ErrKeyReused = errors.New("idempotency key was already used with a different input")
	// ErrKeyRetired: the key was first used longer ago than the retention and will not
	// run again; its result, if it had one, is no longer kept (IDEMPOTENCY_KEY_REUSED).
	ErrKeyRetired = errors.New("idempotency key was first used too long ago to run again")
	// ErrInProgress: a request with this key is still running; retry shortly.
	ErrInProgress = errors.New("a request with this idempotency key is still in progress; retry shortly")
	// ErrInvalidKey: the key is empty, longer than 255 characters, or holds a NUL
	// (which PostgreSQL cannot store in text).
	ErrInvalidKey = errors.New("idempotency key must be 1 to 255 characters, none of them NUL")
)

// Defaults; a Store may be given others. DefaultRetention is also the longest time a
// provider (Stripe) remembers the keys derived from a client's key: a retention longer
// than the provider's would let a late takeover repeat an effect.
const (
	DefaultRetention = 24 * time.Hour
	DefaultLease     = 60 * time.Second
	DefaultWait      = 5 * time.Second
	// DefaultTombstoneRetention is how long a retired key's tombstone is kept,
	// counted from the key's first use (IDEMPOTENCY_TOMBSTONE_RETENTION).
	DefaultTombstoneRetention = 90 * 24 * time.Hour
)

// The sealed column results are stored in; see sealing.Columns.
const (
	table          = "idempotency_keys"
	responseColumn = "response"
)

// Scope names one use of a key: who sent it and for which operation.
type Scope struct {
	Principal string // stable caller identity, e.g. issuer + subject
	Operation string // GraphQL operation name, e.g. "cancelSubscription"
	Key       string // the client's key
}

// Store keeps keys in PostgreSQL. Its database handle must carry the data keys
// (sealing.Install), which seal the stored results.
type Store struct {
	db        *gorm.DB
	retention time.Duration
	lease     time.Duration
	wait      time.Duration
	// tombstones is how long a tombstone is kept after its key's first use.
	tombstones time.Duration
}

// NewStore returns a store with the default retention (24 h), lease and wait.
func NewStore(db *gorm.DB) *Store {
	return &Store{db: db, retention: DefaultRetention, lease: DefaultLease, wait: DefaultWait, tombstones: DefaultTombstoneRetention}
}

// WithTombstoneRetention returns a copy that keeps tombstones for d after their
// key's first use (PurgeTombstones); d at or below the key retention is ignored,
// so a key is always refused from when its row goes until its tombstone goes.
func (s *Store) WithTombstoneRetention(d time.Duration) *Store {
	c := *s
	if d > c.retention {
		c.tombstones = d
	}
	return &c
}

// WithTimings returns a copy with other lease (how long a crashed attempt blocks its
// key) and wait (how long a concurrent duplicate waits for the first to finish).
func (s *Store) WithTimings(lease, wait time.Duration) *Store {
	c := *s
	c.lease, c.wait = lease, wait
	return &c
}

// NothingDone wraps an error of a run that did nothing anywhere (its input was refused
// before any effect). On a key's first use the key is then forgotten, so a corrected
// request may use it; otherwise the key stays as its earlier use left it.
type NothingDone struct{ Err error }

func (e NothingDone) Error() string { return e.Err.Error() }
func (e NothingDone) Unwrap() error { return e.Err }

// Key states: IN_PROGRESS while a run holds the lease, COMPLETED with its result,
// RELEASED after a run that failed (the next one may take over while the provider
// still remembers the derived keys).
const (
	stateInProgress = "IN_PROGRESS"
	stateCompleted  = "COMPLETED"
	stateReleased   = "RELEASED"
)

type row struct {
	ID          int64
	RequestHash []byte
	State       string
	Response    []byte
	LockedUntil *time.Time
	ExpiresAt   time.Time
}

// Run executes fn at most once per scope and input. The first call runs fn and stores
// its result; later calls with the same input get that result back (replayed = true)
// without running fn; a call with another input gets ErrKeyReused. A concurrent
// duplicate waits for the first, then replays it, or gets ErrInProgress.
//
// When fn returns an error nothing is stored and the key is released, so the client
// can retry with the same input and key (fn's own effects must therefore be
// idempotent too, e.g. through provider idempotency keys derived from the scope).
// Business failures that should replay belong in T, not in the error.
//
// A key never runs fn again once its retention (counted from its first use) is over,
// however late the retry: the provider has forgotten the derived keys by then, so a
// second run could repeat the effect. Such a call gets ErrKeyRetired; a completed
// key's result is replayed until the key is purged.
func Run[T any](ctx context.Context, s *Store, scope Scope, input any, fn func(context.Context) (T, error)) (result T, replayed bool, err error) {
	if scope.Key == "" || len(scope.Key) > 255 || strings.ContainsRune(scope.Key, 0) {
		return result, false, ErrInvalidKey
	}
	hash, err := hashInput(input)
	if err != nil {
		return result, false, err
	}
	k, err := s.keyring(ctx)
	if err != nil {
		return result, false, err
	}
	deadline := time.Now().Add(s.wait)
	var id int64
	var fresh bool // this run made the key's row: no earlier run used the key
	for {
		r, acquired, err := s.acquire(ctx, scope, hash)
		if err != nil {
			return result, false, err
		}
		if acquired {
			id, fresh = r.ID, r.State == ""
			break
		}
		if r != nil && r.State == stateCompleted {
			plain, err := k.Open(responseAAD(r.ID), r.Response)
			if err != nil {
				return result, false, fmt.Errorf("idempotency: %s.%s of row %d: %w", table, responseColumn, r.ID, err)
			}
			if err := json.Unmarshal(plain, &result); err != nil {
				return result, false, fmt.Errorf("idempotency: stored response: %w", err)
			}
			return result, true, nil
		}
		if time.Now().After(deadline) {
			return result, false, ErrInProgress
		}
		select {
		case <-ctx.Done():
			return result, false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}

	result, err = fn(ctx)
	if err != nil {
		// Release with a fresh context: the caller's may be the reason fn failed. The
		// row stays, so its first use (the provider's window) is not forgotten;
		// unless fn did nothing at all on the key's first use (NothingDone): then the
		// key is forgotten, as a provider forgets a request it refused as invalid, and
		// serves the corrected request.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		stmt, args := "UPDATE idempotency_keys SET state = ?, locked_until = NULL WHERE id = ? AND state = ?",
			[]any{stateReleased, id, stateInProgress}
		var nothing NothingDone
		if fresh && errors.As(err, &nothing) {
			stmt, args = "DELETE FROM idempotency_keys WHERE id = ? AND state = ?", []any{id, stateInProgress}
		}
		if rerr := s.db.WithContext(rctx).Exec(stmt, args...).Error; rerr != nil {
			return result, false, errors.Join(err, fmt.Errorf("idempotency: release: %w", rerr))
		}
		return result, false, err
	}
	body, err := json.Marshal(result)
	if err != nil {
		return result, false, fmt.Errorf("idempotency: encode response: %w", err)
	}
	sealed, err := k.Seal(responseAAD(id), body)
	if err != nil {
		return result, false, fmt.Errorf("idempotency: seal response: %w", err)
	}
	if err := s.db.WithContext(ctx).Exec(
		"UPDATE idempotency_keys SET state = ?, response = ?, locked_until = NULL WHERE id = ?",
		stateCompleted, sealed, id).Error; err != nil {
		return result, false, fmt.Errorf("idempotency: store response: %w", err)
	}
	return result, false, nil
}

// keyring is the data keys the results are sealed with: ctx's, else the store's handle's.
func (s *Store) keyring(ctx context.Context) (*sealing.Keyring, error) {
	if k, ok := sealing.FromContext(ctx); ok {
		return k, nil
	}
	if k, ok := sealing.FromDB(s.db); ok {
		return k, nil
	}
	return nil, errors.New("idempotency: no data keys on the store's database handle (call sealing.Install)")
}

// responseAAD binds a sealed result to its row.
func responseAAD(id int64) []byte {
	return sealing.AAD(table, responseColumn, strconv.FormatInt(id, 10))
}

// acquire claims the key for this caller (acquired, with the row's id), or returns the
// row of a completed run (its sealed result), or neither while another run holds a
// live lease.
func (s *Store) acquire(ctx context.Context, scope Scope, hash []byte) (r *row, acquired bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := time.Now().UTC()
		var inserted []int64
		if err := tx.Raw(`INSERT INTO idempotency_keys (scope, operation, key, request_hash, state, locked_until, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope, operation, key) DO NOTHING RETURNING id`,
			scope.Principal, scope.Operation, scope.Key, hash, stateInProgress, now.Add(s.lease), now.Add(s.retention)).
			Scan(&inserted).Error; err != nil {
			return err
		}
		if len(inserted) == 1 {
			// A new row, unless the key was retired: checked after the insert, which
			// waits for a concurrent purge of this key to commit its tombstone.
			var retired bool
			if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM idempotency_tombstones WHERE scope_hash = ?)`,
				scope.tombstone()).Scan(&retired).Error; err != nil {
				return err
			}
			if retired {
				return ErrKeyRetired // the rollback removes the row just inserted
			}
			r, acquired = &row{ID: inserted[0]}, true
			return nil
		}
		var found row
		if err := tx.Raw(`SELECT id, request_hash, state, response, locked_until, expires_at
			FROM idempotency_keys WHERE scope = ? AND operation = ? AND key = ? FOR UPDATE`,
			scope.Principal, scope.Operation, scope.Key).Scan(&found).Error; err != nil {
			return err
		}
		if found.ID == 0 {
			return nil // released or purged between our insert and select: loop and try again
		}
		if string(found.RequestHash) != string(hash) {
			return ErrKeyReused
		}
		switch {
		case found.State == stateCompleted:
			r = &found
			return nil
		case found.State == stateInProgress && found.LockedUntil != nil && !found.LockedUntil.Before(now):
			return nil // another run holds the lease: wait for it
		case found.ExpiresAt.Before(now.Add(s.lease)):
			// A takeover could not finish before the provider forgets the keys derived
			// from this one: refuse rather than risk a second effect.
			return ErrKeyRetired
		}
		// A released key, or a crashed run's lapsed lease: take it over, keeping the
		// first use's expiry.
		r, acquired = &found, true
		return tx.Exec(`UPDATE idempotency_keys SET state = ?, response = NULL, locked_until = ? WHERE id = ?`,
			stateInProgress, now.Add(s.lease), found.ID).Error
	})
	if err != nil {
		if errors.Is(err, ErrKeyReused) || errors.Is(err, ErrKeyRetired) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("idempotency: %w", err)
	}
	return r, acquired, nil
}

// Purge retires the keys past their retention whose run is not live: each row is
// replaced by its tombstone (the scope's hash and first use), in one statement, so no
// retry can slip between the two and run the key again. A periodic job calls it.
// It returns how many keys were retired.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	res := s.db.WithContext(ctx).Exec(`WITH retired AS (
			DELETE FROM idempotency_keys
			WHERE expires_at < now() AND (state <> ? OR locked_until IS NULL OR locked_until < now())
			RETURNING scope, operation, key, created_at)
		INSERT INTO idempotency_tombstones (scope_hash, first_used_at)
		SELECT sha256(convert_to(?, 'UTF8') || '\x00'::bytea || convert_to(scope, 'UTF8') || '\x00'::bytea ||
			convert_to(operation, 'UTF8') || '\x00'::bytea || convert_to(key, 'UTF8')), created_at
		FROM retired
		ON CONFLICT (scope_hash) DO NOTHING`, stateInProgress, tombstoneDomain)
	return res.RowsAffected, res.Error
}

// tombstoneBatch bounds the tombstones one statement of PurgeTombstones deletes,
// so no statement holds its locks for long.
const tombstoneBatch = 10_000

// PurgeTombstones deletes the tombstones of keys first used longer ago than the
// tombstone retention (WithTombstoneRetention), so the table holds that window's
// keys rather than every key ever used. Past it, a retry with such a key is no
// longer recognised and runs as a new request: the retention must exceed by far
// the longest any client keeps retrying. A periodic job calls it; it returns how
// many it deleted.
func (s *Store) PurgeTombstones(ctx context.Context) (int64, error) {
	cutoff := time.Now().Add(-s.tombstones)
	var total int64
	for {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM idempotency_tombstones WHERE scope_hash IN (
			SELECT scope_hash FROM idempotency_tombstones WHERE first_used_at < ? LIMIT ?)`, cutoff, tombstoneBatch)
		if res.Error != nil {
			return total, fmt.Errorf("idempotency: purge tombstones: %w", res.Error)
		}
		total += res.RowsAffected
		if res.RowsAffected < tombstoneBatch {
			return total, nil
		}
	}
}

// tombstoneDomain prefixes what a tombstone hashes; migration 00010 hashes the same.
const tombstoneDomain = "scoville/idempotency/v1"

// tombstone is the SHA-256 a retired key of this scope leaves: the same bytes Purge
// computes in SQL.
func (s Scope) tombstone() []byte {
	sum := sha256.Sum256([]byte(tombstoneDomain + "\x00" + s.Principal + "\x00" + s.Operation + "\x00" + s.Key))
	return sum[:]
}

// hashInput fingerprints the input through its JSON form (map keys sorted by
// encoding/json), so equal inputs hash equally.
func hashInput(input any) ([]byte, error) {
	b, err := json.Marshal(input)
	if err != nil {
		return nil, fmt.Errorf("idempotency: encode input: %w", err)
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// ScopeFor scopes a client key to a caller (issuer and subject, which never change for
// a person) and an operation.
func ScopeFor(issuer, subject, operation, key string) Scope {
	return Scope{Principal: issuer + "|" + subject, Operation: operation, Key: key}
}

// ProviderKey derives the idempotency key sent to the payment provider for one step of
// this scope: the same client request always sends the same key, a different step or
// request a different one, and it carries no personal data.
func (s Scope) ProviderKey(step string) string {
	sum := sha256.Sum256([]byte(s.Principal + "\x00" + s.Operation + "\x00" + s.Key))
	return "scv-" + s.Operation + "-" + step + "-" + hex.EncodeToString(sum[:20])
}

// DerivedID is a stable UUID for the object this scope creates, so a retry after a
// crash writes the same row instead of a second one.
func (s Scope) DerivedID() string {
	return uuid.NewSHA1(idNamespace, []byte(s.ProviderKey("id"))).String()
}

var idNamespace = uuid.MustParse("6f1d2c4e-8a3b-4c5d-9e0f-5c0171e5ca1e")

// AsUserError turns this package's refusals into the user errors of API.md, and
// returns any other error unchanged.
func AsUserError(err error) error {
	switch {
	case errors.Is(err, ErrKeyReused):
		return models.NewUserError(models.UserErrorIdempotencyKeyReused, "this idempotency key was used with a different input; use a new key", "input", "idempotencyKey")
	case errors.Is(err, ErrKeyRetired):
		return models.NewUserError(models.UserErrorIdempotencyKeyReused,
			"this idempotency key was first used more than 24 hours ago and will not run again; check the current state before retrying with a new key",
			"input", "idempotencyKey")
	case errors.Is(err, ErrInvalidKey):
		return models.NewUserError(models.UserErrorInvalid, "must be 1 to 255 characters, none of them NUL", "input", "idempotencyKey")
	case errors.Is(err, ErrInProgress):
		return models.NewUserError(models.UserErrorInvalidState, "a request with this idempotency key is still in progress; retry shortly", "input", "idempotencyKey")
	}
	return err
}

// HashInput is the fingerprint Run stores for an input, exported so tests and tools
// can reason about stored keys.
func HashInput(input any) ([]byte, error) { return hashInput(input) }
