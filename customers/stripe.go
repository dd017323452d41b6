package customers

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
)

// LinkStripeCustomer stores stripeCustomerID as the Stripe customer of the
// customer with id customerID, in db (inside a transaction or not), only when none
// is stored: a customer already linked keeps theirs. It reports whether this call
// stored it; a customer that does not exist is linked to nothing.
func LinkStripeCustomer(ctx context.Context, db *gorm.DB, customerID, stripeCustomerID string) (bool, error) {
	res := db.WithContext(ctx).Model(&models.Customer{}).
		Where("id = ? AND stripe_customer_id IS NULL", customerID).Update("stripe_customer_id", stripeCustomerID)
	if res.Error != nil {
		return false, fmt.Errorf("customers: link stripe customer: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}
