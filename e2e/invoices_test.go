package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/webhooks/webhooktest"
)

// otherPlan adds a second plan of the fixture's product line at price, for plan changes.
func (a *testApp) otherPlan(price string, amount int64) string {
	a.t.Helper()
	var id string
	require.NoError(a.t, a.db.Raw(`INSERT INTO plans (product_id, billing_interval, amount, currency, stripe_price_id)
		SELECT product_id, 'MONTH', ?, 'USD', ? FROM plans LIMIT 1 RETURNING id`, amount, price).Scan(&id).Error)
	return id
}

// paidResult is what a paid invoice left behind.
type paidResult struct {
	payments          int64 // rows for the invoice
	status            string
	amount            int64
	mismatch          string
	shipments         int64
	shippedPlan       string
	receipts          int64
	outcome           string
	eventStatus       string
	subscriptionState string
}

// couponedFirstPeriod pays the first period of a new subscription (price_<name>,
// cus_<name>, sub_<name>; invoice in_<name> by event evt_<name>) with a coupon of
// discount off, and reads what was recorded.
func (a *testApp) couponedFirstPeriod(t *testing.T, name string, t0 time.Time, discount int64) paidResult {
	t.Helper()
	f := a.fixture("price_"+name, "cus_"+name, "sub_"+name)
	inv := paidInvoice(f, "in_"+name, t0)
	inv.BillingReason, inv.Discount = "subscription_create", discount
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_"+name, "invoice.paid", t0, inv.Object(), nil)))
	return a.paidResult(f, "evt_"+name, "in_"+name)
}

// firstBoxShipped pays f's first invoice (in_<name>_first, by the event
// evt_<name>_first) for the period that started half a month before t0, requires
// its one shipment, and returns that start.
func (a *testApp) firstBoxShipped(t *testing.T, f shopFixture, name string, t0 time.Time) time.Time {
	t.Helper()
	shipped := t0.AddDate(0, 0, -15)
	first := paidInvoice(f, "in_"+name+"_first", shipped)
	first.BillingReason = "subscription_create"
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_"+name+"_first", "invoice.paid", shipped, first.Object(), nil)))
	require.EqualValues(t, 1, a.paidResult(f, "evt_"+name+"_first", "in_"+name+"_first").shipments)
	return shipped
}

func (a *testApp) paidResult(f shopFixture, eventID, invoiceID string) paidResult {
	a.t.Helper()
	r := paidResult{eventStatus: a.awaitEvent(eventID), outcome: a.eventOutcome(eventID)}
	r.payments = a.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id = ?`, invoiceID)
	if r.payments == 1 {
		require.NoError(a.t, a.db.Raw(`SELECT status, amount, coalesce(mismatch, '') FROM payments WHERE stripe_invoice_id = ?`, invoiceID).
			Row().Scan(&r.status, &r.amount, &r.mismatch))
	}
	r.shipments = a.count(`SELECT count(*) FROM shipments WHERE stripe_invoice_id = ?`, invoiceID)
	if r.shipments == 1 {
		require.NoError(a.t, a.db.Raw(`SELECT plan_id FROM shipments WHERE stripe_invoice_id = ?`, invoiceID).Scan(&r.shippedPlan).Error)
	}
	r.receipts = a.count(`SELECT count(*) FROM notifications WHERE kind = 'payment_succeeded' AND subscription_id = ?`, f.subscriptionID)
	require.NoError(a.t, a.db.Raw(`SELECT status FROM subscriptions WHERE id = ?`, f.subscriptionID).Scan(&r.subscriptionState).Error)
	return r
}

// Stripe's real invoices of a trial, a coupon and a plan change, signed and sent
// through the route, are applied as what they are: a trial ships nothing and
// records no payment, its first paid period ships; a discounted period ships at the
// discounted price; prorations are paid and ship only with a period line. None is
// an amount mismatch. A new period that comes with a credit for time whose box
// shipped is recorded and held (credited_shipped_period), not shipped.
func TestWebhookTrialDiscountAndProrationInvoicesAreNotMismatches(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true})
	t0 := time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Second)

	t.Run("trial, then its first paid period", func(t *testing.T) {
		f := a.fixture("price_trial", "cus_trial", "sub_trial")
		trialEnd := t0.AddDate(0, 0, 14)
		trial := paidInvoice(f, "in_trial", t0)
		trial.BillingReason, trial.Trial, trial.PeriodEnd = "subscription_create", true, trialEnd
		require.Equal(t, 200, a.deliver(webhooktest.Event("evt_trial", "invoice.paid", t0, trial.Object(), nil)))
		r := a.paidResult(f, "evt_trial", "in_trial")
		require.Equal(t, "PROCESSED", r.eventStatus)
		require.Contains(t, r.outcome, "trial")
		require.Zero(t, r.payments, "a trial's invoice for nothing is no payment")
		require.Zero(t, r.shipments, "a trial ships nothing")
		require.Zero(t, r.receipts, "no receipt for nothing paid")

		// The trial converts: Stripe bills the first period, which ships.
		first := paidInvoice(f, "in_trial_first", trialEnd)
		require.Equal(t, 200, a.deliver(webhooktest.Event("evt_trial_first", "invoice.paid", trialEnd, first.Object(), nil)))
		r = a.paidResult(f, "evt_trial_first", "in_trial_first")
		require.Equal(t, "SUCCEEDED", r.status)
		require.EqualValues(t, 2400, r.amount)
		require.Empty(t, r.mismatch)
		require.EqualValues(t, 1, r.shipments)
		require.EqualValues(t, 1, r.receipts)
	})

	t.Run("coupon on the first period", func(t *testing.T) {
		r := a.couponedFirstPeriod(t, "coupon", t0, 600)
		require.Empty(t, r.mismatch)
		require.Equal(t, "SUCCEEDED", r.status)
		require.EqualValues(t, 1800, r.amount)
		require.EqualValues(t, 1, r.shipments, "a discounted period is a paid period")
	})

	t.Run("first box free by a full coupon", func(t *testing.T) {
		r := a.couponedFirstPeriod(t, "free", t0, 2400)
		require.Empty(t, r.mismatch)
		require.EqualValues(t, 0, r.amount)
		require.EqualValues(t, 1, r.shipments, "the merchant's coupon gave this period away")
	})

	t.Run("plan change billed at once with a new period (credit proration + full new period)", func(t *testing.T) {
		// Stripe restarted the period at the change (an interval change made in
		// the Dashboard) and credits the unused half of the month whose box
		// shipped: the new period is paid partly by that box's refund. The money
		// is recorded; the box waits for support.
		f := a.fixture("price_up_old", "cus_up", "sub_up")
		a.otherPlan("price_up_new", 3000)
		shipped := a.firstBoxShipped(t, f, "up", t0)

		inv := paidInvoice(f, "in_up", t0)
		inv.BillingReason, inv.Price, inv.Amount = "subscription_update", "price_up_new", 3000
		inv.Prorations = []webhooktest.Proration{{Price: "price_up_old", UnitAmount: 2400, Amount: -1200, PeriodStart: t0, PeriodEnd: shipped.AddDate(0, 1, 0)}}
		require.Equal(t, 200, a.deliver(webhooktest.Event("evt_up", "invoice.paid", t0, inv.Object(), nil)))
		r := a.paidResult(f, "evt_up", "in_up")
		require.Equal(t, "PROCESSED", r.eventStatus)
		require.Contains(t, r.outcome, "mismatch")
		require.Equal(t, "SUCCEEDED", r.status, "the money is recorded")
		require.EqualValues(t, 1800, r.amount)
		require.Contains(t, r.mismatch, "credit 1200 on line il_in_up_p0 for "+span(t0, shipped.AddDate(0, 1, 0))+" of price price_up_old")
		require.Contains(t, r.mismatch, "new period "+span(t0, t0.AddDate(0, 1, 0))+" billed 3000")
		require.Zero(t, r.shipments, "nothing ships until support checks it")
	})

	t.Run("interval change billed in full without a credit (ours)", func(t *testing.T) {
		// changeSubscriptionPlan to another interval asks Stripe to prorate
		// nothing: the new period is billed in full at once, and ships.
		f := a.fixture("price_iv_month", "cus_iv", "sub_iv")
		var quarter string
		require.NoError(t, a.db.Raw(`INSERT INTO plans (product_id, billing_interval, amount, currency, stripe_price_id)
			SELECT product_id, 'QUARTER', 6000, 'USD', 'price_iv_quarter' FROM plans WHERE id = ? RETURNING id`, f.planID).Scan(&quarter).Error)
		a.firstBoxShipped(t, f, "iv", t0)

		inv := paidInvoice(f, "in_iv", t0)
		inv.BillingReason, inv.Price, inv.Amount, inv.PeriodEnd = "subscription_update", "price_iv_quarter", 6000, t0.AddDate(0, 3, 0)
		require.Equal(t, 200, a.deliver(webhooktest.Event("evt_iv", "invoice.paid", t0, inv.Object(), nil)))
		r := a.paidResult(f, "evt_iv", "in_iv")
		require.Empty(t, r.mismatch)
		require.EqualValues(t, 6000, r.amount)
		require.EqualValues(t, 1, r.shipments)
		require.Equal(t, quarter, r.shippedPlan, "the box of the plan the period bills")
	})

	t.Run("credit for time whose box was canceled", func(t *testing.T) {
		// The first box never went out (support canceled it): the credit gives
		// back time no box was sent for, and the new period ships.
		f := a.fixture("price_cx_old", "cus_cx", "sub_cx")
		a.otherPlan("price_cx_new", 3000)
		shipped := a.firstBoxShipped(t, f, "cx", t0)
		require.NoError(t, a.db.Exec(`UPDATE shipments SET status = 'CANCELED' WHERE stripe_invoice_id = 'in_cx_first'`).Error)

		inv := paidInvoice(f, "in_cx", t0)
		inv.BillingReason, inv.Price, inv.Amount = "subscription_update", "price_cx_new", 3000
		inv.Prorations = []webhooktest.Proration{{Price: "price_cx_old", UnitAmount: 2400, Amount: -1200, PeriodStart: t0, PeriodEnd: shipped.AddDate(0, 1, 0)}}
		require.Equal(t, 200, a.deliver(webhooktest.Event("evt_cx", "invoice.paid", t0, inv.Object(), nil)))
		r := a.paidResult(f, "evt_cx", "in_cx")
		require.Empty(t, r.mismatch)
		require.EqualValues(t, 1, r.shipments)
	})

	t.Run("renewal carrying the prorations of a change within the interval", func(t *testing.T) {
		// The change mid-period credited the old plan's unused half of a period
		// whose box shipped and charged the new plan for it; the renewal bills the
		// next period, which starts after the credited time, and ships.
		f := a.fixture("price_rn_old", "cus_rn", "sub_rn")
		newPlan := a.otherPlan("price_rn_new", 3000)
		start := t0.AddDate(0, -1, 0)
		first := paidInvoice(f, "in_rn_first", start)
		first.BillingReason, first.PeriodEnd = "subscription_create", t0
		require.Equal(t, 200, a.deliver(webhooktest.Event("evt_rn_first", "invoice.paid", start, first.Object(), nil)))
		require.EqualValues(t, 1, a.paidResult(f, "evt_rn_first", "in_rn_first").shipments)

		mid := start.AddDate(0, 0, 15)
		inv := paidInvoice(f, "in_rn", t0)
		inv.Price, inv.Amount = "price_rn_new", 3000
		inv.Prorations = []webhooktest.Proration{
			{Price: "price_rn_old", UnitAmount: 2400, Amount: -1200, PeriodStart: mid, PeriodEnd: t0},
			{Price: "price_rn_new", UnitAmount: 3000, Amount: 1500, PeriodStart: mid, PeriodEnd: t0},
		}
		require.Equal(t, 200, a.deliver(webhooktest.Event("evt_rn", "invoice.paid", t0, inv.Object(), nil)))
		r := a.paidResult(f, "evt_rn", "in_rn")
		require.Empty(t, r.mismatch)
		require.EqualValues(t, 3300, r.amount)
		require.EqualValues(t, 1, r.shipments)
		require.Equal(t, newPlan, r.shippedPlan)
	})

	t.Run("prorations alone", func(t *testing.T) {
		f := a.fixture("price_pr_old", "cus_pr", "sub_pr")
		a.otherPlan("price_pr_new", 3000)
		mid := t0.AddDate(0, 0, 15)
		inv := paidInvoice(f, "in_pr", mid)
		inv.BillingReason, inv.NoPeriodLine = "subscription_update", true
		inv.Prorations = []webhooktest.Proration{
			{Price: "price_pr_old", UnitAmount: 2400, Amount: -1200, PeriodStart: mid, PeriodEnd: t0.AddDate(0, 1, 0)},
			{Price: "price_pr_new", UnitAmount: 3000, Amount: 1500, PeriodStart: mid, PeriodEnd: t0.AddDate(0, 1, 0)},
		}
		require.Equal(t, 200, a.deliver(webhooktest.Event("evt_pr", "invoice.paid", mid, inv.Object(), nil)))
		r := a.paidResult(f, "evt_pr", "in_pr")
		require.Empty(t, r.mismatch)
		require.Equal(t, "SUCCEEDED", r.status)
		require.EqualValues(t, 300, r.amount)
		require.Zero(t, r.shipments, "the period's box shipped with the period's invoice")
	})

	_, metrics := a.get("/metrics")
	require.False(t, strings.Contains(metrics, `kind="amount_mismatch"`), "an amount mismatch was alerted")
	require.True(t, strings.Contains(metrics, `scoville_payment_alerts_total{kind="credited_shipped_period"} 1`+"\n"), "the credited shipped period is alerted")
	require.True(t, strings.Contains(metrics, `scoville_payments_total{outcome="succeeded"} 12`+"\n"), "the trial is no payment")
}

// What does not add up is still refused: recorded, alerted, shipped never, and the
// mismatch names the figure that differs and what it should have been.
func TestWebhookRealMismatchesAreRefusedByFigure(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true})
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	cases := []struct {
		name  string
		edit  func(inv *webhooktest.Invoice)
		raw   func(obj webhooktest.Object) // after rendering: what Invoice cannot express
		wants []string
	}{
		{name: "currency", edit: func(inv *webhooktest.Invoice) { inv.Currency = "eur" }, wants: []string{"currency EUR instead of USD"}},
		{name: "price", edit: func(inv *webhooktest.Invoice) { inv.Amount = 1500 },
			wants: []string{"unit price 1500 instead of 2400", "line amount 1500 instead of 2400"}},
		{name: "no unit amount", raw: func(obj webhooktest.Object) { lineOf(obj)["price"].(webhooktest.Object)["unit_amount"] = nil },
			wants: []string{"has no unit amount instead of 2400"}},
		{name: "line amount", raw: func(obj webhooktest.Object) { lineOf(obj)["amount"] = 1500 },
			wants: []string{"line amount 1500 instead of 2400"}},
		{name: "paid more than the discounted total", edit: func(inv *webhooktest.Invoice) { inv.Discount, inv.Paid = 600, 2400 },
			wants: []string{"paid 2400, more than the 1800 owed"}},
		{name: "total ignores the discount", edit: func(inv *webhooktest.Invoice) { inv.Discount = 600 },
			raw:   func(obj webhooktest.Object) { obj["total"], obj["amount_due"], obj["amount_paid"] = 2400, 2400, 2400 },
			wants: []string{"total 2400 instead of 1800"}},
		{name: "zero line with a quantity", edit: func(inv *webhooktest.Invoice) { inv.Trial, inv.Quantity = true, 3 },
			wants: []string{"quantity 3 instead of 1"}},
		{name: "proration larger than a period", edit: func(inv *webhooktest.Invoice) {
			inv.BillingReason, inv.NoPeriodLine = "subscription_update", true
			inv.Prorations = []webhooktest.Proration{{Price: inv.Price, UnitAmount: 2400, Amount: 5000, PeriodStart: t0, PeriodEnd: t0.AddDate(0, 1, 0)}}
		}, wants: []string{"proration 5000", "exceeds the period's 2400"}},
		{name: "proration on a price not ours", edit: func(inv *webhooktest.Invoice) {
			inv.Prorations = []webhooktest.Proration{{Price: "price_elsewhere", UnitAmount: 2400, Amount: 100, PeriodStart: t0, PeriodEnd: t0.AddDate(0, 1, 0)}}
		}, wants: []string{"proration price price_elsewhere is not one of our plans"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := a.fixture(fmt.Sprintf("price_bad%d", i), fmt.Sprintf("cus_bad%d", i), fmt.Sprintf("sub_bad%d", i))
			inv := paidInvoice(f, fmt.Sprintf("in_bad%d", i), t0)
			if c.edit != nil {
				c.edit(&inv)
			}
			obj := inv.Object()
			if c.raw != nil {
				c.raw(obj)
			}
			eventID := fmt.Sprintf("evt_bad%d", i)
			require.Equal(t, 200, a.deliver(webhooktest.Event(eventID, "invoice.paid", t0, obj, nil)))
			r := a.paidResult(f, eventID, inv.ID)
			require.Equal(t, "PROCESSED", r.eventStatus)
			require.Contains(t, r.outcome, "mismatch")
			require.EqualValues(t, 1, r.payments, "the money is recorded")
			for _, w := range c.wants {
				require.Contains(t, r.mismatch, w)
			}
			require.Zero(t, r.shipments, "nothing ships until support checks it")
		})
	}
	_, metrics := a.get("/metrics")
	require.True(t, strings.Contains(metrics, fmt.Sprintf(`scoville_payment_alerts_total{kind="amount_mismatch"} %d`+"\n", len(cases))),
		"one amount_mismatch alert per case")
}

// lineOf is the period line of a rendered invoice (its last line).
func lineOf(obj webhooktest.Object) webhooktest.Object {
	data := obj["lines"].(webhooktest.Object)["data"].([]any)
	return data[len(data)-1].(webhooktest.Object)
}

// Reconciliation reads a trial's paid invoice for nothing as the webhook does: no
// payment, no shipment, and no "payment missing" finding, on this run or the next.
func TestReconciliationFindsNothingMissingInATrial(t *testing.T) {
	t.Parallel()
	s := opsShop(t, false)
	require.NoError(t, s.db.Exec(`UPDATE plans SET trial_days = 14 WHERE id = ?`, hotMonthly).Error)
	id, _ := s.subscribe(s.token("trial-owner"), "trial-create", hotMonthly)
	ctx := context.Background()

	rep, err := s.app.Reconciler().Run(ctx)
	require.NoError(t, err)
	require.Equal(t, "TRIALING", s.status(id), "the status Stripe reported at creation")
	require.Empty(t, rep.Findings)
	require.Equal(t, 1, rep.Invoices, "the trial's invoice was looked at")
	require.Zero(t, s.count(`SELECT count(*) FROM payments`))
	require.Zero(t, s.count(`SELECT count(*) FROM shipments`))

	rep, err = s.app.Reconciler().Run(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
}
