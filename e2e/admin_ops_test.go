package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

const replayMutation = `mutation($input: ReplayWebhookEventInput!) {
	replayWebhookEvent(input: $input) { event { id status } userErrors { field code message } } }`

const resyncMutation = `mutation($input: ResyncSubscriptionInput!) {
	resyncSubscription(input: $input) { subscription { id status } userErrors { field code message } } }`

// payload returns the named mutation's payload and its user error codes.
func payload(t *testing.T, resp gqlResponse, field string) (map[string]any, []string) {
	t.Helper()
	require.Empty(t, resp.Errors, resp.Raw)
	p, ok := resp.Data[field].(map[string]any)
	require.True(t, ok, resp.Raw)
	return p, userErrorCodes(p)
}

// eventID is the inbox id of a stored Stripe event.
func (a *testApp) eventID(providerEventID string) string {
	a.t.Helper()
	id := a.text(`SELECT id FROM webhook_events WHERE provider_event_id = ?`, providerEventID)
	require.NotEmpty(a.t, id)
	return id
}

// auditEntry returns the before and after of the one entry of action on target.
func (a *testApp) auditEntry(action, targetID string) (reason, before, after string) {
	a.t.Helper()
	require.EqualValues(a.t, 1, a.count(`SELECT count(*) FROM audit_log WHERE action = ? AND target_id = ?`, action, targetID))
	require.NoError(a.t, a.db.Raw(`SELECT reason, coalesce(before::text, ''), coalesce(after::text, '') FROM audit_log
		WHERE action = ? AND target_id = ?`, action, targetID).Row().Scan(&reason, &before, &after))
	return reason, before, after
}

// flakyApplier fails every Apply while failing is set, as a bug or an outage would.
type flakyApplier struct {
	webhooks.Applier
	failing *atomic.Bool
}

func (f flakyApplier) Apply(ctx context.Context, tx *gorm.DB, ev subscriptions.Event, p *subscriptions.Prepared) (subscriptions.Effect, error) {
	if f.failing.Load() {
		return subscriptions.Effect{}, errors.New("injected failure")
	}
	return f.Applier.Apply(ctx, tx, ev, p)
}

func TestReplayOfAProcessedEventHasNoSecondEffect(t *testing.T) {
	t.Parallel()
	mailer := &recordingMailer{}
	a := newTestApp(t, appOptions{jobs: true, options: []app.Option{app.WithMailer(mailer)}})
	f := a.fixture("price_replay", "cus_replay", "sub_replay")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	a.applied("evt_replay_paid", "invoice.paid", t0, paidInvoice(f, "in_replay", t0).Object(), nil)
	mailer.find(t, "Payment received")
	id := a.eventID("evt_replay_paid")

	resp := a.gql(a.token("staff-1", "support"), replayMutation, map[string]any{"input": map[string]any{"eventId": id, "reason": "customer reports no box"}})
	p, codes := payload(t, resp, "replayWebhookEvent")
	require.Empty(t, codes, resp.Raw)
	require.Equal(t, "RECEIVED", p["event"].(map[string]any)["status"])
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_replay_paid"))
	require.Equal(t, "replayed: payment already recorded; nothing new", a.eventOutcome("evt_replay_paid"))

	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id = 'in_replay' AND status = 'SUCCEEDED'`))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM shipments WHERE stripe_invoice_id = 'in_replay'`))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM notifications WHERE kind = 'payment_succeeded'`))
	require.Eventually(t, func() bool {
		return a.count(`SELECT count(*) FROM river_job WHERE kind = 'notification_send' AND state <> 'completed'`) == 0
	}, 10*time.Second, 20*time.Millisecond, a.dumpJobs())
	require.Len(t, mailer.texts(), 1, "one receipt: %v", mailer.texts())

	// A dispute replayed is recorded and alerted once.
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_replay_dispute", "charge.dispute.created", t0.Add(time.Minute),
		webhooktest.Dispute("dp_replay", "ch_in_replay", "pi_in_replay", 2400, "usd", "fraudulent"), nil)))
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_replay_dispute"))
	resp = a.gql(a.token("staff-1", "support"), replayMutation, map[string]any{"input": map[string]any{
		"eventId": a.eventID("evt_replay_dispute"), "reason": "check the alert"}})
	_, codes = payload(t, resp, "replayWebhookEvent")
	require.Empty(t, codes, resp.Raw)
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_replay_dispute"))
	require.Equal(t, "replayed: dispute already recorded", a.eventOutcome("evt_replay_dispute"))

	_, metrics := a.get("/metrics")
	require.Contains(t, metrics, `scoville_payments_total{outcome="succeeded"} 1`)
	require.Contains(t, metrics, `scoville_payment_alerts_total{kind="dispute"} 1`)

	reason, before, after := a.auditEntry(webhooks.ActionReplay, id)
	require.Equal(t, "customer reports no box", reason)
	require.JSONEq(t, `{"status":"PROCESSED","attempts":1}`, before)
	require.JSONEq(t, `{"status":"RECEIVED","attempts":1}`, after)
	var actor string
	require.NoError(t, a.db.Raw(`SELECT actor_subject FROM audit_log WHERE action = ?`, webhooks.ActionReplay).Scan(&actor).Error)
	require.Equal(t, "staff-1", actor)
}

func TestReplayOfAFailedEventProcessesIt(t *testing.T) {
	t.Parallel()
	failing := &atomic.Bool{}
	failing.Store(true)
	a := newTestApp(t, appOptions{jobs: true, env: map[string]string{"JOB_MAX_ATTEMPTS": "1"}, options: []app.Option{
		app.WithApplierWrapper(func(in webhooks.Applier) webhooks.Applier { return flakyApplier{Applier: in, failing: failing} }),
	}})
	f := a.fixture("price_failed", "cus_failed", "sub_failed")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_failed_paid", "invoice.paid", t0, paidInvoice(f, "in_failed", t0).Object(), nil)))
	require.Equal(t, "FAILED", a.awaitEvent("evt_failed_paid"))
	require.Zero(t, a.count(`SELECT count(*) FROM payments`))
	id := a.eventID("evt_failed_paid")

	failing.Store(false) // the bug is fixed
	resp := a.gql(a.token("admin-1", "admin"), replayMutation, map[string]any{"input": map[string]any{"eventId": id, "reason": "fixed the outage"}})
	_, codes := payload(t, resp, "replayWebhookEvent")
	require.Empty(t, codes, resp.Raw)
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_failed_paid"))
	require.Equal(t, "replayed: payment succeeded; shipment for the period", a.eventOutcome("evt_failed_paid"))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id = 'in_failed' AND status = 'SUCCEEDED'`))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM shipments WHERE stripe_invoice_id = 'in_failed'`))
	_, before, after := a.auditEntry(webhooks.ActionReplay, id)
	require.JSONEq(t, `{"status":"FAILED","attempts":1}`, before)
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM audit_log WHERE action = ? AND target_type = ?`, webhooks.ActionReplay, audit.TargetWebhookEvent))
	require.JSONEq(t, `{"status":"RECEIVED","attempts":1}`, after)
}

func TestReplayRefusals(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{}) // no workers: a delivered event stays RECEIVED
	f := a.fixture("price_refuse", "cus_refuse", "sub_refuse")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_waiting", "invoice.paid", t0, paidInvoice(f, "in_refuse", t0).Object(), nil)))
	id := a.eventID("evt_waiting")
	staff := a.token("staff-2", "support")
	replay := func(token, eventID, reason string) gqlResponse {
		return a.gql(token, replayMutation, map[string]any{"input": map[string]any{"eventId": eventID, "reason": reason}})
	}

	for _, reason := range []string{"", "   ", strings.Repeat("x", 1001)} {
		_, codes := payload(t, replay(staff, id, reason), "replayWebhookEvent")
		require.Equal(t, []string{"INVALID"}, codes)
	}
	for _, unknown := range []string{"8f0c1b2e-0000-4000-8000-000000000999", "not-an-id"} {
		_, codes := payload(t, replay(staff, unknown, "why not"), "replayWebhookEvent")
		require.Equal(t, []string{"NOT_FOUND"}, codes)
	}
	_, codes := payload(t, replay(staff, id, "twice"), "replayWebhookEvent")
	require.Equal(t, []string{"INVALID_STATE"}, codes, "an event still waiting has its job already")

	resp := replay(a.token("cus_refuse"), id, "I want it again")
	require.Equal(t, []string{"FORBIDDEN"}, resp.codes(), resp.Raw)
	require.Nil(t, resp.Data["replayWebhookEvent"])
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM audit_log WHERE action = ? AND actor_subject = 'cus_refuse'`, webhooks.ActionReplay+".forbidden"))
	require.Zero(t, a.count(`SELECT count(*) FROM audit_log WHERE action = ?`, webhooks.ActionReplay), "refused replays change nothing")
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM river_job WHERE kind IN ('webhook_event_process', 'webhook_events_enqueue')`),
		"only the job the event was stored with: refused replays add none")
}

// opsShop is the app in front of the stateful fake Stripe, optionally with workers.
func opsShop(t *testing.T, jobs bool, opts ...app.Option) *shop {
	t.Helper()
	fake := newFakeStripe(t)
	opts = append([]app.Option{app.WithStripeTimeouts(300*time.Millisecond, time.Second)}, opts...)
	a := newTestApp(t, appOptions{env: map[string]string{"STRIPE_API_BASE": fake.URL}, options: opts, jobs: jobs})
	a.seedAt(fake.URL)
	return &shop{testApp: a, stripe: fake}
}

// stripeSub is the Stripe id of one of our subscriptions.
func (s *shop) stripeSub(id string) string {
	s.t.Helper()
	sid := s.text(`SELECT stripe_subscription_id FROM subscriptions WHERE id = ?`, id)
	require.NotEmpty(s.t, sid)
	return sid
}

func (s *shop) status(id string) string {
	s.t.Helper()
	return s.text(`SELECT status FROM subscriptions WHERE id = ?`, id)
}

func TestResyncAppliesWhatStripeSaysNow(t *testing.T) {
	t.Parallel()
	s := opsShop(t, false)
	owner := s.token("resync-owner")
	id := s.activeSubscription(owner, "resync-create")
	require.Equal(t, "ACTIVE", s.status(id))
	resync := func(token, subID, reason string) gqlResponse {
		return s.gql(token, resyncMutation, map[string]any{"input": map[string]any{"subscriptionId": subID, "reason": reason}})
	}

	// Stripe moved on and no webhook told us: a resync applies it, audited.
	s.stripe.SetSubscriptionStatus(s.stripeSub(id), "past_due")
	p, codes := payload(t, resync(s.token("staff-3", "support"), id, "customer says the card failed"), "resyncSubscription")
	require.Empty(t, codes)
	require.Equal(t, "PAST_DUE", p["subscription"].(map[string]any)["status"])
	require.Equal(t, "PAST_DUE", s.status(id))
	reason, before, after := s.auditEntry(subscriptions.ActionResync, id)
	require.Equal(t, "customer says the card failed", reason)
	require.Contains(t, before, `"status": "ACTIVE"`)
	require.Contains(t, after, `"status": "PAST_DUE"`)

	// A cancellation found by a resync is told to the customer, once.
	s.stripe.SetSubscriptionStatus(s.stripeSub(id), "canceled")
	p, codes = payload(t, resync(s.token("admin-3", "admin"), id, "portal cancel not reflected"), "resyncSubscription")
	require.Empty(t, codes)
	require.Equal(t, "CANCELED", p["subscription"].(map[string]any)["status"])
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM notifications WHERE kind = 'subscription_canceled' AND subscription_id = ?`, id))
	_, codes = payload(t, resync(s.token("admin-3", "admin"), id, "again"), "resyncSubscription")
	require.Empty(t, codes)
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM notifications WHERE kind = 'subscription_canceled' AND subscription_id = ?`, id))
	require.EqualValues(t, 3, s.count(`SELECT count(*) FROM audit_log WHERE action = ? AND target_id = ?`, subscriptions.ActionResync, id))
	require.EqualValues(t, 3, s.count(`SELECT count(*) FROM audit_log WHERE action = ? AND target_type = ?`, subscriptions.ActionResync, audit.TargetSubscription),
		"a resync names its target as adminCancelSubscription does, so one search finds every action on a subscription")

	// Stripe down: PROVIDER_UNAVAILABLE, nothing changed, nothing audited.
	s.stripe.SetSubscriptionStatus(s.stripeSub(id), "active")
	for range 20 {
		s.stripe.FailNext(stripefake.Fault{Status: 503})
	}
	resp := resync(s.token("staff-3", "support"), id, "while Stripe is down")
	require.Equal(t, []string{"PROVIDER_UNAVAILABLE"}, resp.codes(), resp.Raw)
	s.stripe.ClearFaults()
	require.Equal(t, "CANCELED", s.status(id))
	require.EqualValues(t, 3, s.count(`SELECT count(*) FROM audit_log WHERE action = ?`, subscriptions.ActionResync))
}

func TestResyncRefusals(t *testing.T) {
	t.Parallel()
	s := opsShop(t, false)
	owner := s.token("resync-refused")
	id := s.activeSubscription(owner, "resync-refused-create")
	staff := s.token("staff-4", "support")
	resync := func(token, subID, reason string) gqlResponse {
		return s.gql(token, resyncMutation, map[string]any{"input": map[string]any{"subscriptionId": subID, "reason": reason}})
	}
	_, codes := payload(t, resync(staff, id, " "), "resyncSubscription")
	require.Equal(t, []string{"INVALID"}, codes)
	for _, unknown := range []string{"8f0c1b2e-0000-4000-8000-000000000998", "sub_123"} {
		_, codes := payload(t, resync(staff, unknown, "look"), "resyncSubscription")
		require.Equal(t, []string{"NOT_FOUND"}, codes)
	}
	resp := resync(owner, id, "my own subscription")
	require.Equal(t, []string{"FORBIDDEN"}, resp.codes(), resp.Raw)
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE action = ?`, subscriptions.ActionResync+".forbidden"))
	require.Zero(t, s.count(`SELECT count(*) FROM audit_log WHERE action = ?`, subscriptions.ActionResync))
	require.Zero(t, s.stripe.Count("GET", "/v1/subscriptions/"), "nothing was read for a refused or invalid resync")
}

func TestReconciliationAppliesWhatNoWebhookDelivered(t *testing.T) {
	t.Parallel()
	s := opsShop(t, false)
	owner := s.token("reconcile-owner")
	id := s.activeSubscription(owner, "reconcile-create") // Stripe paid its first invoice; no webhook came
	require.Zero(t, s.count(`SELECT count(*) FROM payments`))
	s.stripe.SetSubscriptionStatus(s.stripeSub(id), "past_due")
	ctx := context.Background()

	rep, err := s.app.Reconciler().Run(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{subscriptions.FindingSubscriptionState: 1, subscriptions.FindingPaymentMissing: 1}, rep.Findings)
	require.Equal(t, "PAST_DUE", s.status(id))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM payments WHERE subscription_id = ? AND status = 'SUCCEEDED'`, id))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM shipments WHERE subscription_id = ?`, id))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM notifications WHERE kind = 'payment_succeeded'`))

	// Nothing new at Stripe: nothing found, nothing added.
	rep, err = s.app.Reconciler().Run(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM shipments`))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM payments`))
	var watermark time.Time
	require.NoError(t, s.db.Raw(`SELECT watermark FROM reconciliation_state WHERE name = 'stripe'`).Scan(&watermark).Error)

	// Stripe down: the run fails, nothing is applied and the watermark stays.
	s.stripe.SetSubscriptionStatus(s.stripeSub(id), "active")
	for range 20 {
		s.stripe.FailNext(stripefake.Fault{Status: 503})
	}
	_, err = s.app.Reconciler().Run(ctx)
	require.ErrorIs(t, err, gateway.ErrProviderUnavailable)
	s.stripe.ClearFaults()
	require.Equal(t, "PAST_DUE", s.status(id))
	var after time.Time
	require.NoError(t, s.db.Raw(`SELECT watermark FROM reconciliation_state WHERE name = 'stripe'`).Scan(&after).Error)
	require.True(t, after.Equal(watermark), "a failed run keeps the watermark")

	// The next run catches up.
	rep, err = s.app.Reconciler().Run(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{subscriptions.FindingSubscriptionState: 1}, rep.Findings)
	require.Equal(t, "ACTIVE", s.status(id))

	// A renewal fails at Stripe and no webhook says so: the payment is FAILED, the
	// subscription PAST_DUE, and the customer is told where to pay, once.
	s.stripe.SetSubscriptionStatus(s.stripeSub(id), "past_due")
	s.stripe.PutInvoice([]byte(fmt.Sprintf(`{"id": "in_renewal_failed", "status": "open", "subscription": %q,
		"billing_reason": "subscription_cycle", "currency": "usd", "amount_due": 2400, "amount_paid": 0,
		"amount_remaining": 2400, "total": 2400, "attempt_count": 1, "created": %d,
		"hosted_invoice_url": "https://invoice.stripe.com/i/in_renewal_failed"}`, s.stripeSub(id), time.Now().Unix())))
	rep, err = s.app.Reconciler().Run(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{subscriptions.FindingSubscriptionState: 1, subscriptions.FindingPaymentFailed: 1}, rep.Findings)
	require.Equal(t, "PAST_DUE", s.status(id))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id = 'in_renewal_failed' AND status = 'FAILED'`))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM notifications WHERE kind = 'payment_failed'`))
	rep, err = s.app.Reconciler().Run(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM notifications WHERE kind = 'payment_failed'`))

	_, metrics := s.get("/metrics")
	require.Contains(t, metrics, `scoville_reconcile_findings_total{kind="payment_missing"} 1`)
	require.Contains(t, metrics, `scoville_reconcile_findings_total{kind="subscription_state"} 3`)
	require.Contains(t, metrics, `scoville_reconcile_findings_total{kind="payment_failed"} 1`)
	require.Contains(t, metrics, `scoville_reconcile_runs_total{outcome="failed"} 1`)
	lastOK := regexp.MustCompile(`(?m)^scoville_reconcile_last_success_timestamp_seconds (\S+)$`).FindStringSubmatch(metrics)
	require.Len(t, lastOK, 2, "the last success gauge is exported")
	at, err := strconv.ParseFloat(lastOK[1], 64)
	require.NoError(t, err)
	require.EqualValues(t, rep.Started.Unix(), int64(at), "the gauge is the last successful run's start")
	logs := s.logs.String()
	require.Contains(t, logs, `"finding":"payment_missing"`)
	require.NotContains(t, logs, "@example.com", "no e-mail address in any log line")
	require.NotContains(t, logs, "Pepper Lane", "no postal address in any log line")
}

func TestReconciliationWithStripeMockListData(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	// stripe-mock lists one fixture subscription, of this customer on this price:
	// make them ours, as if the Checkout webhook had been lost.
	f := a.fixture("price_1MBp8NCMYaPNqkJjPu5CGHKq", "cus_MvgVWT91tuiCHq", "")
	rep, err := a.app.Reconciler().Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]int{subscriptions.FindingSubscriptionMissing: 1}, rep.Findings)
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM subscriptions WHERE customer_id = ? AND plan_id = ?
		AND stripe_subscription_id = 'sub_1MBpGVCMYaPNqkJjAS4wI64h' AND status = 'ACTIVE'`, f.customerID, f.planID))

	rep, err = a.app.Reconciler().Run(context.Background())
	require.NoError(t, err)
	require.Empty(t, rep.Findings, "a second run finds nothing new")
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM subscriptions`))
}

func TestReconcileJobRetriesWhileStripeIsDown(t *testing.T) {
	t.Parallel()
	s := opsShop(t, true, app.WithJobRetryPolicy(fastRetry{}))
	id := s.activeSubscription(s.token("reconcile-job"), "reconcile-job-create")
	for range 1000 {
		s.stripe.FailNext(stripefake.Fault{Status: 503})
	}
	_, err := s.app.Jobs().Insert(context.Background(), subscriptions.ReconcileArgs{}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return s.count(`SELECT count(*) FROM river_job WHERE kind = 'stripe_reconcile' AND attempt >= 2 AND errors IS NOT NULL`) == 1
	}, 20*time.Second, 20*time.Millisecond, s.dumpJobs())
	require.Zero(t, s.count(`SELECT count(*) FROM payments`), "nothing applied while Stripe is down")
	require.Zero(t, s.count(`SELECT count(*) FROM reconciliation_state`))

	s.stripe.ClearFaults()
	require.Eventually(t, func() bool {
		return s.count(`SELECT count(*) FROM river_job WHERE kind = 'stripe_reconcile' AND state = 'completed'`) == 1
	}, 20*time.Second, 20*time.Millisecond, s.dumpJobs())
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM payments WHERE subscription_id = ? AND status = 'SUCCEEDED'`, id))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM shipments WHERE subscription_id = ?`, id))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM reconciliation_state`))

	// The webhook arrives after all: nothing is added, nothing is told twice.
	var invoiceID string
	require.NoError(t, s.db.Raw(`SELECT stripe_invoice_id FROM payments WHERE subscription_id = ?`, id).Scan(&invoiceID).Error)
	resp, err := http.Get(s.stripe.URL + "/v1/invoices/" + invoiceID)
	require.NoError(t, err)
	var invoice webhooktest.Object
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&invoice))
	resp.Body.Close()
	s.applied("evt_late_paid", "invoice.paid", time.Now().Add(-time.Minute), invoice, nil)
	require.Equal(t, "payment already recorded; nothing new", s.eventOutcome("evt_late_paid"))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM shipments`))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM notifications WHERE kind = 'payment_succeeded'`))

	// One run at a time: a second insert while one is queued is a no-op.
	s.stripe.FailNext(stripefake.Fault{Delay: 2 * time.Second})
	r1, err := s.app.Jobs().Insert(context.Background(), subscriptions.ReconcileArgs{}, nil)
	require.NoError(t, err)
	r2, err := s.app.Jobs().Insert(context.Background(), subscriptions.ReconcileArgs{}, nil)
	require.NoError(t, err)
	require.False(t, r1.UniqueSkippedAsDuplicate)
	require.True(t, r2.UniqueSkippedAsDuplicate)
}

func TestReconcileIntervalSetting(t *testing.T) {
	t.Parallel()
	load := func(v string) (*config.Config, error) {
		env := map[string]string{"APP_ENV": "development", "DATABASE_URL": "postgres://u@127.0.0.1:5432/db", "RECONCILE_INTERVAL": v}
		return config.Load(func(k string) string { return env[k] })
	}
	for v, want := range map[string]time.Duration{"": 15 * time.Minute, "0": 0, "5m": 5 * time.Minute, "24h": 24 * time.Hour} {
		cfg, err := load(v)
		require.NoError(t, err, v)
		require.Equal(t, want, cfg.ReconcileInterval, v)
	}
	for _, bad := range []string{"500ms", "25h", "-1m", "often"} {
		_, err := load(bad)
		require.ErrorContains(t, err, "RECONCILE_INTERVAL", bad)
	}
}
