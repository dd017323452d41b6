package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	require.NoError(a.t, db.Raw(`INSERT INTO customers (issuer, subject, email, name, stripe_customer_id)
		VALUES ('https://id.test', ?, 'buyer@example.com', 'Buyer', ?) RETURNING id`, "sub-"+stripeCustomer, stripeCustomer).Scan(&f.customerID).Error)
	if stripeSub != "" {
		require.NoError(a.t, db.Raw(`INSERT INTO subscriptions (id, customer_id, plan_id, status, stripe_subscription_id, shipping_address)
			VALUES (gen_random_uuid(), ?, ?, 'ACTIVE', ?, '{"name":"Buyer","line1":"1 Pepper St","city":"Austin","postalCode":"78701","country":"US"}')
			RETURNING id`, f.customerID, f.planID, stripeSub).Scan(&f.subscriptionID).Error)
	}
	return f
}

// deliver posts an event signed now with the test secret.
func (a *testApp) deliver(body []byte) int {
	a.t.Helper()
	status, _ := a.postWebhook(body, webhooktest.Sign(body, testWebhookSecret, time.Now()))
	return status
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
	var outcome string
	require.NoError(a.t, a.db.Raw(`SELECT coalesce(outcome, '') FROM webhook_events WHERE provider_event_id = ?`, providerEventID).Scan(&outcome).Error)
	return outcome
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
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_del", "customer.subscription.deleted", t0.Add(2*time.Minute), canceled.Object(), nil)))
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_del"))

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
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_same_1", "customer.subscription.updated", t0.Add(3*time.Minute), past.Object(), nil)))
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_same_1"))
	again := sub
	again.Status = "active"
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_same_2", "customer.subscription.updated", t0.Add(3*time.Minute), again.Object(), nil)))
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_same_2"))
	require.NoError(t, a.db.Raw(`SELECT status FROM subscriptions WHERE id = ?`, f.subscriptionID).Scan(&status).Error)
	require.Equal(t, "ACTIVE", status)
}
