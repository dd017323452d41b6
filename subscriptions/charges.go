package subscriptions

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/money"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/payments"
)

// paymentForCharge finds (or, from the invoice Prepare read, records) the payment
// a charge belongs to, locked. nil: not a payment of ours.
func (s *Syncer) paymentForCharge(ctx context.Context, tx *gorm.DB, read chargeRead, paymentIntentID, invoiceID string) (*models.Payment, error) {
	if paymentIntentID != "" {
		pay, err := payments.Lock(tx, "stripe_payment_intent_id = ?", paymentIntentID)
		if pay != nil || err != nil {
			return pay, err
		}
	}
	if invoiceID != "" {
		pay, err := payments.Lock(tx, "stripe_invoice_id = ?", invoiceID)
		if pay != nil || err != nil {
			return pay, err
		}
	}
	inv := read.invoice
	if inv == nil {
		return nil, nil
	}
	sub, err := s.subscriptionFor(ctx, tx, inv.SubscriptionID, read.subscription)
	if err != nil || sub == nil {
		return nil, err
	}
	if inv.Status != "paid" {
		return nil, nil
	}
	locked, err := payments.Lock(tx, "stripe_invoice_id = ?", inv.ID)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := s.recordPaid(ctx, tx, nil, *inv, sub, locked); err != nil {
		return nil, err
	}
	return payments.Lock(tx, "stripe_invoice_id = ?", inv.ID)
}

// applyRefund records what Stripe says has been refunded of a charge. Refunds only
// grow, so the larger figure wins whatever order the events come in.
func (s *Syncer) applyRefund(ctx context.Context, tx *gorm.DB, o origin, p preparedCharge) (Effect, error) {
	ch := p.charge
	pay, err := s.paymentForCharge(ctx, tx, p.read, ch.PaymentIntentID, ch.InvoiceID)
	if err != nil {
		return Effect{}, err
	}
	if pay == nil {
		return Effect{Ignored: true, Outcome: "charge of no payment of ours"}, nil
	}
	refunded := min(max(pay.AmountRefunded, ch.AmountRefunded), pay.AmountMinor)
	if refunded == pay.AmountRefunded && pay.Status == payments.RefundStatus(pay.AmountMinor, refunded, pay.Status) {
		return Effect{Outcome: "refund already recorded"}, nil
	}
	payments.SetRefunded(pay, refunded)
	if o.stamp.newer(pay.ProviderUpdatedAt, pay.ProviderEventSeq) {
		pay.ProviderUpdatedAt, pay.ProviderEventSeq = &o.stamp.created, &o.stamp.seq
	}
	if err := payments.Save(tx, pay, false); err != nil {
		return Effect{}, err
	}
	// A staff refund whose attempt died between Stripe's answer and our commit is
	// completed from this report, so the refund is not left with only its attempt:
	// only the attempt whose request caused it (its key is the event's request key),
	// never from another refund of the charge (the Dashboard's, say).
	if _, err := audit.CompleteOpen(ctx, tx, OpRefund, audit.TargetPayment, pay.ID,
		func(key string, _ json.RawMessage) bool { return o.requestKey != "" && key == o.requestKey },
		map[string]any{"eventId": o.ref, "amountRefunded": refunded, "status": pay.Status},
	); err != nil {
		return Effect{}, err
	}
	data := map[string]string{notifications.DataAmount: money.Format(refunded, pay.Currency)}
	if err := s.enqueue(ctx, tx, pay.CustomerID, notifications.KindPaymentRefunded, &pay.SubscriptionID, &pay.ID, data,
		o.ref+":refunded"); err != nil {
		return Effect{}, err
	}
	s.metrics.alerts.WithLabelValues("refund").Inc()
	s.logger.WarnContext(ctx, "payment refunded", "alert", "refund", "payment_id", pay.ID, "stripe_charge_id", ch.ID,
		"amount_refunded", refunded, "currency", pay.Currency, "status", string(pay.Status), "event_id", o.ref)
	return Effect{Outcome: "payment " + strings.ToLower(string(pay.Status))}, nil
}

// applyDispute records a dispute on the payment and raises the alert someone must
// act on (OPS-3).
func (s *Syncer) applyDispute(ctx context.Context, tx *gorm.DB, o origin, p preparedDispute) (Effect, error) {
	d := p.dispute
	return s.applyPaymentFlag(ctx, tx, o, p.read, d.PaymentIntentID, d.ChargeID, "dispute", func(pay *models.Payment, at *time.Time) []any {
		reason := d.Reason
		pay.DisputedAt, pay.DisputeReason = at, &reason
		return []any{"reason", reason, "amount", d.Amount}
	}, func(pay *models.Payment) *time.Time { return pay.DisputedAt })
}

// applyFraudWarning records an early fraud warning on the payment and raises the
// alert someone must act on (OPS-3).
func (s *Syncer) applyFraudWarning(ctx context.Context, tx *gorm.DB, o origin, p preparedFraudWarning) (Effect, error) {
	w := p.warning
	return s.applyPaymentFlag(ctx, tx, o, p.read, w.PaymentIntentID, w.ChargeID, "fraud_warning", func(pay *models.Payment, at *time.Time) []any {
		pay.FraudWarningAt = at
		return []any{"fraud_type", w.FraudType}
	}, func(pay *models.Payment) *time.Time { return pay.FraudWarningAt })
}

// applyPaymentFlag records a flag (kind) Stripe raised on a payment, once: set
// writes it and returns what to log with the alert; seen reads it back.
func (s *Syncer) applyPaymentFlag(ctx context.Context, tx *gorm.DB, o origin, read chargeRead, paymentIntentID, chargeID, kind string,
	set func(pay *models.Payment, at *time.Time) []any, seen func(pay *models.Payment) *time.Time,
) (Effect, error) {
	pay, err := s.paymentForCharge(ctx, tx, read, paymentIntentID, "")
	if err != nil {
		return Effect{}, err
	}
	if pay == nil {
		return Effect{Ignored: true, Outcome: "charge of no payment of ours"}, nil
	}
	at := o.stamp.created
	if prev := seen(pay); prev != nil && prev.Equal(at) {
		// This very report again (a replay): recorded and alerted once.
		return Effect{Outcome: strings.ReplaceAll(kind, "_", " ") + " already recorded"}, nil
	}
	attrs := []any{"alert", kind, "payment_id", pay.ID, "stripe_charge_id", chargeID, "event_id", o.ref}
	attrs = append(attrs, set(pay, &at)...)
	if err := payments.Save(tx, pay, false); err != nil {
		return Effect{}, fmt.Errorf("subscriptions: save %s: %w", kind, err)
	}
	s.metrics.alerts.WithLabelValues(kind).Inc()
	s.logger.WarnContext(ctx, "payment flagged by Stripe", attrs...)
	return Effect{Outcome: strings.ReplaceAll(kind, "_", " ") + " recorded"}, nil
}
