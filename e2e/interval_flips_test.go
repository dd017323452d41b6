package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/webhooks/webhooktest"
)

// Changing between plans of different billing intervals makes Stripe reset the
// billing anchor and invoice at once: a new period line, less a proration credit
// for the unused time of the period whose box already shipped. Flipping a monthly
// subscription to quarterly and back, a customer pays only for the hour used, yet
// each invoice's period line ships a box. A plan change whose new period is paid
// for by the credit of a period that shipped must not ship another box: each such
// invoice is recorded and held for support, naming the credit.
func TestWebhookIntervalFlipsDoNotShipABoxPerFlip(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true})
	t0 := time.Now().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	f := a.fixture("price_flip_month", "cus_flip", "sub_flip")
	require.NoError(t, a.db.Exec(`INSERT INTO plans (product_id, billing_interval, amount, currency, stripe_price_id)
		SELECT product_id, 'QUARTER', 6000, 'USD', 'price_flip_quarter' FROM plans WHERE id = ?`, f.planID).Error)

	// The month is paid and its box ships.
	first := paidInvoice(f, "in_flip_1", t0)
	first.BillingReason = "subscription_create"
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_flip_1", "invoice.paid", t0, first.Object(), nil)))
	require.EqualValues(t, 1, a.paidResult(f, "evt_flip_1", "in_flip_1").shipments)

	// An hour later: to quarterly, billed at once, the unused month credited.
	// The money is recorded; the quarter's box waits for support.
	t1 := t0.Add(time.Hour)
	up := paidInvoice(f, "in_flip_2", t1)
	up.BillingReason, up.Price, up.Amount, up.PeriodEnd = "subscription_update", "price_flip_quarter", 6000, t1.AddDate(0, 3, 0)
	up.Prorations = []webhooktest.Proration{{Price: "price_flip_month", UnitAmount: 2400, Amount: -2397, PeriodStart: t1, PeriodEnd: t0.AddDate(0, 1, 0)}}
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_flip_2", "invoice.paid", t1, up.Object(), nil)))
	r := a.paidResult(f, "evt_flip_2", "in_flip_2")
	require.Equal(t, "PROCESSED", r.eventStatus)
	require.Equal(t, "SUCCEEDED", r.status)
	require.EqualValues(t, 3603, r.amount)
	require.Contains(t, r.mismatch, "credit 2397 on line il_in_flip_2_p0 for "+span(t1, t0.AddDate(0, 1, 0))+" of price price_flip_month")
	require.Contains(t, r.mismatch, "the box of "+span(t0, t0.AddDate(0, 1, 0)))
	require.Contains(t, r.mismatch, "new period "+span(t1, t1.AddDate(0, 3, 0))+" billed 6000")
	require.Zero(t, r.shipments, "the quarter is paid mostly by the credit of the month whose box shipped")

	// An hour later: back to monthly. The unused quarter's credit pays the new
	// month and leaves a balance; nothing new was paid, and the month it bills
	// is time the first box was sent for.
	t2 := t1.Add(time.Hour)
	down := paidInvoice(f, "in_flip_3", t2)
	down.BillingReason = "subscription_update"
	down.Prorations = []webhooktest.Proration{{Price: "price_flip_quarter", UnitAmount: 6000, Amount: -5997, PeriodStart: t2, PeriodEnd: t1.AddDate(0, 3, 0)}}
	obj := down.Object()
	obj["ending_balance"] = obj["total"]
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_flip_3", "invoice.paid", t2, obj, nil)))
	r = a.paidResult(f, "evt_flip_3", "in_flip_3")
	require.Equal(t, "PROCESSED", r.eventStatus)
	require.Contains(t, r.mismatch, "credit 5997 on line il_in_flip_3_p0")
	boxes := a.count(`SELECT count(*) FROM shipments WHERE subscription_id = ?`, f.subscriptionID)
	require.EqualValues(t, 1, boxes, "two hours and 6003 paid with 3597 back as credit: one box (%s)", r.outcome)

	_, metrics := a.get("/metrics")
	require.True(t, strings.Contains(metrics, `scoville_payment_alerts_total{kind="credited_shipped_period"} 2`+"\n"), "each held flip is alerted")
	require.False(t, strings.Contains(metrics, `kind="amount_mismatch"`), "Stripe's figures add up: no amount mismatch")
}

// span writes a period as the mismatch text names it.
func span(start, end time.Time) string {
	return start.UTC().Format(time.RFC3339) + " to " + end.UTC().Format(time.RFC3339)
}
