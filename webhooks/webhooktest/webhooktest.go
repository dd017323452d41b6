// Package webhooktest builds Stripe events as Stripe sends them (API version and
// object shapes of stripe-go v76) and signs them like Stripe does, for tests and
// the webhook load command. It is never used by the server.
package webhooktest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// Object is a Stripe object or event as JSON-ready data.
type Object = map[string]any

// Event wraps obj in an event of the given type, id and created time.
// previous, for *.updated events, is data.previous_attributes.
func Event(id, eventType string, created time.Time, obj Object, previous Object) []byte {
	return EventOfRequest(id, eventType, created, obj, previous, "")
}

// EventOfRequest is Event as Stripe sends it for a change an API request made:
// request.idempotency_key holds that request's key ("" for none).
func EventOfRequest(id, eventType string, created time.Time, obj Object, previous Object, idempotencyKey string) []byte {
	var key any
	if idempotencyKey != "" {
		key = idempotencyKey
	}
	data := Object{"object": obj}
	if previous != nil {
		data["previous_attributes"] = previous
	}
	b, err := json.Marshal(Object{
		"id": id, "object": "event", "api_version": stripe.APIVersion, "created": created.Unix(),
		"livemode": false, "pending_webhooks": 1, "type": eventType, "data": data,
		"request": Object{"id": nil, "idempotency_key": key},
	})
	if err != nil {
		panic(err) // only literal test data goes in
	}
	return b
}

// Sign returns the Stripe-Signature header for body, signed with secret at t.
func Sign(body []byte, secret string, t time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: t}).Header
}

// Subscription is a subscription object with one item on price.
type Subscription struct {
	ID, Customer, Price, Status string
	Amount                      int64  // unit amount, minor units
	Currency                    string // lower case, as Stripe sends it
	PeriodStart, PeriodEnd      time.Time
	CancelAtPeriodEnd           bool
	Paused                      bool
	Metadata                    map[string]string
}

// Object renders the subscription as Stripe does.
func (s Subscription) Object() Object {
	var pause any
	if s.Paused {
		pause = Object{"behavior": "void", "resumes_at": nil}
	}
	md := s.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return Object{
		"id": s.ID, "object": "subscription", "customer": s.Customer, "status": s.Status,
		"cancel_at_period_end": s.CancelAtPeriodEnd, "pause_collection": pause,
		"current_period_start": s.PeriodStart.Unix(), "current_period_end": s.PeriodEnd.Unix(),
		"created": s.PeriodStart.Unix(), "currency": s.Currency, "metadata": md, "livemode": false,
		"items": Object{"object": "list", "has_more": false, "url": "/v1/subscription_items?subscription=" + s.ID,
			"data": []any{Object{
				"id": "si_" + s.ID, "object": "subscription_item", "quantity": 1, "subscription": s.ID,
				"price": price(s.Price, s.Amount, s.Currency),
			}}},
	}
}

func price(id string, amount int64, currency string) Object {
	return Object{"id": id, "object": "price", "unit_amount": amount, "currency": currency, "type": "recurring",
		"recurring": Object{"interval": "month", "interval_count": 1}}
}

// Invoice is a subscription invoice with one line billing a period, and what
// Stripe adds around it: a trial, a coupon, proration lines.
type Invoice struct {
	ID, Subscription, Customer, Price string
	Status, BillingReason             string // default "paid", "subscription_cycle"
	Amount                            int64  // the price's unit amount, and the period line's before a trial or discount
	Paid                              int64  // amount_paid; defaults to the total when Status is paid
	Currency                          string
	PeriodStart, PeriodEnd            time.Time
	Quantity                          int64 // default 1
	NextPaymentAttempt                time.Time
	// Trial bills the period at 0, as Stripe's line "Trial period for ..." does.
	Trial bool
	// Discount is a coupon's amount off the period line: in the line's
	// discount_amounts and the invoice's total_discount_amounts, off the total.
	Discount int64
	// Prorations are proration lines (invoice items Stripe made at a plan
	// change), before the period line; NoPeriodLine leaves that line out, as an
	// invoice of prorations alone (proration_behavior=always_invoice) has.
	Prorations   []Proration
	NoPeriodLine bool
}

// Proration is one proration line: a credit (negative Amount) for the unused
// time on a price, or a charge for the remaining time on another.
type Proration struct {
	Price                  string
	UnitAmount, Amount     int64
	PeriodStart, PeriodEnd time.Time
}

// Object renders the invoice as Stripe does.
func (in Invoice) Object() Object {
	status, reason, qty := cmp.Or(in.Status, "paid"), cmp.Or(in.BillingReason, "subscription_cycle"), in.Quantity
	if qty == 0 {
		qty = 1
	}
	lines := []any{}
	var subtotal int64
	for i, p := range in.Prorations {
		desc := "Remaining time on " + p.Price
		if p.Amount < 0 {
			desc = "Unused time on " + p.Price
		}
		lines = append(lines, Object{
			"id": fmt.Sprintf("il_%s_p%d", in.ID, i), "object": "line_item", "type": "invoiceitem", "amount": p.Amount,
			"amount_excluding_tax": p.Amount, "currency": in.Currency, "description": desc, "discountable": false,
			"discount_amounts": []any{}, "discounts": []any{}, "quantity": 1, "proration": true,
			"invoice_item": fmt.Sprintf("ii_%s_p%d", in.ID, i), "subscription": in.Subscription,
			"subscription_item": "si_" + in.Subscription, "price": price(p.Price, p.UnitAmount, in.Currency),
			"period": Object{"start": p.PeriodStart.Unix(), "end": p.PeriodEnd.Unix()},
		})
		subtotal += p.Amount
	}
	discounts, totalDiscounts := []any{}, []any{}
	if !in.NoPeriodLine {
		amount, desc := in.Amount*qty, fmt.Sprintf("%d × %s", qty, in.Price)
		if in.Trial {
			amount, desc = 0, "Trial period for "+in.Price
		}
		lineDiscounts := []any{}
		if in.Discount > 0 {
			d := Object{"amount": in.Discount, "discount": "di_" + in.ID}
			lineDiscounts, discounts, totalDiscounts = []any{d}, []any{"di_" + in.ID}, []any{d}
		}
		lines = append(lines, Object{
			"id": "il_" + in.ID, "object": "line_item", "type": "subscription", "amount": amount,
			"amount_excluding_tax": amount, "currency": in.Currency, "description": desc, "discountable": true,
			"discount_amounts": lineDiscounts, "discounts": discounts, "quantity": qty, "proration": false,
			"subscription": in.Subscription, "subscription_item": "si_" + in.Subscription,
			"price":  price(in.Price, in.Amount, in.Currency),
			"period": Object{"start": in.PeriodStart.Unix(), "end": in.PeriodEnd.Unix()},
		})
		subtotal += amount
	}
	total := subtotal - in.Discount
	due := max(total, 0)
	paid := in.Paid
	if paid == 0 && status == "paid" {
		paid = due
	}
	var paidAt, next, pi, ch any
	if status == "paid" {
		paidAt = in.PeriodStart.Unix()
	}
	if !in.NextPaymentAttempt.IsZero() {
		next = in.NextPaymentAttempt.Unix()
	}
	if due > 0 {
		pi, ch = "pi_"+in.ID, "ch_"+in.ID // an invoice for nothing is paid without a charge
	}
	return Object{
		"id": in.ID, "object": "invoice", "customer": in.Customer, "subscription": in.Subscription,
		"status": status, "paid": status == "paid", "billing_reason": reason, "currency": in.Currency,
		"amount_due": due, "amount_paid": paid, "amount_remaining": due - paid, "total": total, "subtotal": subtotal,
		"total_excluding_tax": total, "subtotal_excluding_tax": subtotal, "tax": nil, "total_tax_amounts": []any{},
		"discounts": discounts, "total_discount_amounts": totalDiscounts,
		"starting_balance": 0, "ending_balance": 0, "amount_shipping": 0,
		"attempt_count": 1, "next_payment_attempt": next, "payment_intent": pi, "charge": ch,
		"hosted_invoice_url": "https://invoice.stripe.com/i/" + in.ID,
		"status_transitions": Object{"paid_at": paidAt, "finalized_at": in.PeriodStart.Unix()},
		"created":            in.PeriodStart.Unix(), "livemode": false, "metadata": Object{},
		"lines": Object{"object": "list", "has_more": false, "url": "/v1/invoices/" + in.ID + "/lines", "data": lines},
	}
}

// Charge renders a charge of an invoice, refunded by refunded.
func Charge(id, invoice, paymentIntent string, amount, refunded int64, currency string) Object {
	return Object{
		"id": id, "object": "charge", "invoice": invoice, "payment_intent": paymentIntent, "amount": amount,
		"amount_refunded": refunded, "refunded": refunded >= amount, "currency": currency, "paid": true,
		"status": "succeeded", "created": time.Now().Unix(), "livemode": false, "metadata": Object{},
	}
}

// Dispute renders a dispute of a charge.
func Dispute(id, charge, paymentIntent string, amount int64, currency, reason string) Object {
	return Object{
		"id": id, "object": "dispute", "charge": charge, "payment_intent": paymentIntent, "amount": amount,
		"currency": currency, "reason": reason, "status": "needs_response", "created": time.Now().Unix(), "livemode": false,
	}
}

// EarlyFraudWarning renders Radar's warning about a charge.
func EarlyFraudWarning(id, charge, paymentIntent string) Object {
	return Object{
		"id": id, "object": "radar.early_fraud_warning", "charge": charge, "payment_intent": paymentIntent,
		"fraud_type": "made_with_stolen_card", "actionable": true, "created": time.Now().Unix(), "livemode": false,
	}
}
