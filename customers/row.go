package customers

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/sealing"
)

// RowColumns is the select list of a customer read by a statement written by hand,
// the customers table under the alias c, in the order of Row.Targets. Such reads
// scan without gorm's reflection: the read path's cost.
const RowColumns = "c.id, c.issuer, c.subject, c.email, c.name, c.email_hash, c.stripe_customer_id, c.created_at, c.updated_at"

// Row is one customer as a hand-written statement read it (RowColumns), its sealed
// e-mail and name not yet opened.
type Row struct {
	c           models.Customer
	email, name []byte
}

// ID is the id of the customer read.
func (r *Row) ID() string { return r.c.ID }

// Targets are the scan destinations of RowColumns, in order.
func (r *Row) Targets() []any {
	return []any{&r.c.ID, &r.c.Issuer, &r.c.Subject, &r.email, &r.name, &r.c.EmailHash, &r.c.StripeCustomerID,
		&r.c.CreatedAt, &r.c.UpdatedAt}
}

// open returns the customer with its e-mail and name opened with db's keys, bound to
// the row's id as the model's sealed fields are.
func (r *Row) open(db *gorm.DB) (*models.Customer, error) {
	c := r.c
	if len(r.email) > 0 {
		plain, err := sealing.OpenColumn(db, "customers", "email", c.ID, r.email)
		if err != nil {
			return nil, err
		}
		c.Email = string(plain)
	}
	if len(r.name) > 0 {
		plain, err := sealing.OpenColumn(db, "customers", "name", c.ID, r.name)
		if err != nil {
			return nil, err
		}
		name := string(plain)
		c.Name = &name
	}
	return &c, nil
}

// readByPrincipal reads the customer of p's identity (issuer and subject) by hand;
// the unique key on them makes it at most one. It is nil when there is none.
func readByPrincipal(ctx context.Context, db *gorm.DB, p *auth.Principal) (*Row, error) {
	rows, err := db.WithContext(ctx).Raw("SELECT "+RowColumns+" FROM customers AS c WHERE c.issuer = ? AND c.subject = ?",
		p.Issuer, p.Subject).Rows()
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var r Row
	if err := rows.Scan(r.Targets()...); err != nil {
		return nil, err
	}
	return &r, rows.Close()
}

// ProvisionRead is Provision for a customer that the caller's own statement has just
// read by p's identity (issuer and subject, under RowColumns): row is what it read,
// nil when it found none. The rule is Provision's: a customer not found is created,
// e-mail and name follow the token and are written only when they changed.
func (s *Service) ProvisionRead(ctx context.Context, p *auth.Principal, row *Row) (*models.Customer, error) {
	if err := validPrincipal(p); err != nil {
		return nil, err
	}
	if row == nil {
		return s.Provision(ctx, p)
	}
	if row.c.Issuer != p.Issuer || row.c.Subject != p.Subject {
		return nil, errors.New("customers: provision: the row read is another identity's")
	}
	db := s.db.WithContext(ctx)
	c, err := row.open(db)
	if err != nil {
		return nil, fmt.Errorf("customers: provision: %w", err)
	}
	return s.refresh(db, p, c)
}
