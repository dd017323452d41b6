package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/models"
)

// applyAnswer stores Stripe's answer to a change of our subscription subID, asked
// at calledAt, as a read of that moment: under the row's lock, taken only now that
// Stripe has answered, and through the rule that orders events and reads
// (applyReadTo), so an event that applied while the call was out (a cancellation,
// a failed payment) is never undone. A replayed answer shows the subscription as an
// earlier attempt left it, at a time we do not know: the subscription is read from
// Stripe again and that read applies instead. also runs in the same transaction
// with what was applied (an audit entry, say).
func (s *Syncer) applyAnswer(ctx context.Context, subID string, gs gateway.Subscription, calledAt time.Time,
	also func(tx *gorm.DB, res readResult) error,
) (readResult, error) {
	if gs.Replayed {
		readAt := time.Now()
		fresh, err := s.gw.GetSubscription(ctx, gs.ID)
		if err != nil {
			return readResult{}, fmt.Errorf("subscriptions: read after a replayed answer: %w", err)
		}
		gs, calledAt = fresh, readAt
	}
	var res readResult
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var sub models.Subscription
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&sub, "id = ?", subID).Error
		if err != nil {
			return fmt.Errorf("subscriptions: lock: %w", err)
		}
		if sub.StripeSubscriptionID == nil || *sub.StripeSubscriptionID != gs.ID {
			return errors.New("subscriptions: Stripe answered for another subscription")
		}
		if res, err = s.applyReadTo(ctx, tx, &sub, false, gs, calledAt); err != nil {
			return err
		}
		if also != nil {
			return also(tx, res)
		}
		return nil
	})
	return res, err
}
