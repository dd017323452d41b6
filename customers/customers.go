// Package customers owns the people who use the storefront: who they are at the
// identity provider and, later, at the payment provider.
package customers

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/models"
)

// Limits on what a token may put in a customer record; the schema enforces them too.
const (
	maxSubjectLen = 255
	maxEmailLen   = 320
	maxNameRunes  = 200
)

// ErrInvalidIdentity means the token's subject cannot identify a customer.
var ErrInvalidIdentity = errors.New("customers: token subject is empty or too long")

// Service provisions and finds customers.
type Service struct {
	db *gorm.DB
}

// NewService returns a customer service backed by db.
func NewService(db *gorm.DB) *Service { return &Service{db: db} }

// Provision returns the customer for the principal, creating it on first sight. It is
// keyed by (issuer, subject), so concurrent first calls yield one row; e-mail and name
// follow the latest token but are never blanked by a token that lacks them. Only an
// address the token says is verified (email_verified true) is stored: the stored
// e-mail is where notifications go, what the Stripe customer is created with and what
// staff search by, so an address anyone may type at the identity provider never gets
// there; an unverified one neither sets nor replaces it. E-mail and name are sealed
// (models.Customer's tags), so they are compared here, in the application, and
// written only when they changed.
func (s *Service) Provision(ctx context.Context, p *auth.Principal) (*models.Customer, error) {
	if err := validPrincipal(p); err != nil {
		return nil, err
	}
	db := s.db.WithContext(ctx)
	for attempt := 0; attempt < 2; attempt++ {
		row, err := readByPrincipal(ctx, db, p)
		if err != nil {
			return nil, fmt.Errorf("customers: provision: %w", err)
		}
		if row != nil {
			c, err := row.open(db)
			if err != nil {
				return nil, fmt.Errorf("customers: provision: %w", err)
			}
			return s.refresh(db, p, c)
		}
		email, name := tokenIdentity(p)
		c := models.Customer{Issuer: p.Issuer, Subject: p.Subject, Email: email, Name: name}
		// The unique key settles a race between first calls: the loser reads the winner's row.
		res := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "issuer"}, {Name: "subject"}}, DoNothing: true}).Create(&c)
		if res.Error != nil {
			return nil, fmt.Errorf("customers: provision: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			return &c, nil
		}
	}
	return nil, errors.New("customers: provision: the customer row vanished while being created")
}

// validPrincipal refuses an identity that cannot key a customer.
func validPrincipal(p *auth.Principal) error {
	if p.Subject == "" || len(p.Subject) > maxSubjectLen || p.Issuer == "" {
		return ErrInvalidIdentity
	}
	return nil
}

// tokenIdentity is the e-mail (only a verified one) and name the token offers.
func tokenIdentity(p *auth.Principal) (email string, name *string) {
	if p.EmailVerified {
		email = cleanEmail(p.Email)
	}
	return email, cleanName(p.Name)
}

// refresh makes the stored customer c follow the token's e-mail and name, writing
// only when they changed (so an unchanged caller's read writes nothing).
func (s *Service) refresh(db *gorm.DB, p *auth.Principal, c *models.Customer) (*models.Customer, error) {
	email, name := tokenIdentity(p)
	changed := false
	if email != "" && email != c.Email {
		c.Email, changed = email, true
	}
	if name != nil && (c.Name == nil || *c.Name != *name) {
		c.Name, changed = name, true
	}
	if changed {
		if err := db.Select("email", "email_hash", "name", "updated_at").Updates(c).Error; err != nil {
			return nil, fmt.Errorf("customers: provision: %w", err)
		}
	}
	return c, nil
}

// Lookup returns the principal's customer without creating one, or nil when they have
// never been seen: someone who was never provisioned owns nothing.
func (s *Service) Lookup(ctx context.Context, p *auth.Principal) (*models.Customer, error) {
	var c models.Customer
	err := byPrincipal(s.db.WithContext(ctx), p, &c)
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("customers: lookup: %w", err)
	}
	return &c, nil
}

// byPrincipal reads the customer of p's identity (issuer and subject) into c; the
// unique key on them makes it at most one.
func byPrincipal(db *gorm.DB, p *auth.Principal, c *models.Customer) error {
	return db.Where("issuer = ? AND subject = ?", p.Issuer, p.Subject).Take(c).Error
}

// cleanEmail keeps a syntactically valid address of bounded length, else "".
func cleanEmail(s string) string {
	if s == "" || len(s) > maxEmailLen {
		return ""
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s {
		return ""
	}
	return s
}

// cleanName returns nil for no name and cuts an over-long one at a rune boundary.
func cleanName(s string) *string {
	if s == "" || !utf8.ValidString(s) {
		return nil
	}
	if utf8.RuneCountInString(s) > maxNameRunes {
		s = string([]rune(s)[:maxNameRunes])
	}
	return &s
}
