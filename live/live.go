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
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"

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
	if later, ok := tx.Statement.Context.Value(laterKey{}).(*Later); ok && later.add(tx, subscriptionID) {
		return nil
	}
	if err := tx.Exec("SELECT pg_notify(?, ?)", Channel, subscriptionID).Error; err != nil {
		return fmt.Errorf("live: announce: %w", err)
	}
	return nil
}

// Later holds the announcements made in one transaction under one context of
// WithAnnounceLater, for AnnounceLater to make in it, together with those of other
// units of work: one statement instead of one per announcement.
type Later struct {
	mu   sync.Mutex
	tx   *sql.Tx // the transaction whose announcements it holds
	made bool    // AnnounceLater took them: later ones are made at once
	ids  []string
}

// add records id when the announcement belongs to l: made on a handle of l's
// transaction before AnnounceLater.
func (l *Later) add(tx *gorm.DB, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx); !ok || sqlTx != l.tx || l.made {
		return false
	}
	if !slices.Contains(l.ids, id) {
		l.ids = append(l.ids, id)
	}
	return true
}

type laterKey struct{}

// WithAnnounceLater returns ctx under which Announce, on a handle of tx carrying
// it, records the id in the returned Later instead of notifying. The caller must
// pass it to AnnounceLater in tx before committing, or drop it with the work that
// announced (a savepoint rolled back): what commits is announced, and nothing
// else, as with Announce. An Announce in another transaction, or after
// AnnounceLater, notifies at once: ctx reaching other work loses no announcement.
func WithAnnounceLater(ctx context.Context, tx *sql.Tx) (context.Context, *Later) {
	l := &Later{tx: tx}
	return context.WithValue(ctx, laterKey{}, l), l
}

// AnnounceLater makes in tx, in one statement, the announcements ls hold; one made
// under them afterwards is made at once. nil entries are skipped.
func AnnounceLater(ctx context.Context, tx *sql.Tx, ls ...*Later) error {
	var ids []string
	for _, l := range ls {
		if l == nil {
			continue
		}
		l.mu.Lock()
		l.made = true
		for _, id := range l.ids {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		l.mu.Unlock()
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id`, Channel, ids); err != nil {
		return fmt.Errorf("live: announce: %w", err)
	}
	return nil
}
