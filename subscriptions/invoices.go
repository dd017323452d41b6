package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/fulfilment"
	"github.com/scoville/scoville/gateway"
	liveupdates "github.com/scoville/scoville/live" // "live" names a func of this package
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/money"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/outbox"
	"github.com/scoville/scoville/payments"
)

// subscriptionFor returns our locked subscription for an invoice: the row we have,
// or one made from the subscription Prepare read from Stripe. nil: not ours.
func (s *Syncer) subscriptionFor(ctx context.Context, tx *gorm.DB, stripeSubID string, read *gateway.Subscription) (*models.Subscription, error) {
	gs := gateway.Subscription{ID: stripeSubID}
	if read != nil && read.ID == stripeSubID {
		gs = *read
	}
	sub, _, err := s.ensureSubscription(ctx, tx, gs, nil)
	return sub, err
}

// recordPaid makes the payment of a paid invoice SUCCEEDED and its one shipment,
// after checking what Stripe charged against the plan we sold (PAY-3). It is safe
// to run any number of times for one invoice. fresh is false when st is older
// than the payment's last event: then only what is missing is added. A trial's
// invoice for nothing records no payment and ships nothing (nil payment). A
// paid period whose invoice credits time a box was already sent for is held as
// a mismatch too (creditedShipped): recorded, alerted, not shipped. locked is
// the invoice's payment as the caller locked it in tx (payments.Lock; nil: none).
// plan is the plan, with its product, that the invoice's period line bills (nil:
// none read), for the caller to reuse.
func (s *Syncer) recordPaid(ctx context.Context, tx *gorm.DB, st *stamp, inv gateway.Invoice, sub *models.Subscription, locked *models.Payment) (pay *models.Payment, outcome string, plan *models.Plan, err error) {
	pay, outcome, line, err := s.recordPaidLine(ctx, tx, st, inv, sub, locked)
	if line != nil {
		plan = line.plan
	}
	return pay, outcome, plan, err
}

// recordPaidLine is recordPaid, returning the period line it read.
func (s *Syncer) recordPaidLine(ctx context.Context, tx *gorm.DB, st *stamp, inv gateway.Invoice, sub *models.Subscription, locked *models.Payment) (*models.Payment, string, *periodLine, error) {
	erased, err := customers.Erased(ctx, tx, sub.CustomerID)
	if err != nil {
		return nil, "", nil, err
	}
	if erased {
		inv = withoutPersonal(inv)
	}
	line, mismatch, err := s.checkCharged(tx, inv)
	if err != nil {
		return nil, "", nil, err
	}
	kind := "amount_mismatch"
	if mismatch == "" && line != nil && !line.trial {
		credited, err := creditedShipped(tx, inv, sub, line)
		if err != nil {
			return nil, "", nil, err
		}
		if credited != "" {
			mismatch, kind = credited, alertCreditedShippedPeriod
		}
	}
	if mismatch == "" && line != nil && line.trial && inv.Total == 0 && inv.AmountPaid == 0 {
		return nil, "trial: nothing charged, and nothing ships until the first paid period", line, nil
	}
	pay, isNew := payments.ForInvoiceLocked(locked, inv, sub)
	fresh := isNew || st == nil || st.newer(pay.ProviderUpdatedAt, pay.ProviderEventSeq)
	if fresh {
		payments.SetPaid(pay, inv.AmountPaid, inv.Currency)
		if st != nil {
			pay.ProviderUpdatedAt, pay.ProviderEventSeq = &st.created, &st.seq
		}
	}
	if pay.PaidAt == nil {
		pay.PaidAt = timePtr(inv.PaidAt)
	}
	if mismatch != "" {
		pay.Mismatch = &mismatch
	}
	if err := payments.Save(tx, pay, isNew); err != nil {
		return nil, "", nil, err
	}
	switch {
	case mismatch != "":
		msg := "paid invoice does not match the plan we sold; nothing ships until support checks it"
		if kind == alertCreditedShippedPeriod {
			msg = "paid period comes with a credit for time whose box shipped; nothing ships until support checks it"
		}
		s.metrics.alerts.WithLabelValues(kind).Inc()
		s.logger.WarnContext(ctx, msg,
			"alert", kind, "payment_id", pay.ID, "subscription_id", sub.ID, "stripe_invoice_id", inv.ID, "mismatch", mismatch)
		return pay, "payment recorded; mismatch: " + mismatch, line, nil
	case line == nil:
		return pay, "payment recorded; the invoice bills no period, so nothing ships", line, nil
	case line.trial:
		return pay, "payment recorded; the period is a trial, so nothing ships", line, nil
	case erased:
		// Nobody to ship to: the person and their address are gone (DAT-3).
		s.logger.WarnContext(ctx, "paid period of an erased customer; nothing ships", "payment_id", pay.ID,
			"subscription_id", sub.ID, "stripe_invoice_id", inv.ID)
		return pay, "payment recorded; the customer is erased, so nothing ships", line, nil
	}
	addr := sub.ShippingAddress
	if addr.Line1 == "" && inv.CustomerShipping != nil {
		addr = addressFrom(*inv.CustomerShipping)
	}
	ship := models.Shipment{
		SubscriptionID: sub.ID, CustomerID: sub.CustomerID, PaymentID: pay.ID, PlanID: line.planID,
		StripeInvoiceID: inv.ID, PeriodStart: line.PeriodStart.UTC(), PeriodEnd: line.PeriodEnd.UTC(),
		Address: addr,
	}
	created, err := fulfilment.Create(ctx, tx, &ship, line.plan.Name())
	if err != nil {
		return nil, "", nil, err
	}
	if created {
		s.logger.InfoContext(ctx, "shipment created", "shipment_id", ship.ID, "subscription_id", sub.ID, "payment_id", pay.ID,
			"stripe_invoice_id", inv.ID)
	}
	return pay, "payment succeeded; shipment for the period", line, nil
}

// periodLine is the invoice line that bills the subscription's period, and the
// plan whose price it charged. A trial's line bills the period at 0.
type periodLine struct {
	gateway.InvoiceLine
	planID string
	plan   *models.Plan // with its product
	trial  bool
}

// maxMismatch is the longest mismatch text stored (payments.mismatch).
const maxMismatch = 500

// checkCharged compares what a paid invoice billed with the plans we sell and
// returns the line billing a period, or a mismatch naming each figure that
// differs and what it should be. Stripe's own invoices pass: a trial's line of 0
// at the plan's unit price, proration credits and charges (each at most one
// period of a plan of ours), one-off invoice items, discounts and tax. The total
// must be the lines less the discounts plus tax and shipping, and no more may be
// paid than that and what the customer owed before. A paid invoice without a
// period line (prorations alone) ships nothing and is not a mismatch.
func (s *Syncer) checkCharged(tx *gorm.DB, inv gateway.Invoice) (*periodLine, string, error) {
	var (
		period   *periodLine
		problems []string
		lines    int64
	)
	for _, l := range inv.Lines {
		lines += l.Amount
		if !strings.EqualFold(l.Currency, inv.Currency) {
			problems = append(problems, "line "+l.ID+" in "+l.Currency+" on an invoice in "+inv.Currency)
		}
		if l.Discount < 0 || l.Discount > max(l.Amount, 0) {
			problems = append(problems, "discount "+figure(l.Discount)+" on line "+l.ID+" of "+figure(l.Amount))
		}
		if !l.Proration && l.Type != "subscription" {
			continue // a one-off invoice item: money, but no period and no plan
		}
		plan, err := planByPrice(tx, l.PriceID)
		if err != nil {
			return nil, "", err
		}
		switch {
		case plan == nil && l.Proration:
			problems = append(problems, "proration price "+l.PriceID+" is not one of our plans")
		case plan == nil:
			problems = append(problems, "price "+l.PriceID+" is not one of our plans")
		case l.Proration:
			problems = append(problems, prorationProblems(l, plan)...)
		case period != nil:
			problems = append(problems, "line "+l.ID+" bills a second period")
		default:
			var p []string
			period, p = periodProblems(l, plan)
			problems = append(problems, p...)
		}
	}
	if len(inv.Lines) > 0 && !inv.MoreLines {
		if want := lines - inv.Discount + inv.ExclusiveTax + inv.AmountShipping; inv.Total != want {
			problems = append(problems, "total "+figure(inv.Total)+" instead of "+figure(want)+" (lines "+figure(lines)+
				" less discounts "+figure(inv.Discount)+" plus tax "+figure(inv.ExclusiveTax)+" and shipping "+figure(inv.AmountShipping)+")")
		}
	}
	if owed := max(inv.Total, 0) + max(inv.StartingBalance, 0); inv.AmountPaid > owed {
		problems = append(problems, "paid "+figure(inv.AmountPaid)+", more than the "+figure(owed)+" owed")
	}
	if len(problems) > 0 {
		return nil, truncate(strings.Join(problems, "; "), maxMismatch), nil
	}
	return period, "", nil
}

// alertCreditedShippedPeriod is the alert kind of a paid period held by
// creditedShipped.
const alertCreditedShippedPeriod = "credited_shipped_period"

// creditedShipped names each credit of the invoice that gives back time a box
// of sub was sent for, while the invoice's new period starts inside that time:
// the shape of a plan change that restarted the period with prorations (an
// interval change made in Stripe's Dashboard or customer portal). Shipping that
// period would send a box paid for by the refund of one already sent. Credits
// paired with a later period (a renewal carrying the prorations of a change
// within the interval) and credits of time no box was sent for pass. "": none.
func creditedShipped(tx *gorm.DB, inv gateway.Invoice, sub *models.Subscription, period *periodLine) (string, error) {
	var found []string
	for _, l := range inv.Lines {
		if !l.Proration || l.Amount >= 0 || !overlaps(l.PeriodStart, l.PeriodEnd, period.PeriodStart, period.PeriodEnd) {
			continue
		}
		var ship models.Shipment
		err := tx.Where("subscription_id = ? AND stripe_invoice_id <> ? AND status <> ? AND period_start < ? AND period_end > ?",
			sub.ID, inv.ID, models.ShipmentCanceled, l.PeriodEnd.UTC(), l.PeriodStart.UTC()).
			Order("period_start").Take(&ship).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("subscriptions: shipment of credited time: %w", err)
		}
		found = append(found, "credit "+figure(-l.Amount)+" on line "+l.ID+" for "+span(l.PeriodStart, l.PeriodEnd)+
			" of price "+l.PriceID+", time the box of "+span(ship.PeriodStart, ship.PeriodEnd)+" (shipment "+ship.ID+
			") was sent for, with a new period "+span(period.PeriodStart, period.PeriodEnd)+" billed "+figure(period.Amount))
	}
	return truncate(strings.Join(found, "; "), maxMismatch), nil
}

// overlaps reports whether [aStart, aEnd) and [bStart, bEnd) share time.
func overlaps(aStart, aEnd, bStart, bEnd time.Time) bool {
	return aStart.Before(bEnd) && bStart.Before(aEnd)
}

// span writes a period as mismatch texts name it.
func span(start, end time.Time) string {
	return start.UTC().Format(time.RFC3339) + " to " + end.UTC().Format(time.RFC3339)
}

// periodProblems checks the line billing a period against the plan whose price
// it names: a trial bills it at 0, anything else at the plan's price.
func periodProblems(l gateway.InvoiceLine, plan *models.Plan) (*periodLine, []string) {
	var problems []string
	if !strings.EqualFold(l.Currency, plan.Currency) {
		problems = append(problems, "currency "+l.Currency+" instead of "+plan.Currency)
	}
	if l.Quantity != 1 {
		problems = append(problems, "quantity "+figure(l.Quantity)+" instead of 1")
	}
	switch {
	case l.UnitAmount == 0:
		problems = append(problems, "price "+l.PriceID+" has no unit amount instead of "+figure(plan.Amount))
	case l.UnitAmount != plan.Amount:
		problems = append(problems, "unit price "+figure(l.UnitAmount)+" instead of "+figure(plan.Amount))
	}
	trial := l.Amount == 0
	if want := plan.Amount * max(l.Quantity, 1); !trial && l.Amount != want {
		problems = append(problems, "line amount "+figure(l.Amount)+" instead of "+figure(want))
	}
	return &periodLine{InvoiceLine: l, planID: plan.ID, plan: plan, trial: trial}, problems
}

// prorationProblems checks a proration line: a credit or charge for part of a
// period of one of our plans, in its currency, never more than the whole period.
func prorationProblems(l gateway.InvoiceLine, plan *models.Plan) []string {
	var problems []string
	if !strings.EqualFold(l.Currency, plan.Currency) {
		problems = append(problems, "proration currency "+l.Currency+" instead of "+plan.Currency)
	}
	if whole := plan.Amount * max(l.Quantity, 1); l.Amount > whole || l.Amount < -whole {
		problems = append(problems, "proration "+figure(l.Amount)+" on line "+l.ID+" exceeds the period's "+figure(whole))
	}
	return problems
}

// figure writes an amount in minor units, as mismatch texts name them.
func figure(n int64) string { return strconv.FormatInt(n, 10) }

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// withoutPersonal is inv without what would put an erased customer's personal
// data back into our rows: the shipping address and the hosted invoice link (a
// bearer link to a page showing the billing name and address). Ids, amounts and
// lines stay, so the payment is still recorded.
func withoutPersonal(inv gateway.Invoice) gateway.Invoice {
	inv.HostedInvoiceURL, inv.CustomerShipping = "", nil
	return inv
}

// applyInvoicePaid records a paid invoice: payment, shipment, and a receipt.
func (s *Syncer) applyInvoicePaid(ctx context.Context, tx *gorm.DB, o origin, inv gateway.Invoice, read *gateway.Subscription) (Effect, error) {
	st := o.stamp
	sub, err := s.subscriptionFor(ctx, tx, inv.SubscriptionID, read)
	if err != nil {
		return Effect{}, err
	}
	if sub == nil {
		return Effect{Ignored: true, Outcome: "invoice of a subscription not ours"}, nil
	}
	locked, paidBefore, completeBefore, err := lockPaidState(tx, inv.ID)
	if err != nil {
		return Effect{}, err
	}
	pay, outcome, plan, err := s.recordPaid(ctx, tx, &st, inv, sub, locked)
	if err != nil {
		return Effect{}, err
	}
	if pay == nil {
		return Effect{Outcome: outcome}, nil
	}
	var label string
	if plan != nil && plan.ID == sub.PlanID {
		label = labelOf(plan) // the plan the invoice bills, read once
	} else if label, err = planLabel(tx, sub.PlanID); err != nil {
		return Effect{}, err
	}
	data := map[string]string{
		notifications.DataAmount: money.Format(pay.AmountMinor, pay.Currency),
		notifications.DataPlan:   label,
	}
	if err := s.enqueue(ctx, tx, sub.CustomerID, notifications.KindPaymentSucceeded, &sub.ID, &pay.ID, data, "invoice:"+inv.ID+":paid"); err != nil {
		return Effect{}, err
	}
	if paidBefore {
		// A replay, or a second report of the payment: counted and logged once.
		if completeBefore {
			outcome = "nothing new"
		}
		return Effect{Outcome: "payment already recorded; " + outcome}, nil
	}
	s.metrics.payments.WithLabelValues("succeeded").Inc()
	s.logger.InfoContext(ctx, "payment succeeded", "payment_id", pay.ID, "subscription_id", sub.ID, "stripe_invoice_id", inv.ID,
		"amount", pay.AmountMinor, "currency", pay.Currency, "event_id", o.ref)
	return Effect{Outcome: outcome}, nil
}

// applyInvoiceFailed records a failed (or, actionNeeded, authentication-blocked)
// renewal: the payment's status, PAST_DUE on the subscription, and a notice telling
// the customer how to fix it (SUB-4). Stripe's own retry schedule stays in charge.
func (s *Syncer) applyInvoiceFailed(ctx context.Context, tx *gorm.DB, o origin, actionNeeded bool, inv gateway.Invoice, read *gateway.Subscription) (Effect, error) {
	st := o.stamp
	sub, err := s.subscriptionFor(ctx, tx, inv.SubscriptionID, read)
	if err != nil {
		return Effect{}, err
	}
	if sub == nil {
		return Effect{Ignored: true, Outcome: "invoice of a subscription not ours"}, nil
	}
	status, kind, outcome := models.PaymentFailed, notifications.KindPaymentFailed, "payment failed"
	if actionNeeded {
		status, kind, outcome = models.PaymentPending, notifications.KindPaymentActionRequired, "payment needs the customer's authentication"
	}
	erased, err := customers.Erased(ctx, tx, sub.CustomerID)
	if err != nil {
		return Effect{}, err
	}
	if erased {
		inv = withoutPersonal(inv)
	}
	pay, isNew, err := payments.ForInvoice(tx, inv, sub)
	if err != nil {
		return Effect{}, err
	}
	if !isNew && !st.newer(pay.ProviderUpdatedAt, pay.ProviderEventSeq) || pay.Status == models.PaymentSucceeded ||
		pay.Status == models.PaymentRefunded || pay.Status == models.PaymentPartiallyRefunded {
		// A paid invoice cannot fail afterwards: this report is older than what we know.
		return Effect{Outcome: "older than the payment's state; recorded only"}, nil
	}
	pay.AmountMinor, pay.Currency, pay.Status = inv.AmountDue, strings.ToUpper(inv.Currency), status
	pay.ProviderUpdatedAt, pay.ProviderEventSeq = &st.created, &st.seq
	if err := payments.Save(tx, pay, isNew); err != nil {
		return Effect{}, err
	}
	renewal := inv.BillingReason != "subscription_create"
	if renewal && (sub.Status == models.SubscriptionActive || sub.Status == models.SubscriptionTrialing) &&
		st.newer(sub.ProviderUpdatedAt, sub.ProviderEventSeq) {
		sub.Status = models.SubscriptionPastDue
		sub.ProviderUpdatedAt, sub.ProviderEventSeq = &st.created, &st.seq
		if err := tx.Save(sub).Error; err != nil {
			return Effect{}, fmt.Errorf("subscriptions: past due: %w", err)
		}
		if err := liveupdates.Announce(tx, sub.ID); err != nil {
			return Effect{}, err
		}
		if err := outbox.SubscriptionUpdated(ctx, tx, sub); err != nil {
			return Effect{}, err
		}
		outcome += "; subscription past due"
	}
	label, err := planLabel(tx, sub.PlanID)
	if err != nil {
		return Effect{}, err
	}
	data := map[string]string{
		notifications.DataAmount: money.Format(inv.AmountDue, strings.ToUpper(inv.Currency)),
		notifications.DataPlan:   label,
		notifications.DataURL:    inv.HostedInvoiceURL,
	}
	if !inv.NextPaymentAttempt.IsZero() {
		data[notifications.DataNextAttempt] = inv.NextPaymentAttempt.UTC().Format(time.RFC3339)
	}
	if err := s.enqueue(ctx, tx, sub.CustomerID, kind, &sub.ID, &pay.ID, data, o.ref+":"+string(kind)); err != nil {
		return Effect{}, err
	}
	s.metrics.payments.WithLabelValues(strings.ToLower(string(status))).Inc()
	s.logger.WarnContext(ctx, "payment not completed", "payment_id", pay.ID, "subscription_id", sub.ID, "stripe_invoice_id", inv.ID,
		"status", string(status), "attempt_count", inv.AttemptCount, "event_id", o.ref)
	return Effect{Outcome: outcome}, nil
}
