// Package idempotency makes a client's retried mutation safe: the same key with the
// same input returns the first result and runs the effect once, even when two requests
// race; the same key with another input is refused. Keys are scoped to the caller and
// the operation and kept at least 24 hours.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
)

// Errors callers map to API.md's user error codes.
var (
	// ErrKeyReused: the key was used before with a different input (IDEMPOTENCY_KEY_REUSED).
	ErrKeyReused = errors.New("idempotency key was already used with a different input")
	// ErrInProgress: a request with this key is still running; retry shortly.
	ErrInProgress = errors.New("a request with this idempotency key is still in progress; retry shortly")
	// ErrInvalidKey: the key is empty or longer than 255 characters.
	ErrInvalidKey = errors.New("idempotency key must be 1 to 255 characters")
)

// Defaults; a Store may be given others.
const (
	DefaultRetention = 24 * time.Hour
	DefaultLease     = 60 * time.Second
	DefaultWait      = 5 * time.Second
)

// Scope names one use of a key: who sent it and for which operation.
type Scope struct {
	Principal string // stable caller identity, e.g. issuer + subject
	Operation string // GraphQL operation name, e.g. "cancelSubscription"
	Key       string // the client's key
}

// Store keeps keys in PostgreSQL.
type Store struct {
	db        *gorm.DB
	retention time.Duration
	lease     time.Duration
	wait      time.Duration
}

// NewStore returns a store with the default retention (24 h), lease and wait.
func NewStore(db *gorm.DB) *Store {
	return &Store{db: db, retention: DefaultRetention, lease: DefaultLease, wait: DefaultWait}
}

// WithTimings returns a copy with other lease (how long a crashed attempt blocks its
// key) and wait (how long a concurrent duplicate waits for the first to finish).
func (s *Store) WithTimings(lease, wait time.Duration) *Store {
	c := *s
	c.lease, c.wait = lease, wait
	return &c
}

type row struct {
	ID          int64
	RequestHash []byte
	State       string
	Response    []byte
	LockedUntil *time.Time
	Expired     bool
}

// Run executes fn at most once per scope and input. The first call runs fn and stores
// its result; later calls with the same input get that result back (replayed = true)
// without running fn; a call with another input gets ErrKeyReused. A concurrent
// duplicate waits for the first, then replays it, or gets ErrInProgress.
//
// When fn returns an error nothing is stored and the key is released, so the client
// can retry with the same key (fn's own effects must therefore be idempotent too, e.g.
// through provider idempotency keys derived from the scope). Business failures that
// should replay belong in T, not in the error.
func Run[T any](ctx context.Context, s *Store, scope Scope, input any, fn func(context.Context) (T, error)) (result T, replayed bool, err error) {
	if scope.Key == "" || len(scope.Key) > 255 {
		return result, false, ErrInvalidKey
	}
	hash, err := hashInput(input)
	if err != nil {
		return result, false, err
	}
	deadline := time.Now().Add(s.wait)
	for {
		stored, acquired, err := s.acquire(ctx, scope, hash)
		if err != nil {
			return result, false, err
		}
		if acquired {
			break
		}
		if stored != nil {
			if err := json.Unmarshal(stored, &result); err != nil {
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
		// Release with a fresh context: the caller's may be the reason fn failed.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := s.db.WithContext(rctx).Exec(
			"DELETE FROM idempotency_keys WHERE scope = ? AND operation = ? AND key = ? AND state = 'IN_PROGRESS'",
			scope.Principal, scope.Operation, scope.Key).Error; rerr != nil {
			return result, false, errors.Join(err, fmt.Errorf("idempotency: release: %w", rerr))
		}
		return result, false, err
	}
	body, err := json.Marshal(result)
	if err != nil {
		return result, false, fmt.Errorf("idempotency: encode response: %w", err)
	}
	if err := s.db.WithContext(ctx).Exec(
		"UPDATE idempotency_keys SET state = 'COMPLETED', response = ?, locked_until = NULL WHERE scope = ? AND operation = ? AND key = ?",
		body, scope.Principal, scope.Operation, scope.Key).Error; err != nil {
		return result, false, fmt.Errorf("idempotency: store response: %w", err)
	}
	return result, false, nil
}

// acquire claims the key for this caller (acquired), or returns the stored response of
// a completed run, or neither while another run holds a live lease.
func (s *Store) acquire(ctx context.Context, scope Scope, hash []byte) (stored []byte, acquired bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := time.Now().UTC()
		res := tx.Exec(`INSERT INTO idempotency_keys (scope, operation, key, request_hash, state, locked_until, expires_at)
			VALUES (?, ?, ?, ?, 'IN_PROGRESS', ?, ?) ON CONFLICT (scope, operation, key) DO NOTHING`,
			scope.Principal, scope.Operation, scope.Key, hash, now.Add(s.lease), now.Add(s.retention))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 1 {
			acquired = true
			return nil
		}
		var r row
		if err := tx.Raw(`SELECT id, request_hash, state, response, locked_until, expires_at < now() AS expired
			FROM idempotency_keys WHERE scope = ? AND operation = ? AND key = ? FOR UPDATE`,
			scope.Principal, scope.Operation, scope.Key).Scan(&r).Error; err != nil {
			return err
		}
		if r.ID == 0 {
			return nil // released between our insert and select: loop and try again
		}
		takeOver := r.Expired || (r.State == "IN_PROGRESS" && r.LockedUntil != nil && r.LockedUntil.Before(now))
		if r.Expired {
			// A key past retention starts afresh, whatever its input was.
			r.RequestHash = hash
		}
		if string(r.RequestHash) != string(hash) {
			return ErrKeyReused
		}
		if takeOver {
			acquired = true
			return tx.Exec(`UPDATE idempotency_keys SET request_hash = ?, state = 'IN_PROGRESS', response = NULL,
				locked_until = ?, expires_at = ? WHERE id = ?`, hash, now.Add(s.lease), now.Add(s.retention), r.ID).Error
		}
		if r.State == "COMPLETED" {
			stored = r.Response
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrKeyReused) {
		err = fmt.Errorf("idempotency: %w", err)
	}
	return stored, acquired, err
}

// Purge deletes keys past their retention; a periodic job calls it.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	res := s.db.WithContext(ctx).Exec("DELETE FROM idempotency_keys WHERE expires_at < now() AND state = 'COMPLETED'")
	return res.RowsAffected, res.Error
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
	case errors.Is(err, ErrInvalidKey):
		return models.NewUserError(models.UserErrorInvalid, "must be 1 to 255 characters", "input", "idempotencyKey")
	case errors.Is(err, ErrInProgress):
		return models.NewUserError(models.UserErrorInvalidState, "a request with this idempotency key is still in progress; retry shortly", "input", "idempotencyKey")
	}
	return err
}

// HashInput is the fingerprint Run stores for an input, exported so tests and tools
// can reason about stored keys.
func HashInput(input any) ([]byte, error) { return hashInput(input) }
