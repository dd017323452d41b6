package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

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
	conn := &models.SubscriptionConnection{Edges: make([]*models.SubscriptionEdge, 0, len(rows)), PageInfo: &models.PageInfo{HasNextPage: more}}
	for _, sub := range rows {
		conn.Edges = append(conn.Edges, &models.SubscriptionEdge{Node: sub, Cursor: paging.Encode(sub.CreatedAt, sub.ID)})
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn, nil
}

// ForCustomers lists the subscriptions of several customers in one query, each
// customer's newest first, for a batching loader. Customers without any are absent.
func (s *Service) ForCustomers(ctx context.Context, customerIDs []string) (map[string][]*models.Subscription, error) {
	var subs []*models.Subscription
	err := s.db.WithContext(ctx).Where("customer_id IN ?", customerIDs).Order("created_at DESC, id DESC").Find(&subs).Error
	if err != nil {
		return nil, fmt.Errorf("subscriptions: list for customers: %w", err)
	}
	out := make(map[string][]*models.Subscription, len(customerIDs))
	for _, sub := range subs {
		out[sub.CustomerID] = append(out[sub.CustomerID], sub)
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
	idem   *idempotency.Store
	notify notifications.Inserter
	logger *slog.Logger
}

// NewAdmin wires the staff actions. notify enqueues the customer's notice of a refund
// in the refund's transaction.
func NewAdmin(db *gorm.DB, gw AdminGateway, idem *idempotency.Store, notify notifications.Inserter, logger *slog.Logger) *Admin {
	return &Admin{db: db, gw: gw, idem: idem, notify: notify, logger: logger}
}

// AdminOutcome is what a staff action produced, stored with its idempotency key so a
// replay answers as the first call did.
type AdminOutcome struct {
	SubscriptionID string              `json:"subscriptionId,omitempty"`
	PaymentID      string              `json:"paymentId,omitempty"`
	UserErrors     []*models.UserError `json:"userErrors,omitempty"`
}

// AdminResult is an AdminOutcome with its object loaded as it is now.
type AdminResult struct {
	AdminOutcome
	Subscription *models.Subscription
	Payment      *models.Payment
}

// run executes one staff action under its idempotency key, scoped to the caller and
// the operation exactly as customers' mutations are. fn's user errors become part of
// the stored outcome; any other error releases the key for a retry.
func (a *Admin) run(ctx context.Context, p *auth.Principal, op, key string, input any,
	fn func(ctx context.Context, scope idempotency.Scope) (AdminOutcome, error),
) (*AdminResult, error) {
	scope := idempotency.ScopeFor(p.Issuer, p.Subject, op, key)
	out, _, err := idempotency.Run(ctx, a.idem, scope, input, func(ctx context.Context) (AdminOutcome, error) {
		o, err := fn(ctx, scope)
		if ues, rest := models.UserErrorsOf(err); len(ues) > 0 && rest == nil {
			return AdminOutcome{UserErrors: ues}, nil
		}
		return o, err
	})
	if err != nil {
		return nil, idempotency.AsUserError(err)
	}
	res := &AdminResult{AdminOutcome: out}
	if len(out.UserErrors) > 0 {
		return res, nil
	}
	if out.SubscriptionID != "" {
		res.Subscription = new(models.Subscription)
		if err := a.db.WithContext(ctx).Take(res.Subscription, "id = ?", out.SubscriptionID).Error; err != nil {
			return nil, fmt.Errorf("subscriptions: %s: reload: %w", op, err)
		}
	}
	if out.PaymentID != "" {
		res.Payment = new(models.Payment)
		if err := a.db.WithContext(ctx).Take(res.Payment, "id = ?", out.PaymentID).Error; err != nil {
			return nil, fmt.Errorf("subscriptions: %s: reload: %w", op, err)
		}
	}
	return res, nil
}

// Cancel cancels any customer's subscription at Stripe, now or at the end of the paid
// period, under the same state rules as a customer's own cancelSubscription; the audit
// entry commits with the stored result.
func (a *Admin) Cancel(ctx context.Context, p *auth.Principal, in models.AdminCancelSubscriptionInput) (*AdminResult, error) {
	reason, err := Reason(in.Reason, "input", "reason")
	if err != nil {
		return nil, err
	}
	return a.run(ctx, p, OpAdminCancel, in.IdempotencyKey, in, func(ctx context.Context, scope idempotency.Scope) (AdminOutcome, error) {
		notFound := models.NewUserError(models.UserErrorNotFound, "no such subscription", "input", subscriptionFieldPath)
		if uuid.Validate(in.SubscriptionID) != nil {
			return AdminOutcome{}, notFound
		}
		var sub models.Subscription
		err := a.db.WithContext(ctx).Take(&sub, "id = ?", in.SubscriptionID).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return AdminOutcome{}, notFound
		}
		if err != nil {
			return AdminOutcome{}, fmt.Errorf("subscriptions: admin cancel: load: %w", err)
		}
		if err := cancellable(&sub, in.AtPeriodEnd); err != nil {
			return AdminOutcome{}, err
		}
		if sub.StripeSubscriptionID == nil {
			return AdminOutcome{}, invalidState("the subscription is not set up at the payment provider yet")
		}
		// Stripe first, with no lock held over the call; the key makes a retry
		// after a crash replay Stripe's answer instead of cancelling twice.
		gs, err := a.gw.CancelSubscription(ctx, scope.ProviderKey("call"), *sub.StripeSubscriptionID, in.AtPeriodEnd)
		if err != nil {
			return AdminOutcome{}, providerFailure(err)
		}
		err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var cur models.Subscription
			if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&cur, "id = ?", sub.ID).Error; err != nil {
				return fmt.Errorf("subscriptions: admin cancel: lock: %w", err)
			}
			before := summarize(&cur)
			applyProvider(&cur, gs)
			if err := tx.Save(&cur).Error; err != nil {
				return fmt.Errorf("subscriptions: admin cancel: store: %w", err)
			}
			return audit.Record(ctx, tx, p, audit.Action{
				Name: OpAdminCancel, TargetType: audit.TargetSubscription, TargetID: cur.ID, Reason: reason,
				Before: before, After: summarize(&cur),
			})
		})
		if err != nil {
			return AdminOutcome{}, err
		}
		a.logger.InfoContext(ctx, "subscription canceled by staff", "operation", OpAdminCancel, "subscription_id", sub.ID,
			"at_period_end", in.AtPeriodEnd, "status", string(gs.Status))
		return AdminOutcome{SubscriptionID: sub.ID}, nil
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
