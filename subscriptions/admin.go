package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/paging"
)

// Operation names of the staff actions; they scope idempotency keys and name audit
// entries.
const (
	OpAdminCancel = "adminCancelSubscription"
	OpRefund      = "refundPayment"
)

// List pages through every customer's subscriptions newest first for staff, of one
// status when given. Who may call it is the schema's rule (@hasRole).
func (s *Service) List(ctx context.Context, status *models.SubscriptionStatus, first *int, after *string) (*models.SubscriptionConnection, error) {
	q := s.db.WithContext(ctx)
	if status != nil {
		q = q.Where("status = ?", *status)
	}
	rows, more, err := paging.Fetch[*models.Subscription](q, "created_at", first, after)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: list: %w", err)
	}
	return paging.Connection[models.SubscriptionConnection](rows, more, func(sub *models.Subscription) (time.Time, string) { return sub.CreatedAt, sub.ID }), nil
}

// ForCustomers lists the subscriptions of several customers in one statement, each
// customer's newest first and at most paging.MaxList of them, for a batching loader.
// Customers without any are absent.
func (s *Service) ForCustomers(ctx context.Context, customerIDs []string) (map[string][]*models.Subscription, error) {
	limit := paging.MaxList
	out, _, err := paging.FetchEach(s.db.WithContext(ctx), "customers", "subscriptions", "customer_id", "created_at",
		customerIDs, func(sub *models.Subscription) string { return sub.CustomerID }, &limit, nil)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: list for customers: %w", err)
	}
	return out, nil
}

// AdminGateway is what staff actions need from the payment provider.
type AdminGateway interface {
	CancelSubscription(ctx context.Context, key, subID string, atPeriodEnd bool) (gateway.Subscription, error)
	RefundPayment(ctx context.Context, key string, in gateway.RefundInput) (gateway.Refund, error)
}

// Admin is the staff's actions on any customer's subscriptions and payments. Each one
// needs a reason, runs under the caller's idempotency key, and writes its audit entry
// in the transaction of its local effect (OPS-4).
type Admin struct {
	db     *gorm.DB
	gw     AdminGateway
	syncer *Syncer
	idem   *idempotency.Store
	notify notifications.Inserter
	logger *slog.Logger
}

// NewAdmin wires the staff actions. syncer applies Stripe's answers by the rule its
// events follow; notify enqueues the customer's notice of a refund in the refund's
// transaction.
func NewAdmin(db *gorm.DB, gw AdminGateway, syncer *Syncer, idem *idempotency.Store, notify notifications.Inserter, logger *slog.Logger) *Admin {
	return &Admin{db: db, gw: gw, syncer: syncer, idem: idem, notify: notify, logger: logger}
}

// run executes one staff action under its idempotency key, exactly as customers'
// mutations are.
func (a *Admin) run(ctx context.Context, p *auth.Principal, op, key string, input any,
	fn func(ctx context.Context, scope idempotency.Scope) (Outcome, error),
) (*Result, error) {
	return runKeyed(ctx, a.db, a.idem, p, op, key, input, nil, fn)
}

// Cancel cancels any customer's subscription at Stripe, now or at the end of the paid
// period, under the same state rules as a customer's own cancelSubscription. Stripe's
// answer is stored as a customer's change stores it (applyAnswer: never over a newer
// event), and the audit entry commits with it, saying what the subscription was
// before and is after.
func (a *Admin) Cancel(ctx context.Context, p *auth.Principal, in models.AdminCancelSubscriptionInput) (*Result, error) {
	reason, err := audit.Reason(in.Reason, "input", "reason")
	if err != nil {
		return nil, err
	}
	return a.run(ctx, p, OpAdminCancel, in.IdempotencyKey, in, func(ctx context.Context, scope idempotency.Scope) (Outcome, error) {
		notFound := models.NewUserError(models.UserErrorNotFound, "no such subscription", "input", subscriptionFieldPath)
		if !models.ValidID(in.SubscriptionID) {
			return Outcome{}, notFound
		}
		var sub models.Subscription
		err := a.db.WithContext(ctx).Take(&sub, "id = ?", in.SubscriptionID).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return Outcome{}, notFound
		}
		if err != nil {
			return Outcome{}, fmt.Errorf("subscriptions: admin cancel: load: %w", err)
		}
		key := scope.ProviderKey("call")
		// An earlier attempt under this key may have reached Stripe and died before
		// its commit, and Stripe's event may have ended the subscription since: the
		// retry finishes that cancellation instead of refusing it as ended.
		attempt, err := audit.FindAttempt(ctx, a.db, OpAdminCancel, key)
		if err != nil {
			return Outcome{}, err
		}
		if sub.StripeSubscriptionID == nil {
			return Outcome{}, invalidState("the subscription is not set up at the payment provider yet")
		}
		if attempt == nil {
			if err := cancellable(&sub, in.AtPeriodEnd); err != nil {
				return Outcome{}, err
			}
			// Committed before Stripe is called: a cancellation never exists at
			// Stripe without an entry naming who asked for it.
			id, err := audit.RecordAttempt(ctx, a.db, p, audit.Action{
				Name: OpAdminCancel, TargetType: audit.TargetSubscription, TargetID: sub.ID, Reason: reason,
				Before: summarize(&sub), After: map[string]any{"atPeriodEnd": in.AtPeriodEnd},
			}, key)
			if err != nil {
				return Outcome{}, err
			}
			attempt = &audit.Attempt{ID: id}
		}
		// Stripe first, with no lock held over the call; the key makes a retry
		// after a crash replay Stripe's answer instead of cancelling twice.
		calledAt := time.Now()
		gs, err := a.gw.CancelSubscription(ctx, key, *sub.StripeSubscriptionID, in.AtPeriodEnd)
		if err != nil {
			return Outcome{}, providerFailure(err)
		}
		_, err = a.syncer.applyAnswer(ctx, sub.ID, gs, calledAt, func(tx *gorm.DB, res readResult) error {
			return audit.Record(ctx, tx, p, audit.Action{
				Name: OpAdminCancel, TargetType: audit.TargetSubscription, TargetID: res.sub.ID, Reason: reason,
				Before: summarize(&res.before), After: summarize(res.sub), AttemptID: attempt.ID,
			})
		})
		if err != nil {
			return Outcome{}, fmt.Errorf("subscriptions: admin cancel: store: %w", err)
		}
		a.logger.InfoContext(ctx, "subscription canceled by staff", "operation", OpAdminCancel, "subscription_id", sub.ID,
			"at_period_end", in.AtPeriodEnd, "status", string(gs.Status))
		return Outcome{SubscriptionID: sub.ID}, nil
	})
}

// cancellable is the state rule of cancelling, the customer's and the staff's alike.
func cancellable(sub *models.Subscription, atPeriodEnd bool) error {
	if sub.Status.Ended() {
		return invalidState("the subscription has already ended")
	}
	if atPeriodEnd && sub.CancelAtPeriodEnd {
		return invalidState("the subscription is already set to cancel at the end of the period")
	}
	return nil
}
