package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// listings is Stripe's listings as one reconciliation run reads them; err fails the
// listing it names.
type listings struct {
	subs       []gateway.Subscription
	paid, open []gateway.Invoice
	failing    string // "subscriptions", "paid" or "open"
	since      []time.Time
}

var errUnreachable = errors.New("stripe unreachable")

func (l *listings) ListSubscriptionsSince(_ context.Context, since time.Time) ([]gateway.Subscription, error) {
	l.since = append(l.since, since)
	if l.failing == "subscriptions" {
		return nil, errUnreachable
	}
	return l.subs, nil
}

func (l *listings) ListPaidInvoicesSince(context.Context, time.Time) ([]gateway.Invoice, error) {
	if l.failing == "paid" {
		return nil, errUnreachable
	}
	return l.paid, nil
}

func (l *listings) ListOpenInvoicesSince(context.Context, time.Time) ([]gateway.Invoice, error) {
	if l.failing == "open" {
		return nil, errUnreachable
	}
	return l.open, nil
}

// reconciler is a Reconciler over the bench's syncer, reading l, whose runs start at *now.
func (b *bench) reconciler(l *listings, now *time.Time) *Reconciler {
	r := NewReconciler(b.db, b.syncer, l, nil, slog.New(slog.DiscardHandler))
	r.now = func() time.Time { return *now }
	return r
}

// stripeView is Stripe's subscription sub as a listing returns it.
func (b *bench) stripeView(t *testing.T, sub *models.Subscription, status string, cancelAtEnd bool, periodStart time.Time) gateway.Subscription {
	t.Helper()
	raw, err := json.Marshal(webhooktest.Subscription{
		ID: *sub.StripeSubscriptionID, Price: b.planPrice[sub.PlanID], Status: status, Amount: 100, Currency: "usd",
		PeriodStart: periodStart, PeriodEnd: periodStart.AddDate(0, 1, 0), CancelAtPeriodEnd: cancelAtEnd,
		Metadata: map[string]string{metadataSubscriptionID: sub.ID},
	}.Object())
	require.NoError(t, err)
	gs, err := gateway.SubscriptionFromJSON(raw)
	require.NoError(t, err)
	return gs
}

// invoiceView is an invoice of sub as a listing returns it.
func (b *bench) invoiceView(t *testing.T, sub *models.Subscription, id, status string, start time.Time) gateway.Invoice {
	t.Helper()
	obj := paidInvoiceOf(t, b, sub, id, start)
	if status != "paid" {
		var plan models.Plan
		require.NoError(t, b.db.Take(&plan, "id = ?", sub.PlanID).Error)
		obj = webhooktest.Invoice{ID: id, Subscription: *sub.StripeSubscriptionID, Price: *plan.StripePriceID, Status: status,
			Amount: plan.Amount, Currency: strings.ToLower(plan.Currency), PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0)}.Object()
	}
	raw, err := json.Marshal(obj)
	require.NoError(t, err)
	inv, err := gateway.InvoiceFromJSON(raw)
	require.NoError(t, err)
	return inv
}

func (b *bench) count(t *testing.T, model any, where string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.db.Model(model).Where(where, args...).Count(&n).Error)
	return n
}

// newReconcileBench is a bench with one subscription, and a time a minute ahead for
// a run to start at.
func newReconcileBench(t *testing.T) (*bench, *models.Subscription, time.Time) {
	t.Helper()
	b := newBench(t)
	return b, b.subscribe(t), time.Now().Add(time.Minute).Truncate(time.Second)
}

// TestReconcileAppliesWhatNoEventDelivered lists a changed subscription and a paid
// invoice no webhook reported: one run applies both (the payment with its one
// shipment), names each finding, and a second run over the same window finds and
// changes nothing, starting where the first started less the overlap.
func TestReconcileAppliesWhatNoEventDelivered(t *testing.T) {
	t.Parallel()
	b, sub, now := newReconcileBench(t)
	ctx := context.Background()
	l := &listings{
		subs: []gateway.Subscription{b.stripeView(t, sub, "active", true, sub.CurrentPeriodStart.UTC())},
		paid: []gateway.Invoice{b.invoiceView(t, sub, "in_missed", "paid", now.AddDate(0, 0, -1))},
	}
	r := b.reconciler(l, &now)

	rep, err := r.Run(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{FindingSubscriptionState: 1, FindingPaymentMissing: 1}, rep.Findings)
	require.True(t, b.row(t, sub.ID).CancelAtPeriodEnd, "the listed change was not applied")
	var pay models.Payment
	require.NoError(t, b.db.Take(&pay, "stripe_invoice_id = ?", "in_missed").Error)
	require.Equal(t, models.PaymentSucceeded, pay.Status)
	require.EqualValues(t, 1, b.count(t, &models.Shipment{}, "stripe_invoice_id = ?", "in_missed"))
	require.Equal(t, 1.0, testutil.ToFloat64(r.runs.WithLabelValues("ok")))
	require.Equal(t, now.Add(-ReconcileFirstLookback).UTC(), l.since[0], "a first run looks back the first lookback")

	later := now.Add(time.Hour)
	now = later
	rep, err = r.Run(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Findings, "a repeated window found again what the first run applied")
	require.EqualValues(t, 1, b.count(t, &models.Payment{}, "stripe_invoice_id = ?", "in_missed"))
	require.EqualValues(t, 1, b.count(t, &models.Shipment{}, "stripe_invoice_id = ?", "in_missed"))
	require.Equal(t, later.Add(-time.Hour-ReconcileOverlap).UTC(), l.since[1], "the next window starts at the last run's start less the overlap")
}

// TestReconcileAppliesNothingWhenAListingFails fails each listing in turn: the
// subscription change listed before the failure is not applied, the run counts as
// failed, and the watermark stays, so the retry covers the same window.
func TestReconcileAppliesNothingWhenAListingFails(t *testing.T) {
	t.Parallel()
	b, sub, now := newReconcileBench(t)
	ctx := context.Background()
	for _, failing := range []string{"subscriptions", "paid", "open"} {
		l := &listings{
			subs:    []gateway.Subscription{b.stripeView(t, sub, "active", true, sub.CurrentPeriodStart.UTC())},
			paid:    []gateway.Invoice{b.invoiceView(t, sub, "in_unapplied", "paid", now.AddDate(0, 0, -1))},
			failing: failing,
		}
		r := b.reconciler(l, &now)
		_, err := r.Run(ctx)
		require.ErrorIs(t, err, errUnreachable, failing)
		require.Equal(t, 1.0, testutil.ToFloat64(r.runs.WithLabelValues("failed")), failing)
		require.False(t, b.row(t, sub.ID).CancelAtPeriodEnd, "%s failed, yet a change was applied", failing)
		require.Zero(t, b.count(t, &models.Payment{}, "stripe_invoice_id = ?", "in_unapplied"), failing)
		require.Zero(t, b.count(t, &models.Shipment{}, "stripe_invoice_id = ?", "in_unapplied"), failing)
	}
	var marks int64
	require.NoError(t, b.db.Raw(`SELECT count(*) FROM reconciliation_state`).Scan(&marks).Error)
	require.Zero(t, marks, "a failed run moved the watermark")
}

// TestReconcileRecordsAFailedRenewalOnce lists open invoices: one Stripe tried and
// failed to collect is recorded (FAILED payment, PAST_DUE, the customer's notice),
// once across runs; a fresh one Stripe has not tried yet is no finding.
func TestReconcileRecordsAFailedRenewalOnce(t *testing.T) {
	t.Parallel()
	b, sub, now := newReconcileBench(t)
	ctx := context.Background()
	tried := b.invoiceView(t, sub, "in_declined", "open", now.AddDate(0, 0, -1))
	require.Positive(t, tried.AttemptCount)
	fresh := b.invoiceView(t, sub, "in_fresh", "open", now)
	fresh.AttemptCount = 0
	l := &listings{open: []gateway.Invoice{tried, fresh}}
	r := b.reconciler(l, &now)

	rep, err := r.Run(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{FindingPaymentFailed: 1}, rep.Findings)
	var pay models.Payment
	require.NoError(t, b.db.Take(&pay, "stripe_invoice_id = ?", "in_declined").Error)
	require.Equal(t, models.PaymentFailed, pay.Status)
	require.Equal(t, models.SubscriptionPastDue, b.row(t, sub.ID).Status)
	require.Zero(t, b.count(t, &models.Payment{}, "stripe_invoice_id = ?", "in_fresh"))
	notices := b.count(t, &notifications.Stored{}, "subscription_id = ? AND kind = ?", sub.ID, notifications.KindPaymentFailed)
	require.EqualValues(t, 1, notices)

	now = now.Add(time.Hour)
	rep, err = r.Run(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
	require.EqualValues(t, notices, b.count(t, &notifications.Stored{}, "subscription_id = ? AND kind = ?", sub.ID, notifications.KindPaymentFailed),
		"a second run told the customer again")
}

// TestReconcileNeverRollsBackANewerEvent applies an event newer than the run's read,
// then reconciles an older view of the subscription: the event's state stands.
func TestReconcileNeverRollsBackANewerEvent(t *testing.T) {
	t.Parallel()
	b, sub, readAt := newReconcileBench(t)
	ctx := context.Background()
	periodEnd := sub.CurrentPeriodEnd.UTC()
	ev := b.event(sub, readAt.Add(time.Second), "active", sub.PlanID, true, false, periodEnd)
	_, err := b.deliver(ctx, ev.Event)
	require.NoError(t, err)
	require.True(t, b.row(t, sub.ID).CancelAtPeriodEnd)

	l := &listings{subs: []gateway.Subscription{b.stripeView(t, sub, "active", false, sub.CurrentPeriodStart.UTC())}}
	rep, err := b.reconciler(l, &readAt).Run(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
	require.True(t, b.row(t, sub.ID).CancelAtPeriodEnd, "an older read rolled back a newer event")
}

// TestReconcileShipsNothingToACustomerErasedMidRun erases the customer (issuer
// changed under the customer's FOR UPDATE, as erasure does) while a reconciliation
// applies a paid invoice of theirs, and commits the erasure once the run waits on
// it: the run must see the erasure, so nothing ships to the erased customer's
// address. Without the customer's lock the run read "not erased" before the
// erasure locked, and wrote the shipment, address included, after it committed.
func TestReconcileShipsNothingToACustomerErasedMidRun(t *testing.T) {
	t.Parallel()
	b, sub, now := newReconcileBench(t)
	ctx := context.Background()
	l := &listings{paid: []gateway.Invoice{b.invoiceView(t, sub, "in_erased_mid_run", "paid", now.AddDate(0, 0, -1))}}
	r := b.reconciler(l, &now)

	erasure := b.db.Begin()
	defer erasure.Rollback()
	var xid string
	require.NoError(t, erasure.Raw("SELECT txid_current()::text").Scan(&xid).Error)
	require.NoError(t, erasure.Exec("SELECT id FROM customers WHERE id = ? FOR UPDATE", sub.CustomerID).Error)
	require.NoError(t, erasure.Exec("UPDATE customers SET issuer = ?, subject = ? WHERE id = ?",
		customers.ErasedIssuer, uuid.NewString(), sub.CustomerID).Error)

	done := make(chan error, 1)
	go func() { _, err := r.Run(ctx); done <- err }()
	dbtest.AwaitWaiter(t, b.db, xid, done) // the run waits on the erasure's lock
	require.NoError(t, erasure.Commit().Error)
	require.NoError(t, <-done)
	require.EqualValues(t, 0, b.count(t, &models.Shipment{}, "stripe_invoice_id = ?", "in_erased_mid_run"),
		"a box was shipped to a customer erased while the run applied their invoice")
}
