package payments

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/models"
)

// ForCustomer returns every payment of the customer, oldest first: what their
// data export shows and what an erasure works through.
func ForCustomer(ctx context.Context, db *gorm.DB, customerID string) ([]*models.Payment, error) {
	return database.CustomerRows[models.Payment](ctx, db, customerID)
}

// ForgetInvoiceLinks is an erasure's part of the payments table, in tx, after the
// customer is locked: payments are kept whole (the law requires it) except the
// hosted invoice URL, a bearer link to a page showing the billing name and
// address, which is emptied.
func ForgetInvoiceLinks(ctx context.Context, tx *gorm.DB, customerID string, now time.Time) error {
	pays, err := ForCustomer(ctx, tx, customerID)
	if err != nil {
		return err
	}
	for _, pay := range pays {
		if pay.InvoiceURL == nil {
			continue
		}
		pay.InvoiceURL, pay.UpdatedAt = nil, now
		if err := tx.WithContext(ctx).Model(pay).Select("invoice_url", "updated_at").Updates(pay).Error; err != nil {
			return fmt.Errorf("payments: forget invoice link: %w", err)
		}
	}
	return nil
}
