package subscriptions

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/models"
)

// ForCustomer returns every subscription of the customer, oldest first: what
// their data export shows and what an erasure works through.
func ForCustomer(ctx context.Context, db *gorm.DB, customerID string) ([]*models.Subscription, error) {
	return database.CustomerRows[models.Subscription](ctx, db, customerID)
}

// ForgetAddresses is an erasure's part of the subscriptions table, in tx, after the
// customer is locked: every subscription of the customer keeps only the country of
// its shipping address (a tax fact of the sale); those in ended, which Stripe has
// ended, take the status given there and no longer cancel at period end. Statuses,
// periods and amounts otherwise stay. It returns the ids of the ended ones, oldest
// first.
func ForgetAddresses(ctx context.Context, tx *gorm.DB, customerID string, ended map[string]models.SubscriptionStatus, now time.Time) ([]string, error) {
	subs, err := ForCustomer(ctx, tx, customerID)
	if err != nil {
		return nil, err
	}
	var canceled []string
	for _, s := range subs {
		s.ShippingAddress = models.Address{Country: s.ShippingAddress.Country}
		cols := []string{"shipping_address", "updated_at"}
		if st, ok := ended[s.ID]; ok {
			s.Status, s.CancelAtPeriodEnd = st, false
			cols = append(cols, "status", "cancel_at_period_end")
			canceled = append(canceled, s.ID)
		}
		s.UpdatedAt = now
		if err := tx.WithContext(ctx).Model(s).Select(cols).Updates(s).Error; err != nil {
			return nil, fmt.Errorf("subscriptions: forget address: %w", err)
		}
	}
	return canceled, nil
}
