package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// Stripe reports on an erased customer after the erasure (its retries run for
// days, and the cancellation itself makes events): a subscription update, a paid
// and a failed invoice and a completed Checkout session, each quoting the person.
// They still apply (the payment is a financial record), but nothing of the person
// is written anywhere: no address on the subscription or a new shipment, no
// hosted invoice link, no notification (so nothing is e-mailed), and the stored
// events themselves are scrubbed once applied.
func TestPrivacyEventsAfterTheErasureWriteNothingPersonal(t *testing.T) {
	t.Parallel()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	mailer := &recordingMailer{}
	a := newTestApp(t, appOptions{
		env:  map[string]string{"STRIPE_API_BASE": fake.URL},
		jobs: true,
		options: []app.Option{app.WithStripeTimeouts(300*time.Millisecond, 2*time.Second),
			app.WithMailer(mailer), app.WithJobRetryPolicy(fastRetry{})},
	})
	a.seedAt(fake.URL)
	fake.SetNewSubscriptionStatus("active")
	s := &shop{testApp: a, stripe: fake}

	erin := &person{subject: "late-erin", email: "late.erin@after.example", name: "Lately Erased",
		street: "13 Afterwards Lane", city: "Latecity"}
	s.enrol(erin, 80)
	resp, payload := s.deleteAccount(erin.token, "del-late", true)
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, true, payload["deleted"], resp.Raw)
	personal := []string{erin.email, erin.name, erin.street, erin.city, "invoice.stripe.com"}

	var plan models.Plan
	require.NoError(t, s.db.Take(&plan, "id = ?", hotMonthly).Error)
	now := time.Now().Add(time.Minute).Truncate(time.Second) // newer than anything applied
	quote := func(obj webhooktest.Object) webhooktest.Object {
		obj["customer_email"], obj["customer_name"] = erin.email, erin.name
		obj["customer_address"] = map[string]any{"line1": erin.street, "city": erin.city, "postal_code": "10115", "country": "DE"}
		obj["customer_shipping"] = map[string]any{"name": erin.name,
			"address": map[string]any{"line1": erin.street, "city": erin.city, "postal_code": "10115", "country": "DE"}}
		return obj
	}
	sub := webhooktest.Subscription{ID: erin.stripeSub, Customer: erin.stripeCustomer, Price: *plan.StripePriceID, Status: "canceled",
		Amount: plan.Amount, Currency: strings.ToLower(plan.Currency), PeriodStart: now.Add(-time.Hour), PeriodEnd: now.AddDate(0, 1, 0),
		Metadata: map[string]string{"scoville_customer_id": erin.customerID}}.Object()
	failed := quote(webhooktest.Invoice{ID: "in_late_failed", Subscription: erin.stripeSub, Customer: erin.stripeCustomer,
		Price: *plan.StripePriceID, Status: "open", Amount: plan.Amount, Currency: strings.ToLower(plan.Currency),
		PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0)}.Object())
	session := webhooktest.Object{
		"id": "cs_late", "object": "checkout.session", "mode": "subscription", "status": "complete", "payment_status": "paid",
		"customer": erin.stripeCustomer, "subscription": erin.stripeSub, "client_reference_id": erin.customerID,
		"customer_details": map[string]any{"email": erin.email, "name": erin.name},
		"metadata":         webhooktest.Object{"scoville_customer_id": erin.customerID}, "created": now.Unix(),
		"shipping_details": webhooktest.Object{"name": erin.name, "address": webhooktest.Object{
			"line1": erin.street, "city": erin.city, "postal_code": "10115", "country": "DE"}},
	}
	late := map[string][]byte{
		"evt_late_updated":  webhooktest.Event("evt_late_updated", "customer.subscription.updated", now, sub, webhooktest.Object{"status": "active"}),
		"evt_late_paid":     s.paidInvoice(erin, "evt_late_paid", "in_late_paid"),
		"evt_late_failed":   webhooktest.Event("evt_late_failed", "invoice.payment_failed", now, failed, nil),
		"evt_late_checkout": webhooktest.Event("evt_late_checkout", "checkout.session.completed", now, session, nil),
	}
	for id, body := range late {
		require.Equal(t, 200, s.deliver(body), id)
		require.Equal(t, "PROCESSED", s.awaitEvent(id), "%s: %s", id, s.eventOutcome(id))
	}

	// The financial record of the late payment is kept, under the pseudonym.
	var pay models.Payment
	require.NoError(t, s.db.Take(&pay, "stripe_invoice_id = ?", "in_late_paid").Error)
	require.Equal(t, erin.customerID, pay.CustomerID)
	require.Equal(t, models.PaymentSucceeded, pay.Status)
	require.Nil(t, pay.InvoiceURL, "no hosted invoice link of the erased customer")

	// Nothing personal, read as the application reads it (these columns are sealed).
	var subs []models.Subscription
	require.NoError(t, s.db.Find(&subs, "customer_id = ?", erin.customerID).Error)
	var ships []models.Shipment
	require.NoError(t, s.db.Find(&ships, "customer_id = ?", erin.customerID).Error)
	var pays []models.Payment
	require.NoError(t, s.db.Find(&pays, "customer_id = ?", erin.customerID).Error)
	var events []models.WebhookEvent
	require.NoError(t, s.db.Find(&events, "provider_event_id IN ?", []string{
		"evt_late_updated", "evt_late_paid", "evt_late_failed", "evt_late_checkout"}).Error)
	require.Len(t, events, len(late))
	payloads := []string{}
	for _, e := range events {
		require.Contains(t, string(e.Payload), `"erased":true`, "%s is scrubbed once applied", e.ProviderEventID)
		payloads = append(payloads, string(e.Payload))
	}
	held, err := json.Marshal(map[string]any{"subscriptions": subs, "shipments": ships, "payments": pays, "events": payloads})
	require.NoError(t, err)
	require.NotEmpty(t, subs)
	for _, v := range personal {
		require.NotContains(t, string(held), v)
	}
	require.Zero(t, s.count(`SELECT count(*) FROM notifications WHERE customer_id = ?`, erin.customerID), "no notification of an erased customer")
	s.requireNowhere(personal...)
	for _, text := range mailer.texts() {
		for _, v := range append(personal, "in_late") {
			require.NotContains(t, text, v, "an e-mail about the erased customer")
		}
	}
	s.requireNoLeak(erin.email, erin.name, erin.street)
}
