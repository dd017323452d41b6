package fulfilment

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/models"
)

// ForCustomer returns every shipment of the customer, oldest first: what their
// data export shows and what an erasure works through.
func ForCustomer(ctx context.Context, db *gorm.DB, customerID string) ([]*models.Shipment, error) {
	return database.CustomerRows[models.Shipment](ctx, db, customerID)
}

// ForgetAddresses is an erasure's part of the shipments table, in tx, after the
// customer is locked: every shipment of the customer keeps only the country of its
// address (a tax fact of the sale); which box was shipped for which payment stays.
func ForgetAddresses(ctx context.Context, tx *gorm.DB, customerID string, now time.Time) error {
	ships, err := ForCustomer(ctx, tx, customerID)
	if err != nil {
		return err
	}
	for _, s := range ships {
		s.Address, s.UpdatedAt = models.Address{Country: s.Address.Country}, now
		if err := tx.WithContext(ctx).Model(s).Select("address", "updated_at").Updates(s).Error; err != nil {
			return fmt.Errorf("fulfilment: forget address: %w", err)
		}
	}
	return nil
}
