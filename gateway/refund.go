package gateway

import (
	"context"
	"errors"
	"strings"

	stripe "github.com/stripe/stripe-go/v76"
)

// MetadataPaymentID is written on a refund so Stripe's side leads back to our payment.
const MetadataPaymentID = "scoville_payment_id"

// RefundInput describes a refund of (part of) one payment intent's charge.
type RefundInput struct {
	PaymentIntentID string
	Amount          int64 // minor units, > 0; the caller checks it against what remains
	OurPaymentID    string
}

// Refund is Stripe's answer to a refund request.
type Refund struct {
	ID       string
	Amount   int64  // minor units
	Currency string // ISO 4217, upper case
	Status   string // pending, requires_action, succeeded, failed or canceled
	ChargeID string
	// ChargeAmountRefunded is everything refunded of the charge so far, this refund
	// included, as Stripe reported it with the answer; ChargeKnown is false when
	// Stripe did not send the charge, and the figure is then zero.
	ChargeAmountRefunded int64
	ChargeKnown          bool
}

// Failed reports whether Stripe will not move the money back.
func (r Refund) Failed() bool { return r.Status == "failed" || r.Status == "canceled" }

// RefundPayment refunds Amount of the payment intent's charge. The charge comes back
// expanded, so the caller learns the charge's refunded total in the same answer and can
// record it the way charge.refunded events are recorded. A replay under the same key
// returns Stripe's first answer and moves no money twice.
func (s *Stripe) RefundPayment(ctx context.Context, key string, in RefundInput) (Refund, error) {
	if err := checkKey(key); err != nil {
		return Refund{}, err
	}
	if err := errors.Join(checkID("PaymentIntentID", in.PaymentIntentID), checkID("OurPaymentID", in.OurPaymentID)); err != nil {
		return Refund{}, err
	}
	if in.Amount <= 0 {
		return Refund{}, invalid("Amount", "must be positive")
	}
	var out *stripe.Refund
	err := s.call(ctx, "RefundPayment", func(ctx context.Context) error {
		p := &stripe.RefundParams{
			PaymentIntent: stripe.String(in.PaymentIntentID),
			Amount:        stripe.Int64(in.Amount),
			Metadata:      map[string]string{MetadataPaymentID: in.OurPaymentID},
		}
		p.Params = writeParams(ctx, key)
		p.AddExpand("charge")
		var err error
		out, err = s.api.Refunds.New(p)
		return err
	})
	if err != nil {
		return Refund{}, err
	}
	return toRefund(out), nil
}

func toRefund(in *stripe.Refund) Refund {
	out := Refund{ID: in.ID, Amount: in.Amount, Currency: upper(in.Currency), Status: string(in.Status)}
	if in.Charge != nil {
		out.ChargeID = in.Charge.ID
		// An unexpanded reference carries only the id; an expanded charge names itself.
		if strings.EqualFold(in.Charge.Object, "charge") {
			out.ChargeAmountRefunded, out.ChargeKnown = in.Charge.AmountRefunded, true
		}
	}
	return out
}
