package subscriptions

import (
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/money"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/payments"
)

// Refund gives back all (amount absent) or part of what remains of a paid payment, at
// Stripe, and records it with its audit entry and the customer's notice in one
// transaction.
//
// The payment row stays locked from the check of what remains until the refund is
// recorded, Stripe's call included: two staff members refunding the same payment at
// once are served one after the other, so the second sees what the first took and
// nothing is refunded twice. The lock is held at most for the gateway's retry budget,
// a price paid on a rare, manual action.
//
// What is recorded is Stripe's running total for the charge, the figure
// charge.refunded events carry, and the larger total wins as in applyRefund: a later
// event for this refund, a replay of Stripe's answer after a crash, or both in any
// order, never count it twice.
func (a *Admin) Refund(ctx context.Context, p *auth.Principal, in models.RefundPaymentInput) (*Result, error) {
	reason, err := audit.Reason(in.Reason, "input", "reason")
	if err != nil {
		return nil, err
	}
	if in.Amount != nil && *in.Amount <= 0 {
		return nil, models.NewUserError(models.UserErrorInvalid, "must be a positive amount in minor units", "input", "amount")
	}
	return a.run(ctx, p, OpRefund, in.IdempotencyKey, in, func(ctx context.Context, scope idempotency.Scope) (Outcome, error) {
		if !models.ValidID(in.PaymentID) {
			return Outcome{}, models.NewUserError(models.UserErrorNotFound, "no such payment", "input", "paymentId")
		}
		key := scope.ProviderKey("refund")
		// An earlier attempt under this key may have reached Stripe and died before
		// its commit (Stripe's event may even have recorded the refund since): the
		// retry finishes that refund, under the same key, instead of judging it afresh.
		attempt, err := audit.FindAttempt(ctx, a.db, OpRefund, key)
		if err != nil {
			return Outcome{}, err
		}
		var out Outcome
		err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			pay, err := payments.Lock(tx, "id = ?", in.PaymentID)
			if err != nil {
				return err
			}
			if pay == nil || (attempt != nil && pay.StripePaymentIntentID == nil) {
				return models.NewUserError(models.UserErrorNotFound, "no such payment", "input", "paymentId")
			}
			before := payments.Audited(pay)
			var amount int64
			if attempt != nil {
				var planned struct{ Amount int64 }
				if err := json.Unmarshal(attempt.Planned, &planned); err != nil || planned.Amount <= 0 {
					return fmt.Errorf("subscriptions: refund: the attempt %s has no amount", attempt.ID)
				}
				amount = planned.Amount
			} else {
				if amount, err = payments.Refundable(pay, in.Amount); err != nil {
					return err
				}
				// Committed before Stripe is called: a refund never exists at Stripe
				// without an entry naming who asked for it.
				id, err := audit.RecordAttempt(ctx, a.db, p, audit.Action{
					Name: OpRefund, TargetType: audit.TargetPayment, TargetID: pay.ID, Reason: reason,
					Before: before, After: map[string]any{"amount": amount, "currency": pay.Currency},
				}, key)
				if err != nil {
					return err
				}
				attempt = &audit.Attempt{ID: id}
			}
			r, err := a.gw.RefundPayment(ctx, key, gateway.RefundInput{
				PaymentIntentID: *pay.StripePaymentIntentID, Amount: amount, OurPaymentID: pay.ID,
			})
			if err != nil {
				return providerFailure(err)
			}
			if r.Failed() {
				return models.NewUserError(models.UserErrorProviderRejected, "the payment provider could not refund this payment ("+r.Status+")")
			}
			refunded := pay.AmountRefunded + r.Amount
			// Stripe's event for this refund may have recorded it already, after a
			// crash of the attempt that asked for it: the customer was told then.
			recorded := false
			if r.ChargeKnown {
				refunded = max(pay.AmountRefunded, r.ChargeAmountRefunded)
				recorded = pay.AmountRefunded >= r.ChargeAmountRefunded
			}
			payments.SetRefunded(pay, refunded)
			if err := payments.Save(tx, pay, false); err != nil {
				return fmt.Errorf("subscriptions: refund: store: %w", err)
			}
			after := payments.Audited(pay)
			after["refundId"], after["refundAmount"] = r.ID, r.Amount
			if err := audit.Record(ctx, tx, p, audit.Action{
				Name: OpRefund, TargetType: audit.TargetPayment, TargetID: pay.ID, Reason: reason,
				Before: before, After: after, AttemptID: attempt.ID,
			}); err != nil {
				return err
			}
			if recorded {
				out = Outcome{PaymentID: pay.ID}
				return nil
			}
			if err := notifications.Enqueue(ctx, tx, a.notify, notifications.Notification{
				CustomerID: pay.CustomerID, Kind: notifications.KindPaymentRefunded, SubscriptionID: &pay.SubscriptionID, PaymentID: &pay.ID,
				Data:      map[string]string{notifications.DataAmount: money.Format(r.Amount, pay.Currency)},
				DedupeKey: "refund:" + r.ID,
			}); err != nil {
				return err
			}
			a.logger.InfoContext(ctx, "payment refunded by staff", "operation", OpRefund, "payment_id", pay.ID, "stripe_refund_id", r.ID,
				"amount", r.Amount, "currency", pay.Currency, "amount_refunded", pay.AmountRefunded, "status", string(pay.Status))
			out = Outcome{PaymentID: pay.ID}
			return nil
		})
		return out, err
	})
}
