package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/notifications"
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
}

// Effect is what applying an event did, kept with the event for support.
type Effect struct {
	Ignored bool   // nothing of ours is concerned (a type we do not act on, an object not ours)
	Outcome string // short; never personal data
}

// SyncGateway is the provider reads that resolve an object we do not know yet.
type SyncGateway interface {
	GetSubscription(ctx context.Context, id string) (gateway.Subscription, error)
	GetInvoice(ctx context.Context, id string) (gateway.Invoice, error)
	GetCharge(ctx context.Context, id string) (gateway.Charge, error)
}

// SyncMetrics counts payment outcomes and the anomalies that page someone (OPS-2, OPS-3).
type SyncMetrics struct {
	payments *prometheus.CounterVec
	alerts   *prometheus.CounterVec
}

// NewSyncMetrics registers the counters on reg.
func NewSyncMetrics(reg prometheus.Registerer) *SyncMetrics {
	m := &SyncMetrics{
		payments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scoville_payments_total", Help: "Payment outcomes reported by Stripe, by outcome.",
		}, []string{"outcome"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scoville_payment_alerts_total", Help: "Refunds, disputes, fraud warnings, amount mismatches and subscriptions needing review, by kind.",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.payments, m.alerts)
	}
	return m
}

// Syncer applies what Stripe reports (events, and reads of objects) to our
// subscriptions, payments and shipments: the only way their status changes (PAY-3).
type Syncer struct {
	db      *gorm.DB
	gw      SyncGateway
	notify  notifications.Inserter
	metrics *SyncMetrics
	logger  *slog.Logger
}

// NewSyncer wires the syncer. notify enqueues customer notifications in the
// transaction of the change they report.
func NewSyncer(db *gorm.DB, gw SyncGateway, notify notifications.Inserter, metrics *SyncMetrics, logger *slog.Logger) *Syncer {
	return &Syncer{db: db, gw: gw, notify: notify, metrics: metrics, logger: logger}
}

// Prepared is an event's object parsed, plus whatever had to be read from Stripe
// first. Reads happen before the transaction so that no lock is held over a network call.
type Prepared struct {
	subscription *gateway.Subscription // the event's object, or read because we lacked it
	invoice      *gateway.Invoice
	charge       *gateway.Charge
	dispute      *gateway.Dispute
	fraud        *gateway.EarlyFraudWarning
	checkout     *gateway.CompletedCheckout
	// chargeInvoice is the invoice of a charge whose payment we do not know yet.
	chargeInvoice *gateway.Invoice
	ignore        string // why the event concerns nothing of ours
}

// Event types acted on; every other type is stored and IGNORED.
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

// Handles reports whether an event type has an effect here.
func Handles(eventType string) bool {
	switch eventType {
	case evCheckoutCompleted, evSubCreated, evSubUpdated, evSubDeleted, evSubPaused, evSubResumed,
		evInvoicePaid, evInvoiceFailed, evInvoiceActionNeeded, evChargeRefunded, evDisputeCreated, evFraudWarning:
		return true
	}
	return false
}

// ErrMalformed marks an event whose object cannot be read; retrying cannot help.
var ErrMalformed = errors.New("subscriptions: malformed event object")

// Prepare parses the event's object and reads from Stripe what we do not know yet
// (an invoice paid before its subscription reached us, say): such an event is
// resolved, never dropped.
func (s *Syncer) Prepare(ctx context.Context, ev Event) (*Prepared, error) {
	p := &Prepared{}
	malformed := func(err error) error { return fmt.Errorf("%w: %s: %v", ErrMalformed, ev.Type, err) }
	switch ev.Type {
	case evSubCreated, evSubUpdated, evSubDeleted, evSubPaused, evSubResumed:
		gs, err := gateway.SubscriptionFromJSON(ev.Object)
		if err != nil {
			return nil, malformed(err)
		}
		p.subscription = &gs
	case evCheckoutCompleted:
		cs, err := gateway.CheckoutSessionFromJSON(ev.Object)
		if err != nil {
			return nil, malformed(err)
		}
		p.checkout = &cs
		if cs.Mode != "subscription" || cs.SubscriptionID == "" {
			p.ignore = "checkout session is not for a subscription"
			return p, nil
		}
		if err := s.resolveSubscription(ctx, p, cs.SubscriptionID); err != nil {
			return nil, err
		}
	case evInvoicePaid, evInvoiceFailed, evInvoiceActionNeeded:
		inv, err := gateway.InvoiceFromJSON(ev.Object)
		if err != nil {
			return nil, malformed(err)
		}
		p.invoice = &inv
		if inv.SubscriptionID == "" {
			p.ignore = "invoice is not for a subscription"
			return p, nil
		}
		if err := s.resolveSubscription(ctx, p, inv.SubscriptionID); err != nil {
			return nil, err
		}
	case evChargeRefunded:
		ch, err := gateway.ChargeFromJSON(ev.Object)
		if err != nil {
			return nil, malformed(err)
		}
		p.charge = &ch
		if err := s.resolvePayment(ctx, p, ch.ID, ch.PaymentIntentID, ch.InvoiceID); err != nil {
			return nil, err
		}
	case evDisputeCreated:
		d, err := gateway.DisputeFromJSON(ev.Object)
		if err != nil {
			return nil, malformed(err)
		}
		p.dispute = &d
		if err := s.resolvePayment(ctx, p, d.ChargeID, d.PaymentIntentID, ""); err != nil {
			return nil, err
		}
	case evFraudWarning:
		w, err := gateway.EarlyFraudWarningFromJSON(ev.Object)
		if err != nil {
			return nil, malformed(err)
		}
		p.fraud = &w
		if err := s.resolvePayment(ctx, p, w.ChargeID, w.PaymentIntentID, ""); err != nil {
			return nil, err
		}
	default:
		p.ignore = "event type not handled"
	}
	return p, nil
}

// resolveSubscription reads the subscription from Stripe when we have no row for it.
func (s *Syncer) resolveSubscription(ctx context.Context, p *Prepared, stripeID string) error {
	var n int64
	if err := s.db.WithContext(ctx).Model(&models.Subscription{}).Where("stripe_subscription_id = ?", stripeID).Count(&n).Error; err != nil {
		return fmt.Errorf("subscriptions: look up subscription: %w", err)
	}
	if n > 0 {
		return nil
	}
	gs, err := s.gw.GetSubscription(ctx, stripeID)
	if errors.Is(err, gateway.ErrNotFound) {
		p.ignore = "subscription unknown at Stripe"
		return nil
	}
	if err != nil {
		return fmt.Errorf("subscriptions: read subscription from Stripe: %w", err)
	}
	p.subscription = &gs
	return nil
}

// resolvePayment reads a charge's invoice (and its subscription) from Stripe when we
// have no payment for the charge yet, so a refund or dispute is never lost.
func (s *Syncer) resolvePayment(ctx context.Context, p *Prepared, chargeID, paymentIntentID, invoiceID string) error {
	if paymentIntentID != "" {
		var n int64
		if err := s.db.WithContext(ctx).Model(&models.Payment{}).Where("stripe_payment_intent_id = ?", paymentIntentID).Count(&n).Error; err != nil {
			return fmt.Errorf("subscriptions: look up payment: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
	if invoiceID == "" && chargeID != "" {
		ch, err := s.gw.GetCharge(ctx, chargeID)
		if errors.Is(err, gateway.ErrNotFound) {
			p.ignore = "charge unknown at Stripe"
			return nil
		}
		if err != nil {
			return fmt.Errorf("subscriptions: read charge from Stripe: %w", err)
		}
		invoiceID = ch.InvoiceID
	}
	if invoiceID == "" {
		p.ignore = "charge is not for an invoice"
		return nil
	}
	var n int64
	if err := s.db.WithContext(ctx).Model(&models.Payment{}).Where("stripe_invoice_id = ?", invoiceID).Count(&n).Error; err != nil {
		return fmt.Errorf("subscriptions: look up payment: %w", err)
	}
	if n > 0 {
		return nil
	}
	inv, err := s.gw.GetInvoice(ctx, invoiceID)
	if errors.Is(err, gateway.ErrNotFound) {
		p.ignore = "invoice unknown at Stripe"
		return nil
	}
	if err != nil {
		return fmt.Errorf("subscriptions: read invoice from Stripe: %w", err)
	}
	if inv.SubscriptionID == "" {
		p.ignore = "charge is not for a subscription"
		return nil
	}
	p.chargeInvoice = &inv
	return s.resolveSubscription(ctx, p, inv.SubscriptionID)
}

// stamp is an event's place in time: its created second, then its arrival order.
type stamp struct {
	created time.Time
	seq     int64
}

// newer reports whether an event stamped st may change an object last changed by the
// event (at, seq): an older event is recorded but never rolls state back (WH-4), and
// events of the same second apply in arrival order.
func (st stamp) newer(at *time.Time, seq *int64) bool {
	if at == nil {
		return true
	}
	if !st.created.Equal(*at) {
		return st.created.After(*at)
	}
	return seq == nil || st.seq > *seq
}

// Apply makes the event's effect inside tx, the transaction that also marks the
// event done, so that the effect happens exactly once however often the event or
// its job runs.
func (s *Syncer) Apply(ctx context.Context, tx *gorm.DB, ev Event, p *Prepared) (Effect, error) {
	if p.ignore != "" {
		return Effect{Ignored: true, Outcome: p.ignore}, nil
	}
	st := stamp{created: ev.Created.UTC(), seq: ev.Seq}
	tx = tx.WithContext(ctx)
	switch ev.Type {
	case evSubCreated, evSubUpdated, evSubDeleted, evSubPaused, evSubResumed:
		return s.applySubscriptionEvent(ctx, tx, ev, st, *p.subscription)
	case evCheckoutCompleted:
		return s.applyCheckout(ctx, tx, p)
	case evInvoicePaid:
		return s.applyInvoicePaid(ctx, tx, ev, st, *p.invoice, p.subscription)
	case evInvoiceFailed, evInvoiceActionNeeded:
		return s.applyInvoiceFailed(ctx, tx, ev, st, *p.invoice, p.subscription)
	case evChargeRefunded:
		return s.applyRefund(ctx, tx, ev, st, p)
	case evDisputeCreated:
		return s.applyPaymentFlag(ctx, tx, ev, p, p.dispute.PaymentIntentID, p.dispute.ChargeID, "dispute")
	case evFraudWarning:
		return s.applyPaymentFlag(ctx, tx, ev, p, p.fraud.PaymentIntentID, p.fraud.ChargeID, "fraud_warning")
	}
	return Effect{Ignored: true, Outcome: "event type not handled"}, nil
}

// applySubscriptionEvent applies a customer.subscription.* event unless a newer
// event already reached the subscription.
func (s *Syncer) applySubscriptionEvent(ctx context.Context, tx *gorm.DB, ev Event, st stamp, gs gateway.Subscription) (Effect, error) {
	sub, created, err := s.ensureSubscription(ctx, tx, gs, nil)
	if err != nil {
		return Effect{}, err
	}
	if sub == nil {
		if carriesOurMetadata(gs) {
			return Effect{Ignored: true, Outcome: "carries our metadata but matches no customer or plan of ours: flagged for support (alert)"}, nil
		}
		return Effect{Ignored: true, Outcome: "subscription is not one of ours"}, nil
	}
	if !created && !st.newer(sub.ProviderUpdatedAt, sub.ProviderEventSeq) {
		return Effect{Outcome: "older than the state applied; recorded only"}, nil
	}
	if err := s.applyState(ctx, tx, sub, gs); err != nil {
		return Effect{}, err
	}
	sub.ProviderUpdatedAt, sub.ProviderEventSeq = &st.created, &st.seq
	if err := tx.Save(sub).Error; err != nil {
		return Effect{}, fmt.Errorf("subscriptions: save: %w", err)
	}
	if err := completeCancelAttempts(ctx, tx, sub, map[string]any{"eventId": ev.ProviderEventID}); err != nil {
		return Effect{}, err
	}
	kind, change := subscriptionNotice(ev.Type, gs, ev.PreviousAttributes)
	if err := s.noticeChange(ctx, tx, sub, kind, change, ev.ProviderEventID+":"+string(kind)); err != nil {
		return Effect{}, err
	}
	s.logger.InfoContext(ctx, "subscription synced from Stripe", "subscription_id", sub.ID, "stripe_subscription_id", gs.ID,
		"status", string(sub.Status), "event_id", ev.ProviderEventID)
	return Effect{Outcome: "subscription " + strings.ToLower(string(sub.Status))}, nil
}

// applyState copies Stripe's view, including a plan change, onto sub.
func (s *Syncer) applyState(ctx context.Context, tx *gorm.DB, sub *models.Subscription, gs gateway.Subscription) error {
	applyProvider(sub, gs)
	if gs.PriceID == "" {
		return nil
	}
	plan, err := planByPrice(tx, gs.PriceID)
	if err != nil {
		return err
	}
	if plan == nil {
		// A price we never sold: keep the plan, and say so loudly (PAY-3).
		s.unknownPrice(ctx, gs)
		return nil
	}
	sub.PlanID = plan.ID
	return nil
}

// planByPrice returns our plan sold at a Stripe price, or nil.
func planByPrice(tx *gorm.DB, priceID string) (*models.Plan, error) {
	var plan models.Plan
	err := tx.Where("stripe_price_id = ?", priceID).Take(&plan).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("subscriptions: plan by price: %w", err)
	}
	return &plan, nil
}

// unknownPrice alerts on a subscription of ours that Stripe reports on a price we
// do not sell (PAY-3).
func (s *Syncer) unknownPrice(ctx context.Context, gs gateway.Subscription) {
	s.metrics.alerts.WithLabelValues("unknown_price").Inc()
	s.logger.WarnContext(ctx, "subscription is on a price that is not one of our plans",
		"alert", "unknown_price", "stripe_subscription_id", gs.ID, "stripe_price_id", gs.PriceID)
}

// ensureSubscription returns our subscription for a Stripe one, locked for update,
// creating it from Stripe's report when it came to us first through an event
// (Checkout, or an event that overtook the mutation that made it). nil: not ours.
func (s *Syncer) ensureSubscription(ctx context.Context, tx *gorm.DB, gs gateway.Subscription, addr *models.Address) (*models.Subscription, bool, error) {
	lock := func() (*models.Subscription, error) {
		var sub models.Subscription
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("stripe_subscription_id = ?", gs.ID).Take(&sub).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("subscriptions: lock: %w", err)
		}
		return &sub, nil
	}
	sub, err := lock()
	if sub != nil || err != nil {
		return sub, false, err
	}
	customerID, err := s.ourCustomer(tx, gs.Metadata[gateway.MetadataCustomerID], gs.CustomerID)
	if err != nil {
		return nil, false, err
	}
	if customerID == "" {
		if carriesOurMetadata(gs) {
			s.unresolved(ctx, gs)
		}
		return nil, false, nil
	}
	plan, err := planByPrice(tx, gs.PriceID)
	if err != nil {
		return nil, false, err
	}
	if plan == nil {
		s.unknownPrice(ctx, gs)
		return nil, false, nil
	}
	id := gs.Metadata[metadataSubscriptionID]
	if uuid.Validate(id) != nil {
		id = uuid.NewSHA1(stripeNamespace, []byte(gs.ID)).String()
	}
	row := models.Subscription{ID: id, CustomerID: customerID, PlanID: plan.ID}
	if addr != nil {
		row.ShippingAddress = *addr
	}
	applyProvider(&row, gs)
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	if res.Error != nil {
		return nil, false, fmt.Errorf("subscriptions: create from Stripe: %w", res.Error)
	}
	// Another writer may have created it first (the conflict): then it is not new,
	// and the caller's ordering check must apply.
	created := res.RowsAffected == 1
	if created {
		s.logger.InfoContext(ctx, "subscription created from Stripe's report", "subscription_id", id, "stripe_subscription_id", gs.ID)
	}
	sub, err = lock()
	if sub == nil && err == nil && !created {
		return s.duplicate(ctx, tx, gs, row, lock)
	}
	return sub, created && sub != nil, err
}

// duplicate records a Stripe subscription whose metadata names a row of ours that is
// already another Stripe subscription's: a second subscription made for one request
// (a copy made in Stripe's dashboard, or a request repeated after Stripe forgot its
// idempotency key). The customer is billed for it, so it is kept as a subscription
// of its own, under an id derived from Stripe's (as a Checkout one is), with the
// address of the row it claims when that row is the same customer's, so what is paid
// is recorded and shipped; and it raises the duplicate_subscription alert, so that
// support decides whether to cancel and refund it. Never dropped.
func (s *Syncer) duplicate(ctx context.Context, tx *gorm.DB, gs gateway.Subscription, row models.Subscription,
	lock func() (*models.Subscription, error),
) (*models.Subscription, bool, error) {
	var claimed models.Subscription
	err := tx.Where("id = ?", row.ID).Take(&claimed).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, false, nil // neither ours nor taken: nothing was in the way after all
	}
	if err != nil {
		return nil, false, fmt.Errorf("subscriptions: claimed row: %w", err)
	}
	row.ID = uuid.NewSHA1(stripeNamespace, []byte(gs.ID)).String()
	if claimed.CustomerID == row.CustomerID && row.ShippingAddress.Line1 == "" {
		row.ShippingAddress = claimed.ShippingAddress
	}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	if res.Error != nil {
		return nil, false, fmt.Errorf("subscriptions: create duplicate from Stripe: %w", res.Error)
	}
	created := res.RowsAffected == 1
	if created {
		s.metrics.alerts.WithLabelValues("duplicate_subscription").Inc()
		s.logger.WarnContext(ctx, "a second Stripe subscription claims one of ours; recorded as its own subscription for support to review",
			"alert", "duplicate_subscription", "subscription_id", row.ID, "claimed_subscription_id", claimed.ID,
			"stripe_subscription_id", gs.ID, "customer_id", row.CustomerID)
	}
	sub, err := lock()
	return sub, created && sub != nil, err
}

// carriesOurMetadata reports whether a Stripe subscription says it was made by us:
// Stripe objects we create carry our ids in their metadata.
func carriesOurMetadata(gs gateway.Subscription) bool {
	return gs.Metadata[metadataSubscriptionID] != "" || gs.Metadata[gateway.MetadataCustomerID] != ""
}

// unresolved alerts on a Stripe subscription that carries our metadata but matches no
// customer of ours (another deployment's, or a customer row gone): it is never
// dropped silently; support sees the alert and the event's outcome.
func (s *Syncer) unresolved(ctx context.Context, gs gateway.Subscription) {
	s.metrics.alerts.WithLabelValues("unresolved_subscription").Inc()
	s.logger.WarnContext(ctx, "a Stripe subscription carries our metadata but matches no customer of ours",
		"alert", "unresolved_subscription", "stripe_subscription_id", gs.ID)
}

// metadataSubscriptionID carries our id on subscriptions created through the API,
// so that an event overtaking the mutation lands on the same row.
const metadataSubscriptionID = "scoville_subscription_id"

// stripeNamespace derives stable ids for subscriptions that started at Checkout.
var stripeNamespace = uuid.MustParse("6f1d2a8e-4c1b-5a55-9a3e-2f7c0e0b5c11")

// ourCustomer finds the customer a Stripe object belongs to: by the id we wrote in
// its metadata, else by the Stripe customer id we stored. "" means not ours.
func (s *Syncer) ourCustomer(tx *gorm.DB, metadataID, stripeCustomerID string) (string, error) {
	var c models.Customer
	if uuid.Validate(metadataID) == nil {
		err := tx.Select("id").Where("id = ?", metadataID).Take(&c).Error
		if err == nil {
			return c.ID, nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return "", fmt.Errorf("subscriptions: customer: %w", err)
		}
	}
	if stripeCustomerID == "" {
		return "", nil
	}
	err := tx.Select("id").Where("stripe_customer_id = ?", stripeCustomerID).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("subscriptions: customer: %w", err)
	}
	return c.ID, nil
}

// applyCheckout links a completed Checkout session to our customer and
// subscription: the Stripe customer id, and the address Checkout collected.
func (s *Syncer) applyCheckout(ctx context.Context, tx *gorm.DB, p *Prepared) (Effect, error) {
	cs := p.checkout
	if uuid.Validate(cs.ClientReferenceID) == nil && cs.CustomerID != "" {
		// Only fills a missing link; a customer already linked keeps theirs.
		err := tx.Model(&models.Customer{}).Where("id = ? AND stripe_customer_id IS NULL", cs.ClientReferenceID).
			Update("stripe_customer_id", cs.CustomerID).Error
		if err != nil {
			return Effect{}, fmt.Errorf("subscriptions: link customer: %w", err)
		}
	}
	var addr *models.Address
	if cs.Shipping != nil {
		a := addressFrom(*cs.Shipping)
		addr = &a
	}
	var sub *models.Subscription
	var err error
	if p.subscription != nil {
		gs := *p.subscription
		if gs.Metadata == nil {
			gs.Metadata = map[string]string{}
		}
		if gs.Metadata[gateway.MetadataCustomerID] == "" {
			gs.Metadata[gateway.MetadataCustomerID] = cs.ClientReferenceID
		}
		sub, _, err = s.ensureSubscription(ctx, tx, gs, addr)
	} else {
		sub, _, err = s.ensureSubscription(ctx, tx, gateway.Subscription{ID: cs.SubscriptionID}, addr)
	}
	if err != nil {
		return Effect{}, err
	}
	if sub == nil {
		return Effect{Ignored: true, Outcome: "checkout is not for a customer of ours"}, nil
	}
	if addr != nil && sub.ShippingAddress.Line1 == "" {
		sub.ShippingAddress = *addr
		// Through the struct, so the address is sealed (a column-value update would not be).
		if err := tx.Model(sub).Select("shipping_address", "updated_at").Updates(sub).Error; err != nil {
			return Effect{}, fmt.Errorf("subscriptions: checkout address: %w", err)
		}
	}
	s.logger.InfoContext(ctx, "checkout linked", "subscription_id", sub.ID, "customer_id", sub.CustomerID, "stripe_session_id", cs.ID)
	return Effect{Outcome: "checkout linked to subscription " + sub.ID}, nil
}

func addressFrom(a gateway.Address) models.Address {
	out := models.Address{Name: a.Name, Line1: a.Line1, City: a.City, PostalCode: a.PostalCode, Country: strings.ToUpper(a.Country)}
	if a.Line2 != "" {
		out.Line2 = &a.Line2
	}
	if a.State != "" {
		out.Region = &a.State
	}
	return out
}

// subscriptionNotice decides which notification a subscription event deserves,
// from the event type and the fields Stripe says changed (previous_attributes).
func subscriptionNotice(eventType string, gs gateway.Subscription, previous json.RawMessage) (notifications.Kind, string) {
	status := gs.APIStatus()
	switch eventType {
	case evSubDeleted:
		return notifications.KindSubscriptionCanceled, "Your subscription has ended."
	case evSubPaused:
		return notifications.KindSubscriptionPaused, "Your subscription is paused."
	case evSubResumed:
		return notifications.KindSubscriptionResumed, "Your subscription is running again."
	case evSubCreated:
		if status == models.SubscriptionActive || status == models.SubscriptionTrialing {
			return notifications.KindSubscriptionStarted, "Your subscription has started."
		}
		return "", "" // started once the first payment succeeds
	}
	var prev map[string]json.RawMessage
	_ = json.Unmarshal(previous, &prev)
	if raw, ok := prev["status"]; ok {
		var was string
		_ = json.Unmarshal(raw, &was)
		switch {
		case (status == models.SubscriptionActive || status == models.SubscriptionTrialing) && strings.HasPrefix(was, "incomplete"):
			return notifications.KindSubscriptionStarted, "Your subscription has started."
		case status == models.SubscriptionCanceled:
			return notifications.KindSubscriptionCanceled, "Your subscription has ended."
		case status == models.SubscriptionPastDue || status == models.SubscriptionUnpaid:
			return "", "" // the invoice's failure notice says what to do
		}
	}
	if raw, ok := prev["pause_collection"]; ok {
		if gs.PauseBehavior != "" {
			return notifications.KindSubscriptionPaused, "Your deliveries are paused."
		}
		if string(raw) != "null" {
			return notifications.KindSubscriptionResumed, "Your deliveries have resumed."
		}
	}
	if _, ok := prev["cancel_at_period_end"]; ok {
		if gs.CancelAtPeriodEnd {
			return notifications.KindSubscriptionChanged, "Your subscription will end at the close of the current period."
		}
		return notifications.KindSubscriptionChanged, "Your subscription will continue; the scheduled cancellation was removed."
	}
	if _, ok := prev["items"]; ok {
		return notifications.KindSubscriptionChanged, "Your plan has changed."
	}
	if _, ok := prev["plan"]; ok {
		return notifications.KindSubscriptionChanged, "Your plan has changed."
	}
	return "", ""
}

// planLabel names a plan for a customer message, e.g. "Hot box, monthly".
func (s *Syncer) planLabel(tx *gorm.DB, planID string) string {
	var plan models.Plan
	if err := tx.Joins("Product").Where("plans.id = ?", planID).Take(&plan).Error; err != nil {
		return ""
	}
	return plan.Name() + ", " + strings.ToLower(string(plan.Interval)) + "ly"
}

// noticeChange tells the customer of a subscription change (SUB-3), from an event or
// a server-side read alike; no kind means nothing worth telling.
func (s *Syncer) noticeChange(ctx context.Context, tx *gorm.DB, sub *models.Subscription, kind notifications.Kind, change, dedupe string) error {
	if kind == "" {
		return nil
	}
	data := map[string]string{notifications.DataChange: change, notifications.DataPlan: s.planLabel(tx, sub.PlanID)}
	if sub.CurrentPeriodEnd != nil {
		data[notifications.DataPeriodEnd] = sub.CurrentPeriodEnd.Format(time.RFC3339)
	}
	if sub.PausedUntil != nil {
		data[notifications.DataResumesAt] = sub.PausedUntil.Format(time.RFC3339)
	}
	return s.enqueue(ctx, tx, sub.CustomerID, kind, &sub.ID, nil, data, dedupe)
}

func (s *Syncer) enqueue(ctx context.Context, tx *gorm.DB, customerID string, kind notifications.Kind, subID, paymentID *string, data map[string]string, dedupe string) error {
	return notifications.Enqueue(ctx, tx, s.notify, notifications.Notification{
		CustomerID: customerID, Kind: kind, SubscriptionID: subID, PaymentID: paymentID, Data: data, DedupeKey: dedupe,
	})
}

// completeCancelAttempts completes, from Stripe's report that sub is ended or set to
// cancel at the period's end, a staff cancellation whose attempt died between
// Stripe's answer and our commit.
func completeCancelAttempts(ctx context.Context, tx *gorm.DB, sub *models.Subscription, evidence map[string]any) error {
	if !sub.Status.Ended() && !sub.CancelAtPeriodEnd {
		return nil
	}
	evidence["status"], evidence["cancelAtPeriodEnd"] = sub.Status, sub.CancelAtPeriodEnd
	_, err := audit.CompleteOpen(ctx, tx, OpAdminCancel, audit.TargetSubscription, sub.ID, evidence)
	return err
}
