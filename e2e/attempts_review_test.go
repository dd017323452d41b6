package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// An admin's refund whose call never reached Stripe stays an open attempt when
// Stripe reports another refund of the same charge (one made in the Dashboard):
// that report proves nothing about this attempt, so it must not complete it, or
// the refund the admin asked for looks done in the audit log while the customer
// never got it.
func TestAnotherRefundsReportDoesNotCompleteAnOpenAttempt(t *testing.T) {
	t.Parallel()
	s, faults := newFaultyAdminShop(t)
	admin := s.token("unreached-admin", "admin")
	payID, pi := s.paidPayment("unreached-customer", 3500)

	faults.arm(neverReachStripe)
	resp, _ := s.refund(admin, map[string]any{"paymentId": payID, "amount": 1000, "reason": "box arrived broken", "idempotencyKey": "unreached-1"})
	require.NotEmpty(t, resp.Errors, "Stripe was not reached")
	require.Empty(t, s.refundRequests(), "nothing was refunded at Stripe")
	entries := s.auditOf(payID)
	require.Len(t, entries, 1)
	attempt := entries[0]
	require.Equal(t, "refundPayment.attempted", attempt.Action)

	// Someone refunds 500 of the charge in Stripe's Dashboard; Stripe reports it.
	var pay models.Payment
	require.NoError(t, s.db.Take(&pay, "id = ?", payID).Error)
	charge := webhooktest.Charge("ch_"+strings.TrimPrefix(pi, "pi_"), pay.StripeInvoiceID, pi, 3500, 500, "usd")
	s.applied("evt_dashboard_refund", "charge.refunded", time.Now(), charge, nil)
	_, amount := s.refunded(payID)
	require.EqualValues(t, 500, amount)

	for _, e := range s.auditOf(payID) {
		require.NotContains(t, e.After, `"attemptId": "`+attempt.ID+`"`,
			"%s completes the admin's attempt of 1000, which never reached Stripe, from a report of another refund of 500", e.Action)
	}
}

// A staff cancellation "now" whose call never reached Stripe stays an open attempt
// when Stripe reports the customer's own cancellation at the period's end: the
// subscription still runs and ships until then, so the admin's cancellation did not
// happen and must not be recorded as completed.
func TestAPeriodEndCancelDoesNotCompleteAnOpenCancelNowAttempt(t *testing.T) {
	t.Parallel()
	s, faults := newFaultyAdminShop(t)
	admin := s.token("unreached-cancel-admin", "admin")
	id := s.activeSubscription(s.token("unreached-cancel-customer"), "unreached-cancel-sub")

	faults.arm(neverReachStripe)
	resp, _ := s.mutate(admin, "adminCancelSubscription", "AdminCancelSubscriptionInput",
		map[string]any{"subscriptionId": id, "atPeriodEnd": false, "reason": "chargeback fraud", "idempotencyKey": "unreached-cancel-1"},
		"subscription { id status }")
	require.NotEmpty(t, resp.Errors, "Stripe was not reached")
	entries := s.auditOf(id)
	require.Len(t, entries, 1)
	attempt := entries[0]
	require.Equal(t, "adminCancelSubscription.attempted", attempt.Action)

	// The customer sets their subscription to end at the period's end; Stripe reports it.
	var row struct{ StripeSubscriptionID, StripeCustomerID, StripePriceID string }
	require.NoError(t, s.db.Raw(`SELECT s.stripe_subscription_id, c.stripe_customer_id, p.stripe_price_id
		FROM subscriptions s JOIN customers c ON c.id = s.customer_id JOIN plans p ON p.id = s.plan_id WHERE s.id = ?`, id).Scan(&row).Error)
	now := time.Now()
	obj := webhooktest.Subscription{ID: row.StripeSubscriptionID, Customer: row.StripeCustomerID, Price: row.StripePriceID,
		Status: "active", Amount: 2400, Currency: "usd", PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0),
		CancelAtPeriodEnd: true, Metadata: map[string]string{"scoville_subscription_id": id}}.Object()
	require.Equal(t, 200, s.deliver(webhooktest.Event("evt_period_end_cancel", "customer.subscription.updated", now, obj,
		webhooktest.Object{"cancel_at_period_end": false})))
	require.Equal(t, "PROCESSED", s.awaitEvent("evt_period_end_cancel"))
	require.Equal(t, "ACTIVE", s.status(id), "the subscription runs until the period's end")

	for _, e := range s.auditOf(id) {
		require.NotContains(t, e.After, `"attemptId": "`+attempt.ID+`"`,
			"%s completes the admin's cancellation now, which never reached Stripe, from the customer's cancellation at the period's end", e.Action)
	}
}
