// Package fulfilment owns shipments: the one box a paid period of a subscription
// sends. A shipment row is created only by Create, in the transaction that records
// the payment it ships for.
package fulfilment

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/live"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/outbox"
)

// Create records ship, PENDING, inside tx: the one place a shipment row is created.
// A period ships once: when the invoice's shipment exists already, nothing is
// written and created is false, so replays and reconciliation may call it freely.
// planName is the name of ship's plan, as shipment.created carries it.
func Create(ctx context.Context, tx *gorm.DB, ship *models.Shipment, planName string) (created bool, err error) {
	ship.Status = models.ShipmentPending
	res := tx.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(ship)
	if res.Error != nil {
		return false, fmt.Errorf("fulfilment: create shipment: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return false, nil
	}
	if err := outbox.ShipmentCreated(ctx, tx, ship, planName); err != nil {
		return false, err
	}
	return true, live.Announce(tx, ship.SubscriptionID)
}

// Exists reports whether the shipment of a Stripe invoice has been created.
func Exists(tx *gorm.DB, stripeInvoiceID string) (bool, error) {
	var n int64
	if err := tx.Model(&models.Shipment{}).Where("stripe_invoice_id = ?", stripeInvoiceID).Count(&n).Error; err != nil {
		return false, fmt.Errorf("fulfilment: count shipments: %w", err)
	}
	return n > 0, nil
}
