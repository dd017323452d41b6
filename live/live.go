// Package live owns the fan-out of live updates (API.md "Live updates"): the owner of
// a subscription's change announces it with Announce inside the transaction that
// commits it, PostgreSQL delivers the announcement to every API process at commit
// (and never for a transaction that rolled back), and each process's Hub wakes the
// operations that follow that subscription. What a push carries is read again by
// the caller of Stream, through the same ownership and field rules as a query.
//
// The owners announce where they store: subscriptions (a subscription row stored
// from a Stripe event, from a read or a mutation's answer, PAST_DUE from a failed
// invoice, the Checkout address, updateShippingAddress), payments.Save and
// fulfilment.Create.
package live

import (
	"fmt"

	"gorm.io/gorm"
)

// ApplicationName names the LISTEN connection in pg_stat_activity.
const ApplicationName = "scoville-live"

// Channel is the PostgreSQL notification channel of subscription changes; its
// payload is the subscription's id.
const Channel = "scoville_subscription"

// Announce tells every API process, once tx commits, that subscription
// subscriptionID changed (its status, plan, pause, cancellation, address, a payment
// or a shipment). Nothing is delivered when tx rolls back; announcements of one id
// in one transaction are delivered once. Call it in the transaction that writes the
// change, after the write.
func Announce(tx *gorm.DB, subscriptionID string) error {
	if err := tx.Exec("SELECT pg_notify(?, ?)", Channel, subscriptionID).Error; err != nil {
		return fmt.Errorf("live: announce: %w", err)
	}
	return nil
}
