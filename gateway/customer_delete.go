package gateway

import (
	"context"
	"errors"

	stripe "github.com/stripe/stripe-go/v76"
)

// DeleteCustomer deletes the Stripe customer for good (a customer's erasure, DAT-3):
// Stripe drops their saved payment methods and cancels what is still running, and
// keeps the invoices and payments it must. A customer Stripe no longer knows is
// already deleted, so that is success: a retry after a lost answer is safe.
func (s *Stripe) DeleteCustomer(ctx context.Context, key, customerID string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := checkID("customerID", customerID); err != nil {
		return err
	}
	err := s.call(ctx, "DeleteCustomer", func(ctx context.Context) error {
		p := &stripe.CustomerParams{Params: writeParams(ctx, key)}
		_, err := s.api.Customers.Del(customerID, p)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
