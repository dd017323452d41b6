package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// shopFixture is one customer of ours with one subscription known to Stripe.
type shopFixture struct {
	customerID, subscriptionID, planID string
	stripeCustomer, stripeSub, price   string
	amount                             int64
}

// fixture writes a product, a plan sold at price, a customer and an ACTIVE
// subscription, as the API would have left them.
func (a *testApp) fixture(price, stripeCustomer, stripeSub string) shopFixture {
	a.t.Helper()
	f := shopFixture{stripeCustomer: stripeCustomer, stripeSub: stripeSub, price: price, amount: 2400}
	db := a.db
	var productID string
	require.NoError(a.t, db.Raw(`INSERT INTO products (name, description) VALUES ('Hot box', 'Three hot sauces') RETURNING id`).Scan(&productID).Error)
	require.NoError(a.t, db.Raw(`INSERT INTO plans (product_id, billing_interval, amount, currency, stripe_price_id)
		VALUES (?, 'MONTH', ?, 'USD', ?) RETURNING id`, productID, f.amount, price).Scan(&f.planID).Error)
	// Customers and subscriptions go through their models: e-mail, name and address are sealed.
	name := "Buyer"
	c := models.Customer{Issuer: "https://id.test", Subject: "sub-" + stripeCustomer, Email: "buyer@example.com", Name: &name,
		StripeCustomerID: &stripeCustomer}
	require.NoError(a.t, db.Create(&c).Error)
	f.customerID = c.ID
	if stripeSub != "" {
		sub := models.Subscription{ID: uuid.NewString(), CustomerID: f.customerID, PlanID: f.planID, Status: models.SubscriptionActive,
			StripeSubscriptionID: &stripeSub,
			ShippingAddress:      models.Address{Name: "Buyer", Line1: "1 Pepper St", City: "Austin", PostalCode: "78701", Country: "US"}}
		require.NoError(a.t, db.Create(&sub).Error)
		f.subscriptionID = sub.ID
	}
	return f
}

// deliver posts an event signed now with the test secret.
func (a *testApp) deliver(body []byte) int {
	a.t.Helper()
	status, _ := a.postWebhook(body, webhooktest.Sign(body, testWebhookSecret, time.Now()))
	return status
}

// applied delivers the signed event id (webhooktest.Event's arguments), which must
// be accepted, and waits until a worker has applied it (PROCESSED).
func (a *testApp) applied(id, typ string, created time.Time, obj, previous webhooktest.Object) {
	a.t.Helper()
	require.Equal(a.t, 200, a.deliver(webhooktest.Event(id, typ, created, obj, previous)))
	require.Equal(a.t, "PROCESSED", a.awaitEvent(id))
}

func (a *testApp) postWebhook(body []byte, signature string) (int, string) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+"/webhooks/stripe", bytes.NewReader(body))
	require.NoError(a.t, err)
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// count runs a count(*) query.
func (a *testApp) count(query string, args ...any) int64 {
	a.t.Helper()
	var n int64
	require.NoError(a.t, a.db.Raw(query, args...).Scan(&n).Error)
	return n
}

// awaitEvent waits until the stored event has left RECEIVED and returns its status.
func (a *testApp) awaitEvent(providerEventID string) string {
	a.t.Helper()
	var status string
	require.Eventually(a.t, func() bool {
		status = ""
		_ = a.db.Raw(`SELECT status FROM webhook_events WHERE provider_event_id = ?`, providerEventID).Scan(&status).Error
		return status != "" && status != "RECEIVED"
	}, 20*time.Second, 20*time.Millisecond, "event %s was not processed; jobs:\n%s\nlogs:\n%s", providerEventID, a.dumpJobs(), a.logs.String())
	return status
}

func (a *testApp) dumpJobs() string {
	rows, err := a.db.Raw(`SELECT kind, queue, state, attempt, coalesce(errors::text, '') FROM river_job`).Rows()
	require.NoError(a.t, err)
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var kind, queue, state, errs string
		var attempt int
		require.NoError(a.t, rows.Scan(&kind, &queue, &state, &attempt, &errs))
		fmt.Fprintf(&b, "%s %s %s %d %s\n", kind, queue, state, attempt, errs)
	}
	return b.String()
}

func (a *testApp) eventOutcome(providerEventID string) string {
	return a.text(`SELECT coalesce(outcome, '') FROM webhook_events WHERE provider_event_id = ?`, providerEventID)
}

func paidInvoice(f shopFixture, id string, start time.Time) webhooktest.Invoice {
	return webhooktest.Invoice{
		ID: id, Subscription: f.stripeSub, Customer: f.stripeCustomer, Price: f.price, Amount: f.amount,
		Currency: "usd", PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0),
	}
}

func TestWebhookSignatureMatrix(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	now := time.Now()
	body := webhooktest.Event("evt_sig", "invoice.paid", now, webhooktest.Object{"id": "in_sig", "object": "invoice"}, nil)
	good := webhooktest.Sign(body, testWebhookSecret, now)
	validSig := strings.SplitN(good, ",", 2)[1] // v1=...
	otherVersion := bytes.Replace(body, []byte(`"api_version":"2023-10-16"`), []byte(`"api_version":"2024-06-20"`), 1)
	require.NotEqual(t, body, otherVersion)
	notJSON := []byte(`{"id":"evt_x",`)

	tests := []struct {
		name   string
		body   []byte
		header string
		want   int
		reason string
	}{
		{"missing header", body, "", 400, "missing_signature"},
		{"malformed header", body, "garbage", 400, "malformed_signature"},
		{"v0 only", body, fmt.Sprintf("t=%d,v0=%s", now.Unix(), strings.TrimPrefix(validSig, "v1=")), 400, "bad_signature"},
		{"tampered body", bytes.Replace(body, []byte("in_sig"), []byte("in_sjg"), 1), good, 400, "bad_signature"},
		{"wrong secret", body, webhooktest.Sign(body, "whsec_someone_else", now), 400, "bad_signature"},
		{"stale timestamp", body, webhooktest.Sign(body, testWebhookSecret, now.Add(-301*time.Second)), 400, "stale_timestamp"},
		{"other API version", otherVersion, webhooktest.Sign(otherVersion, testWebhookSecret, now), 400, "api_version"},
		{"signed but not an event", notJSON, webhooktest.Sign(notJSON, testWebhookSecret, now), 400, "malformed"},
		{"too large", bytes.Repeat([]byte("x"), 1<<20+1), good, 413, "too_large"},
	}
	for _, tt := range tests {
		status, resp := a.postWebhook(tt.body, tt.header)
		require.Equal(t, tt.want, status, tt.name)
		require.Contains(t, resp, tt.reason, tt.name)
	}
	require.Zero(t, a.count(`SELECT count(*) FROM webhook_events`), "a refused delivery stores nothing")
	require.Zero(t, a.count(`SELECT count(*) FROM river_job`), "a refused delivery enqueues nothing")
	require.NotContains(t, a.logs.String(), "in_sig", "the unverified body is never logged")
	require.Contains(t, a.logs.String(), `"suspicious":true`)

	// During a secret roll Stripe sends two v1 values; one matching is enough.
	rolled := fmt.Sprintf("t=%d,v1=%x,%s", now.Unix(), bytes.Repeat([]byte{0xab}, 32), validSig)
	status, _ := a.postWebhook(body, rolled)
	require.Equal(t, http.StatusOK, status)
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM webhook_events WHERE provider_event_id = 'evt_sig'`))

	_, metrics := a.get("/metrics")
	require.Contains(t, metrics, `scoville_webhook_events_rejected_total{reason="bad_signature"} 3`)
	require.Contains(t, metrics, `scoville_webhook_events_rejected_total{reason="api_version"} 1`)
}

func TestWebhookUnsetSecretAcceptsNothing(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: map[string]string{"STRIPE_WEBHOOK_SECRET": ""}})
	body := webhooktest.Event("evt_nosecret", "invoice.paid", time.Now(), webhooktest.Object{"id": "in_1", "object": "invoice"}, nil)
	status, _ := a.postWebhook(body, webhooktest.Sign(body, "", time.Now()))
	require.Equal(t, http.StatusServiceUnavailable, status, "an empty key must not make an empty-key HMAC valid")
	require.Zero(t, a.count(`SELECT count(*) FROM webhook_events`))
}

func TestWebhookSameEventTwentyTimesConcurrently(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true})
	f := a.fixture("price_dup", "cus_dup", "sub_dup")
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	body := webhooktest.Event("evt_dup", "invoice.paid", start, paidInvoice(f, "in_dup", start).Object(), nil)

	var wg sync.WaitGroup
	statuses := make([]int, 20)
	for i := range statuses {
		wg.Go(func() { statuses[i] = a.deliver(body) })
	}
	wg.Wait()
	for i, s := range statuses {
		require.Equal(t, http.StatusOK, s, "delivery %d", i)
	}
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_dup"))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM webhook_events`))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id = 'in_dup' AND status = 'SUCCEEDED' AND amount = 2400`))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM shipments WHERE stripe_invoice_id = 'in_dup'`))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM notifications WHERE kind = 'payment_succeeded'`))
	_, metrics := a.get("/metrics")
	require.Contains(t, metrics, `scoville_webhook_events_received_total{outcome="duplicate",type="invoice.paid"} 19`)
	require.Contains(t, metrics, `scoville_webhook_events_received_total{outcome="stored",type="invoice.paid"} 1`)
}

func TestWebhookOlderEventNeverRollsBack(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true})
	f := a.fixture("price_ooo", "cus_ooo", "sub_ooo")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	sub := webhooktest.Subscription{ID: f.stripeSub, Customer: f.stripeCustomer, Price: f.price, Amount: f.amount,
		Currency: "usd", PeriodStart: t0, PeriodEnd: t0.AddDate(0, 1, 0)}

	canceled := sub
	canceled.Status = "canceled"
	a.applied("evt_del", "customer.subscription.deleted", t0.Add(2*time.Minute), canceled.Object(), nil)

	active := sub
	active.Status = "active"
	active.CancelAtPeriodEnd = true
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_upd_old", "customer.subscription.updated", t0.Add(time.Minute), active.Object(),
		webhooktest.Object{"cancel_at_period_end": false})))
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_upd_old"))
	require.Contains(t, a.eventOutcome("evt_upd_old"), "older")

	var status string
	var cancelAtEnd bool
	require.NoError(t, a.db.Raw(`SELECT status, cancel_at_period_end FROM subscriptions WHERE id = ?`, f.subscriptionID).Row().Scan(&status, &cancelAtEnd))
	require.Equal(t, "CANCELED", status)
	require.False(t, cancelAtEnd, "nothing of the older event was applied")
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM notifications WHERE kind = 'subscription_canceled'`))
	require.Zero(t, a.count(`SELECT count(*) FROM notifications WHERE kind = 'subscription_changed'`), "a stale event tells no one anything")

	// Same second: arrival order decides, so the later arrival applies.
	past := sub
	past.Status = "past_due"
	a.applied("evt_same_1", "customer.subscription.updated", t0.Add(3*time.Minute), past.Object(), nil)
	again := sub
	again.Status = "active"
	a.applied("evt_same_2", "customer.subscription.updated", t0.Add(3*time.Minute), again.Object(), nil)
	require.NoError(t, a.db.Raw(`SELECT status FROM subscriptions WHERE id = ?`, f.subscriptionID).Scan(&status).Error)
	require.Equal(t, "ACTIVE", status)
}

// recordingMailer keeps what would have been e-mailed.
type recordingMailer struct {
	mu   sync.Mutex
	sent []notifications.Message
}

func (m *recordingMailer) Send(_ context.Context, msg notifications.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

func (m *recordingMailer) texts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, s := range m.sent {
		out = append(out, s.Subject+": "+s.Text)
	}
	return out
}

func (m *recordingMailer) find(t *testing.T, needle string) notifications.Message {
	t.Helper()
	var found notifications.Message
	require.Eventually(t, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, s := range m.sent {
			if strings.Contains(s.Text, needle) || strings.Contains(s.Subject, needle) {
				found = s
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "no message mentions %q; sent: %v", needle, m.texts())
	return found
}

// fastRetry retries a failed job at once, so tests see every attempt.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(20 * time.Millisecond) }

func TestWebhookPaymentLifecycle(t *testing.T) {
	t.Parallel()
	mailer := &recordingMailer{}
	a := newTestApp(t, appOptions{jobs: true, options: []app.Option{app.WithMailer(mailer)}})
	f := a.fixture("price_life", "cus_life", "sub_life")
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Second)

	// A renewal fails: the payment is FAILED, the subscription PAST_DUE, and the
	// customer is told where to pay and when Stripe tries again (SUB-4).
	failed := paidInvoice(f, "in_life", t0)
	failed.Status, failed.Paid, failed.NextPaymentAttempt = "open", 0, t0.Add(72*time.Hour)
	a.applied("evt_fail", "invoice.payment_failed", t0, failed.Object(), nil)
	var payStatus, subStatus string
	require.NoError(t, a.db.Raw(`SELECT status FROM payments WHERE stripe_invoice_id = 'in_life'`).Scan(&payStatus).Error)
	require.Equal(t, "FAILED", payStatus)
	require.NoError(t, a.db.Raw(`SELECT status FROM subscriptions WHERE id = ?`, f.subscriptionID).Scan(&subStatus).Error)
	require.Equal(t, "PAST_DUE", subStatus)
	msg := mailer.find(t, "https://invoice.stripe.com/i/in_life")
	require.Equal(t, "buyer@example.com", msg.To)
	require.Zero(t, a.count(`SELECT count(*) FROM shipments`), "an unpaid invoice ships nothing")

	// Stripe's retry succeeds: SUCCEEDED, one shipment for the period, a receipt.
	a.applied("evt_paid", "invoice.paid", t0.Add(time.Hour), paidInvoice(f, "in_life", t0).Object(), nil)
	require.NoError(t, a.db.Raw(`SELECT status FROM payments WHERE stripe_invoice_id = 'in_life'`).Scan(&payStatus).Error)
	require.Equal(t, "SUCCEEDED", payStatus)
	var ship models.Shipment // the address is sealed: read through the model
	require.NoError(t, a.db.Take(&ship, "stripe_invoice_id = ?", "in_life").Error)
	require.True(t, ship.PeriodStart.Equal(t0))
	require.Equal(t, "1 Pepper St", ship.Address.Line1, "the box goes to the address the subscription had when paid")
	mailer.find(t, "Payment received: 24.00 USD")

	// A failure reported late (older than the payment) changes nothing.
	a.applied("evt_fail_late", "invoice.payment_failed", t0.Add(-time.Minute), failed.Object(), nil)
	require.NoError(t, a.db.Raw(`SELECT status FROM payments WHERE stripe_invoice_id = 'in_life'`).Scan(&payStatus).Error)
	require.Equal(t, "SUCCEEDED", payStatus)

	// Partial refund, then the rest: the status follows and each is an alert.
	charge := func(refunded int64) []byte {
		return webhooktest.Event(fmt.Sprintf("evt_refund_%d", refunded), "charge.refunded", t0.Add(2*time.Hour),
			webhooktest.Charge("ch_in_life", "in_life", "pi_in_life", 2400, refunded, "usd"), nil)
	}
	require.Equal(t, 200, a.deliver(charge(1000)))
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_refund_1000"))
	var refunded int64
	require.NoError(t, a.db.Raw(`SELECT status, amount_refunded FROM payments WHERE stripe_invoice_id = 'in_life'`).Row().Scan(&payStatus, &refunded))
	require.Equal(t, "PARTIALLY_REFUNDED", payStatus)
	require.EqualValues(t, 1000, refunded)
	require.Equal(t, 200, a.deliver(charge(2400)))
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_refund_2400"))
	require.NoError(t, a.db.Raw(`SELECT status, amount_refunded FROM payments WHERE stripe_invoice_id = 'in_life'`).Row().Scan(&payStatus, &refunded))
	require.Equal(t, "REFUNDED", payStatus)
	require.EqualValues(t, 2400, refunded)

	// A dispute and a fraud warning are recorded on the payment and alerted.
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_dispute", "charge.dispute.created", t0.Add(3*time.Hour),
		webhooktest.Dispute("dp_1", "ch_in_life", "pi_in_life", 2400, "usd", "fraudulent"), nil)))
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_efw", "radar.early_fraud_warning.created", t0.Add(3*time.Hour),
		webhooktest.EarlyFraudWarning("issfr_1", "ch_in_life", "pi_in_life"), nil)))
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_dispute"))
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_efw"))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM payments WHERE dispute_reason = 'fraudulent' AND disputed_at IS NOT NULL AND fraud_warning_at IS NOT NULL`))

	// An event whose object is not what its type says can never apply: FAILED at once.
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_bad", "invoice.paid", t0, webhooktest.Object{"id": "ch_1", "object": "charge"}, nil)))
	require.Equal(t, "FAILED", a.awaitEvent("evt_bad"))
	require.EqualValues(t, 1, a.count(`SELECT attempts FROM webhook_events WHERE provider_event_id = 'evt_bad'`))

	// Anything else is stored and IGNORED.
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_other", "customer.created", t0, webhooktest.Object{"id": "cus_x", "object": "customer"}, nil)))
	require.Equal(t, "IGNORED", a.awaitEvent("evt_other"))

	// A job counts its event after the commit that awaitEvent saw: the counters
	// catch up a moment later.
	var missing []string
	require.Eventually(t, func() bool {
		_, metrics := a.get("/metrics")
		missing = missing[:0]
		for _, want := range []string{
			`scoville_payment_alerts_total{kind="refund"} 2`,
			`scoville_payment_alerts_total{kind="dispute"} 1`,
			`scoville_payment_alerts_total{kind="fraud_warning"} 1`,
			`scoville_payments_total{outcome="failed"} 1`, // the late report changed nothing
			`scoville_payments_total{outcome="succeeded"} 1`,
			`scoville_webhook_events_processed_total{outcome="ignored",type="other"} 1`,
			`scoville_webhook_processing_seconds_count{type="invoice.paid"} 1`,
			`scoville_webhook_queue_depth 0`,
		} {
			if !strings.Contains(metrics, want) {
				missing = append(missing, want)
			}
		}
		return len(missing) == 0
	}, 10*time.Second, 20*time.Millisecond, "metrics missing: %v", &missing)
	logs := a.logs.String()
	require.Contains(t, logs, `"alert":"dispute"`)
	require.Contains(t, logs, `"alert":"fraud_warning"`)
	require.NotContains(t, logs, "buyer@example.com", "no e-mail address in any log line")

	// The owner sees the payment and the shipment through the API.
	owner := a.token("sub-cus_life")
	a.issuerSubject(f.customerID, "sub-cus_life")
	resp := a.gql(owner, `query($id: ID!) { subscription(id: $id) { status shipments { edges { node { status periodStart address { line1 } } } }
		payments { edges { node { status amount { amount currency } } } } } }`, map[string]any{"id": f.subscriptionID})
	require.Empty(t, resp.Errors, resp.Raw)
	require.Contains(t, resp.Raw, `"status":"PENDING"`)
	require.Contains(t, resp.Raw, `"status":"REFUNDED"`)
}

// issuerSubject points a fixture customer at the test issuer's subject, so that
// tokens minted for sub are that customer.
func (a *testApp) issuerSubject(customerID, sub string) {
	a.t.Helper()
	require.NoError(a.t, a.db.Exec(`UPDATE customers SET issuer = ?, subject = ? WHERE id = ?`, a.issuer.IssuerURL(), sub, customerID).Error)
}

func TestWebhookAmountMismatchIsRecordedNotShipped(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true})
	f := a.fixture("price_mm", "cus_mm", "sub_mm")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	inv := paidInvoice(f, "in_mm", t0)
	inv.Amount = 100 // not what the plan costs
	a.applied("evt_mm", "invoice.paid", t0, inv.Object(), nil)
	require.Contains(t, a.eventOutcome("evt_mm"), "mismatch")
	var mismatch string
	require.NoError(t, a.db.Raw(`SELECT mismatch FROM payments WHERE stripe_invoice_id = 'in_mm'`).Scan(&mismatch).Error)
	require.Contains(t, mismatch, "line amount 100 instead of 2400")
	require.Zero(t, a.count(`SELECT count(*) FROM shipments`), "a mismatched payment ships nothing until support checks it")
	_, metrics := a.get("/metrics")
	require.Contains(t, metrics, `scoville_payment_alerts_total{kind="amount_mismatch"} 1`)

	other := paidInvoice(f, "in_mm2", t0)
	other.Price = "price_not_ours"
	a.applied("evt_mm2", "invoice.paid", t0, other.Object(), nil)
	require.NoError(t, a.db.Raw(`SELECT mismatch FROM payments WHERE stripe_invoice_id = 'in_mm2'`).Scan(&mismatch).Error)
	require.Contains(t, mismatch, "not one of our plans")
}

// stripe-mock's fixture subscription: its customer and its item's price.
const (
	mockCustomer = "cus_MvgVWT91tuiCHq"
	mockPrice    = "price_1MBp8NCMYaPNqkJjPu5CGHKq"
)

func TestWebhookUnknownObjectIsReadFromStripe(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true})
	f := a.fixture(mockPrice, mockCustomer, "")
	f.stripeSub = "sub_unknown_yet"
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)

	// invoice.paid overtakes everything we know of its subscription.
	a.applied("evt_unknown", "invoice.paid", t0, paidInvoice(f, "in_unknown", t0).Object(), nil)
	var customerID, planID, status string
	require.NoError(t, a.db.Raw(`SELECT customer_id, plan_id, status FROM subscriptions WHERE stripe_subscription_id = 'sub_unknown_yet'`).
		Row().Scan(&customerID, &planID, &status))
	require.Equal(t, f.customerID, customerID)
	require.Equal(t, f.planID, planID)
	require.Equal(t, "ACTIVE", status, "as stripe-mock reports it")
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id = 'in_unknown'`))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM shipments WHERE stripe_invoice_id = 'in_unknown'`))
}

func TestWebhookCheckoutCompletedLinksTheSubscription(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true})
	f := a.fixture(mockPrice, "cus_someone_else", "")
	require.NoError(t, a.db.Exec(`UPDATE customers SET stripe_customer_id = NULL WHERE id = ?`, f.customerID).Error)
	session := webhooktest.Object{
		"id": "cs_test_1", "object": "checkout.session", "mode": "subscription", "status": "complete", "payment_status": "paid",
		"customer": mockCustomer, "subscription": "sub_from_checkout", "client_reference_id": f.customerID,
		"metadata": webhooktest.Object{"scoville_customer_id": f.customerID}, "created": time.Now().Unix(),
		"shipping_details": webhooktest.Object{"name": "Buyer", "address": webhooktest.Object{
			"line1": "9 Habanero Rd", "city": "Portland", "postal_code": "97201", "state": "OR", "country": "US"}},
	}
	a.applied("evt_cs", "checkout.session.completed", time.Now(), session, nil)
	var linked models.Subscription // the address is sealed: read through the model
	require.NoError(t, a.db.Take(&linked, "stripe_subscription_id = ?", "sub_from_checkout").Error)
	require.Equal(t, f.customerID, linked.CustomerID)
	require.Equal(t, "9 Habanero Rd", linked.ShippingAddress.Line1)
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM customers WHERE id = ? AND stripe_customer_id = ?`, f.customerID, mockCustomer))

	// The same session again (a new event id for it) changes nothing.
	a.applied("evt_cs_again", "checkout.session.completed", time.Now(), session, nil)
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM subscriptions`))
}

func TestWebhookDatabaseDownAnswers503ThenRedeliveryAppliesOnce(t *testing.T) {
	t.Parallel()
	proxy, viaProxy := dbtest.NewProxy(t, dbtest.NewURL(t, ""))
	a := newTestApp(t, appOptions{dbURL: viaProxy, jobs: true})
	f := a.fixture("price_down", "cus_down", "sub_down")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	body := webhooktest.Event("evt_down", "invoice.paid", t0, paidInvoice(f, "in_down", t0).Object(), nil)

	proxy.Stop()
	status, resp := a.postWebhook(body, webhooktest.Sign(body, testWebhookSecret, time.Now()))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.NotContains(t, resp, "127.0.0.1")
	proxy.Start(t)

	require.Eventually(t, func() bool { return a.deliver(body) == http.StatusOK }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, 200, a.deliver(body))
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_down"))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM payments`))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM shipments`))
}

func TestWebhookFailingJobRetriesThenFails(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{
		jobs:    true,
		env:     map[string]string{"STRIPE_API_BASE": "http://127.0.0.1:1", "JOB_MAX_ATTEMPTS": "3"}, // Stripe unreachable
		options: []app.Option{app.WithJobRetryPolicy(fastRetry{}), app.WithStripeTimeouts(100*time.Millisecond, 200*time.Millisecond)},
	})
	f := a.fixture("price_fail", "cus_fail", "")
	f.stripeSub = "sub_must_be_read"
	t0 := time.Now().Truncate(time.Second)
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_fails", "invoice.paid", t0, paidInvoice(f, "in_fails", t0).Object(), nil)))
	require.Equal(t, "FAILED", a.awaitEvent("evt_fails"))
	var attempts int
	var lastError string
	require.NoError(t, a.db.Raw(`SELECT attempts, last_error FROM webhook_events WHERE provider_event_id = 'evt_fails'`).Row().Scan(&attempts, &lastError))
	require.Equal(t, 3, attempts)
	require.Contains(t, lastError, "read subscription from Stripe")
	require.Zero(t, a.count(`SELECT count(*) FROM payments`))
	require.Eventually(t, func() bool {
		logs := a.logs.String()
		return strings.Contains(logs, `"msg":"webhook attempt failed"`) && strings.Contains(logs, `"final":true`)
	}, 5*time.Second, 10*time.Millisecond, "the final failure is logged")

	// Support sees it with its error; a customer may not look.
	q := `{ webhookEvents(status: FAILED) { edges { node { providerEventId type status attempts lastError } } } }`
	resp := a.gql(a.token("staff", "support"), q, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	require.Contains(t, resp.Raw, `"providerEventId":"evt_fails"`)
	require.Contains(t, resp.Raw, `"attempts":3`)
	resp = a.gql(a.token("shopper"), q, nil)
	require.Equal(t, []string{"FORBIDDEN"}, resp.codes())
	resp = a.gql("", q, nil)
	require.Equal(t, []string{"UNAUTHENTICATED"}, resp.codes())

	_, metrics := a.get("/metrics")
	require.Contains(t, metrics, `scoville_webhook_events_processed_total{outcome="retry",type="invoice.paid"} 2`)
	require.Contains(t, metrics, `scoville_webhook_events_processed_total{outcome="failed",type="invoice.paid"} 1`)
}
