package customers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
	"github.com/scoville/scoville/sealing"
)

// List pages through customers newest first for support; with a non-blank email, only
// the customer whose address is exactly that (surrounding spaces aside) is listed. Who
// may call it is the schema's rule (@hasRole), not this method's.
func (s *Service) List(ctx context.Context, email *string, first *int, after *string) (*models.CustomerConnection, error) {
	q := s.db.WithContext(ctx)
	if email != nil && strings.TrimSpace(*email) != "" {
		q = whereEmail(q, *email)
	}
	rows, more, err := paging.Fetch[*models.Customer](q, "created_at", first, after)
	if err != nil {
		return nil, fmt.Errorf("customers: list: %w", err)
	}
	return paging.Connection[models.CustomerConnection](rows, more, func(c *models.Customer) (time.Time, string) { return c.CreatedAt, c.ID }), nil
}

// whereEmail narrows q to the customer with exactly this e-mail address. It is the one
// place that knows how e-mail is stored: sealed, and found through its keyed blind
// index (sealing.Keyring.EmailIndex), so the match is exact and case-insensitive and
// the address never reaches the database in the clear.
func whereEmail(q *gorm.DB, email string) *gorm.DB {
	k, ok := sealing.FromDB(q)
	if !ok {
		_ = q.AddError(errors.New("customers: e-mail lookup needs the data keys (sealing.Install)"))
		return q
	}
	idx, err := k.EmailIndex(email)
	if err != nil {
		_ = q.AddError(fmt.Errorf("customers: e-mail lookup: %w", err))
		return q
	}
	return q.Where("email_hash = ?", idx)
}
