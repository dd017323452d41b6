package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/outbox"
)

// Event is one verified Stripe event as the inbox stored it. Seq is its arrival
// order, which breaks ties between events created in the same second.
type Event struct {
	ID                 string
	ProviderEventID    string
	Type               string
	Created            time.Time
	Seq                int64
	Object             json.RawMessage // data.object
	PreviousAttributes json.RawMessage // data.previous_attributes, for *.updated
	// RequestKey is request.idempotency_key: the key of the API request whose change
	// the event reports ("" for a change Stripe or the Dashboard made).
	RequestKey string
}

// Effect is what applying an event did, kept with the event for support.
type Effect struct {
	Ignored bool   // nothing of ours is concerned (a type we do not act on, an object not ours)
	Outcome string // short; never personal data
}

// ErrMalformed marks an event whose object cannot be read; retrying cannot help.
var ErrMalformed = errors.New("subscriptions: malformed event object")

// Prepared is an event's object parsed, plus whatever had to be read from Stripe
// first, as its type's handler left it for Apply. Reads happen before the
// transaction so that no lock is held over a network call. The zero value applies
// as an event of no effect.
type Prepared struct {
	value  any    // owned by the handler of the event's type
	ignore string // why the event concerns nothing of ours
}

// Event types acted on; every other type is stored and IGNORED. Each has exactly
// one entry in eventHandlers.
const (
	evCheckoutCompleted   = "checkout.session.completed"
	evSubCreated          = "customer.subscription.created"
	evSubUpdated          = "customer.subscription.updated"
	evSubDeleted          = "customer.subscription.deleted"
	evSubPaused           = "customer.subscription.paused"
	evSubResumed          = "customer.subscription.resumed"
	evInvoicePaid         = "invoice.paid"
	evInvoiceFailed       = "invoice.payment_failed"
	evInvoiceActionNeeded = "invoice.payment_action_required"
	evChargeRefunded      = "charge.refunded"
	evDisputeCreated      = "charge.dispute.created"
	evFraudWarning        = "radar.early_fraud_warning.created"
)

// eventHandlers is the one list of the Stripe event types that have an effect here:
// adding a type is adding its entry (and its handler). Handles, Prepare and Apply
// all read it.
var eventHandlers = newRegistry(
	handle(evCheckoutCompleted, (*Syncer).prepareCheckout, (*Syncer).applyCheckout),
	handle(evSubCreated, prepareSubscription, subscriptionApplier(notifications.SubscriptionCreated)),
	handle(evSubUpdated, prepareSubscription, subscriptionApplier(notifications.SubscriptionUpdated)),
	handle(evSubDeleted, prepareSubscription, subscriptionApplier(notifications.SubscriptionEnded)),
	handle(evSubPaused, prepareSubscription, subscriptionApplier(notifications.SubscriptionPaused)),
	handle(evSubResumed, prepareSubscription, subscriptionApplier(notifications.SubscriptionResumed)),
	handle(evInvoicePaid, (*Syncer).prepareInvoice, func(s *Syncer, ctx context.Context, tx *gorm.DB, ev Event, p preparedInvoice) (Effect, error) {
		return s.applyInvoicePaid(ctx, tx, eventOrigin(ev), p.invoice, p.subscription)
	}),
	handle(evInvoiceFailed, (*Syncer).prepareInvoice, invoiceFailedApplier(false)),
	handle(evInvoiceActionNeeded, (*Syncer).prepareInvoice, invoiceFailedApplier(true)),
	handle(evChargeRefunded, (*Syncer).prepareRefund, func(s *Syncer, ctx context.Context, tx *gorm.DB, ev Event, p preparedCharge) (Effect, error) {
		return s.applyRefund(ctx, tx, eventOrigin(ev), p)
	}),
	handle(evDisputeCreated, (*Syncer).prepareDispute, func(s *Syncer, ctx context.Context, tx *gorm.DB, ev Event, p preparedDispute) (Effect, error) {
		return s.applyDispute(ctx, tx, eventOrigin(ev), p)
	}),
	handle(evFraudWarning, (*Syncer).prepareFraudWarning, func(s *Syncer, ctx context.Context, tx *gorm.DB, ev Event, p preparedFraudWarning) (Effect, error) {
		return s.applyFraudWarning(ctx, tx, eventOrigin(ev), p)
	}),
)

// eventHandler is one entry of the registry: what to read for an event of its type
// before the transaction, and how to apply it inside.
type eventHandler struct {
	eventType string
	prepare   func(s *Syncer, ctx context.Context, ev Event) (any, string, error)
	apply     func(s *Syncer, ctx context.Context, tx *gorm.DB, ev Event, value any) (Effect, error)
}

// handle makes the entry of eventType from a handler's two halves: prepare parses
// the object and reads from Stripe what is missing (or says why the event concerns
// nothing of ours); apply makes the effect from what prepare returned, typed.
func handle[T any](eventType string,
	prepare func(s *Syncer, ctx context.Context, ev Event) (T, string, error),
	apply func(s *Syncer, ctx context.Context, tx *gorm.DB, ev Event, value T) (Effect, error),
) eventHandler {
	return eventHandler{
		eventType: eventType,
		prepare: func(s *Syncer, ctx context.Context, ev Event) (any, string, error) {
			return prepare(s, ctx, ev)
		},
		apply: func(s *Syncer, ctx context.Context, tx *gorm.DB, ev Event, value any) (Effect, error) {
			v, ok := value.(T)
			if !ok {
				return Effect{}, fmt.Errorf("subscriptions: %s: prepared as %T, not by its handler", eventType, value)
			}
			return apply(s, ctx, tx, ev, v)
		},
	}
}

// registry finds an event type's entry.
type registry map[string]eventHandler

// newRegistry indexes the entries; a type registered twice is a programming error.
func newRegistry(entries ...eventHandler) registry {
	r := make(registry, len(entries))
	for _, e := range entries {
		if _, dup := r[e.eventType]; dup {
			panic("subscriptions: event type registered twice: " + e.eventType)
		}
		r[e.eventType] = e
	}
	return r
}

// types lists the registered event types, sorted.
func (r registry) types() []string {
	out := make([]string, 0, len(r))
	for t := range r {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Handles reports whether an event type has an effect here (an entry in the registry).
func Handles(eventType string) bool {
	_, ok := eventHandlers[eventType]
	return ok
}

// HandledTypes lists, sorted, every event type that has an effect here: the
// events a Stripe webhook endpoint must be subscribed to.
func HandledTypes() []string { return eventHandlers.types() }

// Prepare parses the event's object and reads from Stripe what we do not know yet
// (an invoice paid before its subscription reached us, say): such an event is
// resolved, never dropped. A type without an entry is prepared as ignored.
func (s *Syncer) Prepare(ctx context.Context, ev Event) (*Prepared, error) {
	h, ok := eventHandlers[ev.Type]
	if !ok {
		return &Prepared{ignore: "event type not handled"}, nil
	}
	v, ignore, err := h.prepare(s, ctx, ev)
	if err != nil {
		return nil, err
	}
	return &Prepared{value: v, ignore: ignore}, nil
}

// Apply makes the event's effect inside tx, the transaction that also marks the
// event done, so that the effect happens exactly once however often the event or
// its job runs.
func (s *Syncer) Apply(ctx context.Context, tx *gorm.DB, ev Event, p *Prepared) (Effect, error) {
	if p.ignore != "" {
		return Effect{Ignored: true, Outcome: p.ignore}, nil
	}
	h, ok := eventHandlers[ev.Type]
	if !ok || p.value == nil {
		return Effect{Ignored: true, Outcome: "event type not handled"}, nil
	}
	// The event's messages share one read of the endpoints subscribed.
	ctx = outbox.WithEndpointsReadOnce(ctx)
	return h.apply(s, ctx, tx.WithContext(ctx), ev, p.value)
}

// malformed marks an object of ev that cannot be read.
func malformed(ev Event, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrMalformed, ev.Type, err)
}

// origin is what reported a change to apply: a Stripe event, or a read of Stripe's
// state (reconciliation) that stands in for one. Its stamp orders it among the
// reports of the same object; ref names it in notices' dedupe keys and in logs.
type origin struct {
	stamp      stamp
	ref        string
	requestKey string // the idempotency key of the API request that caused it, if any
}

// eventOrigin is the origin of a Stripe event.
func eventOrigin(ev Event) origin {
	return origin{stamp: stamp{created: ev.Created.UTC(), seq: ev.Seq}, ref: ev.ProviderEventID, requestKey: ev.RequestKey}
}

// --- What each handler reads before the transaction.

// prepareSubscription parses a customer.subscription.* event's object.
func prepareSubscription(_ *Syncer, _ context.Context, ev Event) (gateway.Subscription, string, error) {
	gs, err := gateway.SubscriptionFromJSON(ev.Object)
	if err != nil {
		return gateway.Subscription{}, "", malformed(ev, err)
	}
	return gs, "", nil
}

// subscriptionApplier applies a customer.subscription.* event that reports on.
func subscriptionApplier(on notifications.SubscriptionEvent) func(*Syncer, context.Context, *gorm.DB, Event, gateway.Subscription) (Effect, error) {
	return func(s *Syncer, ctx context.Context, tx *gorm.DB, ev Event, gs gateway.Subscription) (Effect, error) {
		return s.applySubscriptionEvent(ctx, tx, ev, on, gs)
	}
}

// preparedCheckout is a completed Checkout session, and its subscription when we
// had no row for it yet.
type preparedCheckout struct {
	session      gateway.CompletedCheckout
	subscription *gateway.Subscription
}

func (s *Syncer) prepareCheckout(ctx context.Context, ev Event) (preparedCheckout, string, error) {
	cs, err := gateway.CheckoutSessionFromJSON(ev.Object)
	if err != nil {
		return preparedCheckout{}, "", malformed(ev, err)
	}
	p := preparedCheckout{session: cs}
	if cs.Mode != "subscription" || cs.SubscriptionID == "" {
		return p, "checkout session is not for a subscription", nil
	}
	var ignore string
	p.subscription, ignore, err = s.readUnknownSubscription(ctx, cs.SubscriptionID)
	return p, ignore, err
}

// preparedInvoice is an invoice.* event's invoice, and its subscription when we had
// no row for it yet.
type preparedInvoice struct {
	invoice      gateway.Invoice
	subscription *gateway.Subscription
}

func (s *Syncer) prepareInvoice(ctx context.Context, ev Event) (preparedInvoice, string, error) {
	inv, err := gateway.InvoiceFromJSON(ev.Object)
	if err != nil {
		return preparedInvoice{}, "", malformed(ev, err)
	}
	p := preparedInvoice{invoice: inv}
	if inv.SubscriptionID == "" {
		return p, "invoice is not for a subscription", nil
	}
	var ignore string
	p.subscription, ignore, err = s.readUnknownSubscription(ctx, inv.SubscriptionID)
	return p, ignore, err
}

// invoiceFailedApplier applies invoice.payment_failed, or (actionNeeded)
// invoice.payment_action_required.
func invoiceFailedApplier(actionNeeded bool) func(*Syncer, context.Context, *gorm.DB, Event, preparedInvoice) (Effect, error) {
	return func(s *Syncer, ctx context.Context, tx *gorm.DB, ev Event, p preparedInvoice) (Effect, error) {
		return s.applyInvoiceFailed(ctx, tx, eventOrigin(ev), actionNeeded, p.invoice, p.subscription)
	}
}

// chargeRead is what Prepare read from Stripe for a charge whose payment we do not
// know yet: its invoice, and the invoice's subscription when we had no row for it.
type chargeRead struct {
	invoice      *gateway.Invoice
	subscription *gateway.Subscription
}

// preparedCharge is a charge.refunded event's charge.
type preparedCharge struct {
	charge gateway.Charge
	read   chargeRead
}

func (s *Syncer) prepareRefund(ctx context.Context, ev Event) (preparedCharge, string, error) {
	ch, err := gateway.ChargeFromJSON(ev.Object)
	if err != nil {
		return preparedCharge{}, "", malformed(ev, err)
	}
	read, ignore, err := s.readUnknownPayment(ctx, ch.ID, ch.PaymentIntentID, ch.InvoiceID)
	return preparedCharge{charge: ch, read: read}, ignore, err
}

// preparedDispute is a charge.dispute.created event's dispute.
type preparedDispute struct {
	dispute gateway.Dispute
	read    chargeRead
}

func (s *Syncer) prepareDispute(ctx context.Context, ev Event) (preparedDispute, string, error) {
	d, err := gateway.DisputeFromJSON(ev.Object)
	if err != nil {
		return preparedDispute{}, "", malformed(ev, err)
	}
	read, ignore, err := s.readUnknownPayment(ctx, d.ChargeID, d.PaymentIntentID, "")
	return preparedDispute{dispute: d, read: read}, ignore, err
}

// preparedFraudWarning is a radar.early_fraud_warning.created event's warning.
type preparedFraudWarning struct {
	warning gateway.EarlyFraudWarning
	read    chargeRead
}

func (s *Syncer) prepareFraudWarning(ctx context.Context, ev Event) (preparedFraudWarning, string, error) {
	w, err := gateway.EarlyFraudWarningFromJSON(ev.Object)
	if err != nil {
		return preparedFraudWarning{}, "", malformed(ev, err)
	}
	read, ignore, err := s.readUnknownPayment(ctx, w.ChargeID, w.PaymentIntentID, "")
	return preparedFraudWarning{warning: w, read: read}, ignore, err
}

// readUnknownSubscription reads a subscription from Stripe when we have no row for
// it; nil with no reason when we have one. ignore says why the report concerns
// nothing of ours (Stripe does not know it).
func (s *Syncer) readUnknownSubscription(ctx context.Context, stripeID string) (gs *gateway.Subscription, ignore string, err error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&models.Subscription{}).Where("stripe_subscription_id = ?", stripeID).Count(&n).Error; err != nil {
		return nil, "", fmt.Errorf("subscriptions: look up subscription: %w", err)
	}
	if n > 0 {
		return nil, "", nil
	}
	read, err := s.gw.GetSubscription(ctx, stripeID)
	if errors.Is(err, gateway.ErrNotFound) {
		return nil, "subscription unknown at Stripe", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("subscriptions: read subscription from Stripe: %w", err)
	}
	return &read, "", nil
}

// readUnknownPayment reads a charge's invoice (and its subscription) from Stripe when
// we have no payment for the charge yet, so a refund or dispute is never lost.
func (s *Syncer) readUnknownPayment(ctx context.Context, chargeID, paymentIntentID, invoiceID string) (chargeRead, string, error) {
	if paymentIntentID != "" {
		var n int64
		if err := s.db.WithContext(ctx).Model(&models.Payment{}).Where("stripe_payment_intent_id = ?", paymentIntentID).Count(&n).Error; err != nil {
			return chargeRead{}, "", fmt.Errorf("subscriptions: look up payment: %w", err)
		}
		if n > 0 {
			return chargeRead{}, "", nil
		}
	}
	if invoiceID == "" && chargeID != "" {
		ch, err := s.gw.GetCharge(ctx, chargeID)
		if errors.Is(err, gateway.ErrNotFound) {
			return chargeRead{}, "charge unknown at Stripe", nil
		}
		if err != nil {
			return chargeRead{}, "", fmt.Errorf("subscriptions: read charge from Stripe: %w", err)
		}
		invoiceID = ch.InvoiceID
	}
	if invoiceID == "" {
		return chargeRead{}, "charge is not for an invoice", nil
	}
	var n int64
	if err := s.db.WithContext(ctx).Model(&models.Payment{}).Where("stripe_invoice_id = ?", invoiceID).Count(&n).Error; err != nil {
		return chargeRead{}, "", fmt.Errorf("subscriptions: look up payment: %w", err)
	}
	if n > 0 {
		return chargeRead{}, "", nil
	}
	inv, err := s.gw.GetInvoice(ctx, invoiceID)
	if errors.Is(err, gateway.ErrNotFound) {
		return chargeRead{}, "invoice unknown at Stripe", nil
	}
	if err != nil {
		return chargeRead{}, "", fmt.Errorf("subscriptions: read invoice from Stripe: %w", err)
	}
	if inv.SubscriptionID == "" {
		return chargeRead{}, "charge is not for a subscription", nil
	}
	read := chargeRead{invoice: &inv}
	gs, ignore, err := s.readUnknownSubscription(ctx, inv.SubscriptionID)
	read.subscription = gs
	return read, ignore, err
}
