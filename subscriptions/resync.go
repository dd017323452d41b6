package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/gateway"
	liveupdates "github.com/scoville/scoville/live" // "live" names a func of this package
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/outbox"
)

// ActionResync names resyncSubscription in the audit log.
const ActionResync = "resyncSubscription"

// Resync re-reads a subscription from Stripe and applies what Stripe says now, as a
// customer.subscription.updated event read at this moment would, with an audit entry
// in the same transaction. Stripe unreachable: the error is ErrProviderUnavailable
// and nothing changed.
func (s *Syncer) Resync(ctx context.Context, p *auth.Principal, subscriptionID, reason string) (*models.Subscription, error) {
	reason, err := audit.Reason(reason, "input", "reason")
	if err != nil {
		return nil, err
	}
	notFound := models.NewUserError(models.UserErrorNotFound, "no such subscription", "input", "subscriptionId")
	if !models.ValidID(subscriptionID) {
		return nil, notFound
	}
	var sub models.Subscription
	err = s.db.WithContext(ctx).Take(&sub, "id = ?", subscriptionID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("subscriptions: resync: load: %w", err)
	}
	if sub.StripeSubscriptionID == nil {
		return nil, models.NewUserError(models.UserErrorInvalidState, "the subscription is not set up at the payment provider yet", "input", "subscriptionId")
	}
	readAt := time.Now()
	gs, err := s.gw.GetSubscription(ctx, *sub.StripeSubscriptionID)
	if errors.Is(err, gateway.ErrNotFound) {
		return nil, models.NewUserError(models.UserErrorInvalidState, "the payment provider does not know this subscription", "input", "subscriptionId")
	}
	if err != nil {
		return nil, fmt.Errorf("subscriptions: resync: read from Stripe: %w", err)
	}
	var out *models.Subscription
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		read, err := s.applyRead(ctx, tx, gs, readAt)
		if err != nil {
			return err
		}
		if read.sub == nil {
			return errors.New("subscriptions: resync: Stripe reports the subscription as not ours")
		}
		out = read.sub
		return audit.Record(ctx, tx, p, audit.Action{
			Name: ActionResync, TargetType: audit.TargetSubscription, TargetID: read.sub.ID, Reason: reason,
			Before: summarize(&read.before), After: summarize(read.sub),
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// subscriptionSummary is what the audit log keeps of a subscription: no address.
type subscriptionSummary struct {
	Status            models.SubscriptionStatus `json:"status"`
	PlanID            string                    `json:"planId"`
	CancelAtPeriodEnd bool                      `json:"cancelAtPeriodEnd"`
	CurrentPeriodEnd  *time.Time                `json:"currentPeriodEnd,omitempty"`
	PausedUntil       *time.Time                `json:"pausedUntil,omitempty"`
}

func summarize(sub *models.Subscription) subscriptionSummary {
	return subscriptionSummary{
		Status: sub.Status, PlanID: sub.PlanID, CancelAtPeriodEnd: sub.CancelAtPeriodEnd,
		CurrentPeriodEnd: sub.CurrentPeriodEnd, PausedUntil: sub.PausedUntil,
	}
}

// readResult is what applying a read did: the subscription (nil: not ours), as it
// was, whether our row was made from the read, whether the read applied (it was
// not older than the state stored), and whether anything changed.
type readResult struct {
	sub     *models.Subscription
	before  models.Subscription
	created bool
	applied bool
	changed bool
}

// readStamp places a server-side read in the events' order: at the second it
// started, before every event of that second (seq 0; events count from 1), so an
// event Stripe sent in that second is never overridden by the read.
func readStamp(at time.Time) stamp { return stamp{created: at.UTC().Truncate(time.Second)} }

// readOrigin is a server-side read of Stripe's state at readAt, named ref, as the
// origin of what applying it changes.
func readOrigin(at time.Time, ref string) origin { return origin{stamp: readStamp(at), ref: ref} }

// readNewer reports whether a read stamped st may replace the state last applied at
// (at, seq): it is later, or of the same second as another read. An event of the
// same second wins.
func readNewer(st stamp, at *time.Time, seq *int64) bool {
	if at == nil || st.created.After(*at) {
		return true
	}
	return st.created.Equal(*at) && (seq == nil || *seq == 0)
}

// applyRead applies a subscription read from Stripe at readAt inside tx, through
// the code an event uses (ensureSubscription, applyState, the customer notice), and
// unless an event newer than the read has applied already.
func (s *Syncer) applyRead(ctx context.Context, tx *gorm.DB, gs gateway.Subscription, readAt time.Time) (readResult, error) {
	tx = tx.WithContext(ctx)
	sub, created, err := s.ensureSubscription(ctx, tx, gs, nil)
	if err != nil || sub == nil {
		return readResult{}, err
	}
	res, err := s.applyReadTo(ctx, tx, sub, created, gs, readAt)
	if err != nil || !res.changed {
		return res, err
	}
	if err := completeCancelAttempts(ctx, tx, sub, "", true, map[string]any{"readAt": readAt.UTC()}); err != nil {
		return readResult{}, err
	}
	on, previous := notifications.SubscriptionUpdated, previousAttributes(&res.before, sub)
	if created {
		on = notifications.SubscriptionCreated
	}
	kind, change := subscriptionNotice(on, gs, previous)
	if err := s.noticeChange(ctx, tx, sub, kind, change, fmt.Sprintf("read:%s:%d:%s", gs.ID, readAt.UnixNano(), kind)); err != nil {
		return readResult{}, err
	}
	s.logger.InfoContext(ctx, "subscription synced from a Stripe read", "subscription_id", sub.ID, "stripe_subscription_id", gs.ID,
		"status_before", string(res.before.Status), "status", string(sub.Status), "created", created)
	return res, nil
}

// applyReadTo applies gs, Stripe's view read at readAt, to sub, which tx holds
// locked (created: made from this very read), unless a newer event or read has
// applied already; it tells no one. A mutation applies Stripe's answer through it,
// and leaves the customer's notice to the event Stripe sends for the change.
func (s *Syncer) applyReadTo(ctx context.Context, tx *gorm.DB, sub *models.Subscription, created bool, gs gateway.Subscription, readAt time.Time) (readResult, error) {
	res := readResult{sub: sub, before: *sub, created: created}
	st := readStamp(readAt)
	if !created && !readNewer(st, sub.ProviderUpdatedAt, sub.ProviderEventSeq) {
		return res, nil
	}
	if err := s.applyState(ctx, tx, sub, gs); err != nil {
		return readResult{}, err
	}
	res.applied, res.changed = true, created || differs(&res.before, sub)
	sub.ProviderUpdatedAt, sub.ProviderEventSeq = &st.created, &st.seq
	if err := tx.Save(sub).Error; err != nil {
		return readResult{}, fmt.Errorf("subscriptions: save read: %w", err)
	}
	if err := liveupdates.Announce(tx, sub.ID); err != nil {
		return readResult{}, err
	}
	if res.changed {
		if err := outbox.SubscriptionUpdated(ctx, tx, sub); err != nil {
			return readResult{}, err
		}
	}
	return res, nil
}

// differs reports whether what Stripe owns on a subscription changed.
func differs(a, b *models.Subscription) bool {
	return a.Status != b.Status || a.PlanID != b.PlanID || a.CancelAtPeriodEnd != b.CancelAtPeriodEnd ||
		!sameTime(a.CurrentPeriodStart, b.CurrentPeriodStart) || !sameTime(a.CurrentPeriodEnd, b.CurrentPeriodEnd) ||
		!sameTime(a.PausedUntil, b.PausedUntil)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// previousAttributes is Stripe's data.previous_attributes for the change from
// before to after, so a read picks the customer notice an event would have.
func previousAttributes(before, after *models.Subscription) json.RawMessage {
	prev := map[string]any{}
	switch {
	case before.Status == models.SubscriptionPaused && after.Status != models.SubscriptionPaused:
		prev["pause_collection"] = map[string]string{"behavior": gateway.PauseBehavior}
		if after.Status != models.SubscriptionActive && after.Status != models.SubscriptionTrialing {
			prev["status"] = "active"
		}
	case after.Status == models.SubscriptionPaused && before.Status != models.SubscriptionPaused:
		prev["pause_collection"] = nil
	case before.Status != after.Status:
		prev["status"] = strings.ToLower(string(before.Status))
	}
	if before.CancelAtPeriodEnd != after.CancelAtPeriodEnd {
		prev["cancel_at_period_end"] = before.CancelAtPeriodEnd
	}
	if before.PlanID != after.PlanID {
		prev["items"] = map[string]any{}
	}
	raw, _ := json.Marshal(prev)
	return raw
}
