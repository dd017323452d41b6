package customers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/models"
)

// ErasedIssuer is the issuer of an erased customer's pseudonymous identity: no
// identity provider has it, so no token ever matches the row again.
const ErasedIssuer = "urn:scoville:erased"

// Erased reports whether the customer with id has been erased (pseudonymized
// under ErasedIssuer); a customer that does not exist is not erased. Read after
// the customer's KEY SHARE lock (eventindex.LockCustomers) the answer holds for
// the rest of the transaction: erasure needs the customer FOR UPDATE.
func Erased(ctx context.Context, db *gorm.DB, id string) (bool, error) {
	locked, _ := ctx.Value(lockedKey{}).(map[string]bool)
	if erased, ok := locked[id]; ok {
		return erased, nil
	}
	var n int64
	if err := db.WithContext(ctx).Model(&models.Customer{}).Where("id = ? AND issuer = ?", id, ErasedIssuer).Count(&n).Error; err != nil {
		return false, fmt.Errorf("customers: erased: %w", err)
	}
	return n > 0, nil
}

// lockedKey carries, in a context, what WithLocked was given.
type lockedKey struct{}

// WithLocked returns ctx under which Erased answers for the customers in erased
// (id: whether erased) without asking the database: what a transaction read of
// customers while taking their KEY SHARE lock (eventindex.RecordAndLockEach), so
// the answers hold until it ends. Use ctx only inside that transaction (and, with
// savepoints, only after the lock inside the same one).
func WithLocked(ctx context.Context, erased map[string]bool) context.Context {
	return context.WithValue(ctx, lockedKey{}, erased)
}

// Get returns the customer with id read in db, or nil when there is none.
func Get(ctx context.Context, db *gorm.DB, id string) (*models.Customer, error) {
	var c models.Customer
	err := db.WithContext(ctx).Take(&c, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("customers: get: %w", err)
	}
	return &c, nil
}

// LockForErasure returns the customer with id locked FOR UPDATE in tx, which
// waits for, and then holds off, every insert referencing them (those take KEY
// SHARE). It is an erasure's second lock, after the customer's provider events
// (eventindex.LockCustomers states the order).
func LockForErasure(ctx context.Context, tx *gorm.DB, id string) (*models.Customer, error) {
	var c models.Customer
	if err := tx.WithContext(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Take(&c, "id = ?", id).Error; err != nil {
		return nil, fmt.Errorf("customers: lock: %w", err)
	}
	return &c, nil
}

// Pseudonymize turns c, locked in tx (LockForErasure), into a pseudonym: e-mail
// and name emptied, issuer and subject replaced by a random identity under
// ErasedIssuer that nobody can sign in as. The Stripe customer id stays, the link
// to Stripe's own retained invoices. c is updated to what was stored.
func Pseudonymize(ctx context.Context, tx *gorm.DB, c *models.Customer, now time.Time) error {
	c.Issuer, c.Subject = ErasedIssuer, uuid.NewString()
	c.Email, c.Name, c.UpdatedAt = "", nil, now
	// Save writes every column the model has, so whatever is derived from the
	// e-mail or name (a blind index, say) is rewritten from the emptied values.
	if err := tx.WithContext(ctx).Save(c).Error; err != nil {
		return fmt.Errorf("customers: pseudonymize: %w", err)
	}
	return nil
}
