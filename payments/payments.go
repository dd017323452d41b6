// Package payments owns the payment rows of subscriptions: finding one to change
// (locked), the one write through which a payment is created or its status changes,
// and refunds' arithmetic. Who decides a change (a Stripe event, a reconciliation
// read, a staff refund) lives in package subscriptions; what a payment becomes
// lives here.
package payments

import (
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/live"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/money"
	"github.com/scoville/scoville/outbox"
)

// Lock returns the payment matching where (one placeholder, arg), locked for update
// in tx, or nil when there is none.
func Lock(tx *gorm.DB, where string, arg any) (*models.Payment, error) {
	var p models.Payment
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where(where, arg).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("payments: lock: %w", err)
	}
	return &p, nil
}

// ForInvoice returns the invoice's payment, locked, or a new unsaved one of the
// subscription sub (isNew), with the references every report of the invoice
// carries filled in. Save writes it.
func ForInvoice(tx *gorm.DB, inv gateway.Invoice, sub *models.Subscription) (pay *models.Payment, isNew bool, err error) {
	pay, err = Lock(tx, "stripe_invoice_id = ?", inv.ID)
	if err != nil {
		return nil, false, err
	}
	pay, isNew = ForInvoiceLocked(pay, inv, sub)
	return pay, isNew, nil
}

// ForInvoiceLocked is ForInvoice of a payment the caller locked already in its
// transaction (Lock of the invoice's stripe_invoice_id; nil: none), so the row is
// read and locked once.
func ForInvoiceLocked(locked *models.Payment, inv gateway.Invoice, sub *models.Subscription) (pay *models.Payment, isNew bool) {
	pay = locked
	if pay == nil {
		pay, isNew = &models.Payment{SubscriptionID: sub.ID, CustomerID: sub.CustomerID, StripeInvoiceID: inv.ID}, true
	}
	if inv.HostedInvoiceURL != "" {
		pay.InvoiceURL = &inv.HostedInvoiceURL
	}
	if inv.PaymentIntentID != "" {
		pay.StripePaymentIntentID = &inv.PaymentIntentID
	}
	return pay, isNew
}

// Save inserts (isNew) or updates pay inside tx: the one place a payment row is
// created or its status, amounts or flags change, so whatever must accompany such a
// change in its transaction belongs here.
func Save(tx *gorm.DB, pay *models.Payment, isNew bool) error {
	var err error
	if isNew {
		err = tx.Create(pay).Error
	} else {
		err = tx.Save(pay).Error
	}
	if err != nil {
		return fmt.Errorf("payments: save: %w", err)
	}
	if err := outbox.PaymentChanged(tx.Statement.Context, tx, pay); err != nil {
		return err
	}
	return live.Announce(tx, pay.SubscriptionID)
}

// RefundStatus is the status of a payment of amount of which refunded has been
// given back: REFUNDED, PARTIALLY_REFUNDED, or otherwise when nothing was.
func RefundStatus(amount, refunded int64, otherwise models.PaymentStatus) models.PaymentStatus {
	switch {
	case refunded > 0 && refunded >= amount:
		return models.PaymentRefunded
	case refunded > 0:
		return models.PaymentPartiallyRefunded
	}
	return otherwise
}

// SetRefunded makes refunded, capped at the amount paid, the payment's refunded
// total, with the status that follows; Save stores it.
func SetRefunded(pay *models.Payment, refunded int64) {
	pay.AmountRefunded = min(refunded, pay.AmountMinor)
	pay.Status = RefundStatus(pay.AmountMinor, pay.AmountRefunded, pay.Status)
}

// SetPaid records what Stripe collected for a paid invoice (amount in minor units,
// currency as Stripe writes it): the payment SUCCEEDED, or still refunded as far as
// it was. Save stores it.
func SetPaid(pay *models.Payment, amount int64, currency string) {
	pay.AmountMinor, pay.Currency = amount, strings.ToUpper(currency)
	if pay.AmountRefunded > pay.AmountMinor {
		pay.AmountRefunded = pay.AmountMinor
	}
	pay.Status = RefundStatus(pay.AmountMinor, pay.AmountRefunded, models.PaymentSucceeded)
}

// Paid reports whether a payment's money was collected (succeeded, or refunded since).
func Paid(pay *models.Payment) bool {
	return pay.Status == models.PaymentSucceeded || pay.Status == models.PaymentRefunded || pay.Status == models.PaymentPartiallyRefunded
}

// Refundable checks that pay can be refunded by want (nil: all that remains) and
// returns the amount to ask Stripe for; a refusal is a user error on the input's
// paymentId or amount. Nothing is sent to Stripe when it refuses.
func Refundable(pay *models.Payment, want *int) (int64, error) {
	switch pay.Status {
	case models.PaymentSucceeded, models.PaymentPartiallyRefunded:
	case models.PaymentRefunded:
		return 0, models.NewUserError(models.UserErrorInvalidState, "the payment has already been refunded in full", "input", "paymentId")
	default:
		return 0, models.NewUserError(models.UserErrorInvalidState, "only a succeeded payment can be refunded", "input", "paymentId")
	}
	remaining := pay.AmountMinor - pay.AmountRefunded
	if remaining <= 0 {
		return 0, models.NewUserError(models.UserErrorInvalidState, "nothing of this payment remains to refund", "input", "paymentId")
	}
	if pay.StripePaymentIntentID == nil || *pay.StripePaymentIntentID == "" {
		return 0, models.NewUserError(models.UserErrorInvalidState, "the payment has no charge at the payment provider to refund", "input", "paymentId")
	}
	if want == nil {
		return remaining, nil
	}
	if int64(*want) > remaining {
		return 0, models.NewUserError(models.UserErrorInvalid,
			"is more than remains to refund: at most "+money.Format(remaining, pay.Currency), "input", "amount")
	}
	return int64(*want), nil
}

// Audited is what the audit log keeps of a payment: amounts and state, no personal data.
func Audited(pay *models.Payment) map[string]any {
	return map[string]any{
		"id": pay.ID, "subscriptionId": pay.SubscriptionID, "status": pay.Status,
		"amount": pay.AmountMinor, "amountRefunded": pay.AmountRefunded, "currency": pay.Currency,
	}
}
