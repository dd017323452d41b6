package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	stripe "github.com/stripe/stripe-go/v76"
)

// Stripe's "object" values for the types parsed here.
const (
	objectSubscription      = "subscription"
	objectInvoice           = "invoice"
	objectCharge            = "charge"
	objectDispute           = "dispute"
	objectEarlyFraudWarning = "radar.early_fraud_warning"
	objectCheckoutSession   = "checkout.session"
)

// SubscriptionFromJSON parses the subscription a customer.subscription.* event
// carries (event.Data.Raw). Errors wrap ErrInvalidObject.
func SubscriptionFromJSON(raw []byte) (Subscription, error) {
	var in stripe.Subscription
	if err := parseObject(raw, objectSubscription, &in, func() (string, string) { return in.Object, in.ID }); err != nil {
		return Subscription{}, err
	}
	return toSubscription(&in), nil
}

// InvoiceFromJSON parses the invoice an invoice.* event carries
// (event.Data.Raw). Errors wrap ErrInvalidObject.
func InvoiceFromJSON(raw []byte) (Invoice, error) {
	var in stripe.Invoice
	if err := parseObject(raw, objectInvoice, &in, func() (string, string) { return in.Object, in.ID }); err != nil {
		return Invoice{}, err
	}
	return toInvoice(&in), nil
}

// ChargeFromJSON parses the charge a charge.* event carries (event.Data.Raw).
// Errors wrap ErrInvalidObject.
func ChargeFromJSON(raw []byte) (Charge, error) {
	var in stripe.Charge
	if err := parseObject(raw, objectCharge, &in, func() (string, string) { return in.Object, in.ID }); err != nil {
		return Charge{}, err
	}
	return toCharge(&in), nil
}

// DisputeFromJSON parses the dispute a charge.dispute.* event carries
// (event.Data.Raw). Errors wrap ErrInvalidObject.
func DisputeFromJSON(raw []byte) (Dispute, error) {
	var in stripe.Dispute
	if err := parseObject(raw, objectDispute, &in, func() (string, string) { return in.Object, in.ID }); err != nil {
		return Dispute{}, err
	}
	out := Dispute{
		ID:       in.ID,
		Reason:   string(in.Reason),
		Status:   string(in.Status),
		Currency: upper(in.Currency),
		Amount:   in.Amount,
		Created:  unixTime(in.Created),
	}
	if in.Charge != nil {
		out.ChargeID = in.Charge.ID
	}
	if in.PaymentIntent != nil {
		out.PaymentIntentID = in.PaymentIntent.ID
	}
	return out, nil
}

// EarlyFraudWarningFromJSON parses the warning a radar.early_fraud_warning.*
// event carries (event.Data.Raw). Errors wrap ErrInvalidObject.
func EarlyFraudWarningFromJSON(raw []byte) (EarlyFraudWarning, error) {
	var in stripe.RadarEarlyFraudWarning
	if err := parseObject(raw, objectEarlyFraudWarning, &in, func() (string, string) { return in.Object, in.ID }); err != nil {
		return EarlyFraudWarning{}, err
	}
	out := EarlyFraudWarning{
		ID:         in.ID,
		FraudType:  string(in.FraudType),
		Actionable: in.Actionable,
		Created:    unixTime(in.Created),
	}
	if in.Charge != nil {
		out.ChargeID = in.Charge.ID
	}
	if in.PaymentIntent != nil {
		out.PaymentIntentID = in.PaymentIntent.ID
	}
	return out, nil
}

// CheckoutSessionFromJSON parses the session a checkout.session.* event
// carries (event.Data.Raw). Errors wrap ErrInvalidObject.
func CheckoutSessionFromJSON(raw []byte) (CompletedCheckout, error) {
	var in stripe.CheckoutSession
	if err := parseObject(raw, objectCheckoutSession, &in, func() (string, string) { return in.Object, in.ID }); err != nil {
		return CompletedCheckout{}, err
	}
	out := CompletedCheckout{
		ID:                in.ID,
		Mode:              string(in.Mode),
		Status:            string(in.Status),
		PaymentStatus:     string(in.PaymentStatus),
		ClientReferenceID: in.ClientReferenceID,
		Metadata:          in.Metadata,
		Shipping:          toShipping(in.ShippingDetails),
		Created:           unixTime(in.Created),
	}
	if in.Customer != nil {
		out.CustomerID = in.Customer.ID
	}
	if in.Subscription != nil {
		out.SubscriptionID = in.Subscription.ID
	}
	return out, nil
}

// parseObject unmarshals raw into v (a stripe-go struct, which takes expandable
// references as an id string or an object) and checks what head reports.
// Messages never quote the payload: it holds names and addresses.
func parseObject(raw []byte, want string, v any, head func() (object, id string)) error {
	fail := func(why string) error {
		return fmt.Errorf("gateway: %w: want %s: %s", ErrInvalidObject, want, why)
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return fail("not a JSON object")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fail(jsonProblem(err))
	}
	object, id := head()
	switch {
	case object != want:
		return fail("object is " + objectName(object))
	case strings.TrimSpace(id) == "":
		return fail("empty id")
	}
	return nil
}

// jsonProblem says where decoding failed; encoding/json's own messages can
// quote values.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("field %s has the wrong JSON type", te.Field)
	}
	return "malformed JSON"
}

// objectName quotes an "object" value only when it looks like one of Stripe's.
func objectName(object string) string {
	if object == "" {
		return "missing"
	}
	if len(object) > 40 || strings.Trim(object, "abcdefghijklmnopqrstuvwxyz_.") != "" {
		return "not a Stripe object type"
	}
	return fmt.Sprintf("%q", object)
}

func toInvoice(in *stripe.Invoice) Invoice {
	out := Invoice{
		ID:                 in.ID,
		Status:             string(in.Status),
		BillingReason:      string(in.BillingReason),
		Currency:           upper(in.Currency),
		AmountDue:          in.AmountDue,
		AmountPaid:         in.AmountPaid,
		AmountRemaining:    in.AmountRemaining,
		Total:              in.Total,
		AmountShipping:     in.AmountShipping,
		StartingBalance:    in.StartingBalance,
		HostedInvoiceURL:   in.HostedInvoiceURL,
		NextPaymentAttempt: unixTime(in.NextPaymentAttempt),
		AttemptCount:       in.AttemptCount,
		CustomerShipping:   toShipping(in.CustomerShipping),
		Metadata:           in.Metadata,
		Created:            unixTime(in.Created),
	}
	if in.Customer != nil {
		out.CustomerID = in.Customer.ID
	}
	if in.Subscription != nil {
		out.SubscriptionID = in.Subscription.ID
	}
	if in.PaymentIntent != nil {
		out.PaymentIntentID = in.PaymentIntent.ID
	}
	if in.Charge != nil {
		out.ChargeID = in.Charge.ID
	}
	if in.StatusTransitions != nil {
		out.PaidAt = unixTime(in.StatusTransitions.PaidAt)
	}
	for _, d := range in.TotalDiscountAmounts {
		if d != nil {
			out.Discount += d.Amount
		}
	}
	for _, t := range in.TotalTaxAmounts {
		if t != nil && !t.Inclusive {
			out.ExclusiveTax += t.Amount
		}
	}
	if in.Lines != nil {
		out.MoreLines = in.Lines.HasMore
		for _, l := range in.Lines.Data {
			if l != nil {
				out.Lines = append(out.Lines, toInvoiceLine(l))
			}
		}
	}
	return out
}

func toInvoiceLine(in *stripe.InvoiceLineItem) InvoiceLine {
	out := InvoiceLine{
		ID:        in.ID,
		Type:      string(in.Type),
		Amount:    in.Amount,
		Quantity:  in.Quantity,
		Currency:  upper(in.Currency),
		Proration: in.Proration,
	}
	for _, d := range in.DiscountAmounts {
		if d != nil {
			out.Discount += d.Amount
		}
	}
	if in.Price != nil {
		out.PriceID = in.Price.ID
		out.UnitAmount = in.Price.UnitAmount
	}
	if in.SubscriptionItem != nil {
		out.SubscriptionItemID = in.SubscriptionItem.ID
	}
	if in.Period != nil {
		out.PeriodStart = unixTime(in.Period.Start)
		out.PeriodEnd = unixTime(in.Period.End)
	}
	return out
}

func toCharge(in *stripe.Charge) Charge {
	out := Charge{
		ID:             in.ID,
		Currency:       upper(in.Currency),
		Amount:         in.Amount,
		AmountRefunded: in.AmountRefunded,
		Refunded:       in.Refunded,
		Created:        unixTime(in.Created),
	}
	if in.Invoice != nil {
		out.InvoiceID = in.Invoice.ID
	}
	if in.PaymentIntent != nil {
		out.PaymentIntentID = in.PaymentIntent.ID
	}
	return out
}

// toShipping gives nil when Stripe sent no shipping details, or only empty ones.
func toShipping(in *stripe.ShippingDetails) *Address {
	if in == nil {
		return nil
	}
	out := Address{Name: in.Name}
	if a := in.Address; a != nil {
		out.Line1, out.Line2, out.City = a.Line1, a.Line2, a.City
		out.PostalCode, out.State = a.PostalCode, a.State
		out.Country = strings.ToUpper(a.Country)
	}
	if out == (Address{}) {
		return nil
	}
	return &out
}

func upper(c stripe.Currency) string { return strings.ToUpper(string(c)) }
