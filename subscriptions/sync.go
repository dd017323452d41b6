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
	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/gateway"
	liveupdates "github.com/scoville/scoville/live" // "live" names a func of this package
	"github.com/scoville/scoville/metrics"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/outbox"
)

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
	return &SyncMetrics{
		payments: metrics.CounterVec(reg, "scoville_payments_total", "Payment outcomes reported by Stripe, by outcome.", "outcome"),
		alerts: metrics.CounterVec(reg, "scoville_payment_alerts_total",
			"Refunds, disputes, fraud warnings, amount mismatches and subscriptions needing review, by kind.", "kind"),
	}
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

// applySubscriptionEvent applies a customer.subscription.* event unless a newer
// event already reached the subscription.
func (s *Syncer) applySubscriptionEvent(ctx context.Context, tx *gorm.DB, ev Event, on notifications.SubscriptionEvent, gs gateway.Subscription) (Effect, error) {
	st := eventOrigin(ev).stamp
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
	before := *sub
	if err := s.applyState(ctx, tx, sub, gs); err != nil {
		return Effect{}, err
	}
	sub.ProviderUpdatedAt, sub.ProviderEventSeq = &st.created, &st.seq
	if err := tx.Save(sub).Error; err != nil {
		return Effect{}, fmt.Errorf("subscriptions: save: %w", err)
	}
	if err := liveupdates.Announce(tx, sub.ID); err != nil {
		return Effect{}, err
	}
	if created || differs(&before, sub) {
		if err := outbox.SubscriptionUpdated(ctx, tx, sub); err != nil {
			return Effect{}, err
		}
	}
	if err := completeCancelAttempts(ctx, tx, sub, ev.RequestKey, false, map[string]any{"eventId": ev.ProviderEventID}); err != nil {
		return Effect{}, err
	}
	kind, change := subscriptionNotice(on, gs, ev.PreviousAttributes)
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
	err := tx.Joins("Product").Where("plans.stripe_price_id = ?", priceID).Take(&plan).Error
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
	if !models.ValidID(id) {
		id = uuid.NewSHA1(stripeNamespace, []byte(gs.ID)).String()
	}
	row := models.Subscription{ID: id, CustomerID: customerID, PlanID: plan.ID}
	if addr != nil {
		erased, err := customers.Erased(ctx, tx, customerID)
		if err != nil {
			return nil, false, err
		}
		if !erased {
			row.ShippingAddress = *addr
		}
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
	if models.ValidID(metadataID) {
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
func (s *Syncer) applyCheckout(ctx context.Context, tx *gorm.DB, _ Event, p preparedCheckout) (Effect, error) {
	cs := p.session
	if models.ValidID(cs.ClientReferenceID) && cs.CustomerID != "" {
		// Only fills a missing link; a customer already linked keeps theirs.
		if _, err := customers.LinkStripeCustomer(ctx, tx, cs.ClientReferenceID, cs.CustomerID); err != nil {
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
		// An erased customer's subscription keeps only its country (DAT-3).
		erased, err := customers.Erased(ctx, tx, sub.CustomerID)
		if err != nil {
			return Effect{}, err
		}
		if erased {
			return Effect{Outcome: "checkout of an erased customer; no address stored"}, nil
		}
		sub.ShippingAddress = *addr
		// Through the struct, so the address is sealed (a column-value update would not be).
		if err := tx.Model(sub).Select("shipping_address", "updated_at").Updates(sub).Error; err != nil {
			return Effect{}, fmt.Errorf("subscriptions: checkout address: %w", err)
		}
		if err := liveupdates.Announce(tx, sub.ID); err != nil {
			return Effect{}, err
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

// subscriptionNotice decides which notification a subscription report deserves
// (notifications.SubscriptionNotice), from Stripe's view after it and the fields
// Stripe says changed (previous_attributes).
func subscriptionNotice(on notifications.SubscriptionEvent, gs gateway.Subscription, previous json.RawMessage) (notifications.Kind, string) {
	return notifications.SubscriptionNotice(on, notifications.SubscriptionState{
		Status: gs.APIStatus(), Paused: gs.PauseBehavior != "", CancelAtPeriodEnd: gs.CancelAtPeriodEnd,
	}, previous)
}

// planLabel names a plan for a customer message, e.g. "Hot box, monthly". A
// subscription's plan always exists (a foreign key), so any failure here is the
// database's and fails the caller's transaction rather than sending a blank name.
func planLabel(tx *gorm.DB, planID string) (string, error) {
	var plan models.Plan
	if err := tx.Joins("Product").Where("plans.id = ?", planID).Take(&plan).Error; err != nil {
		return "", fmt.Errorf("subscriptions: plan label: %w", err)
	}
	return labelOf(&plan), nil
}

// labelOf is planLabel of a plan read with its product.
func labelOf(plan *models.Plan) string {
	return plan.Name() + ", " + strings.ToLower(string(plan.Interval)) + "ly"
}

// noticeChange tells the customer of a subscription change (SUB-3), from an event or
// a server-side read alike; no kind means nothing worth telling.
func (s *Syncer) noticeChange(ctx context.Context, tx *gorm.DB, sub *models.Subscription, kind notifications.Kind, change, dedupe string) error {
	if kind == "" {
		return nil
	}
	label, err := planLabel(tx, sub.PlanID)
	if err != nil {
		return err
	}
	data := map[string]string{notifications.DataChange: change, notifications.DataPlan: label}
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

// completeCancelAttempts completes, from Stripe's report of sub, a staff cancellation
// whose attempt died between Stripe's answer and our commit. An event completes only
// the attempt whose request caused it (requestKey); a read, which names no request,
// completes an attempt only once it shows the state the attempt asked for (ended,
// or set to end at the period's end).
func completeCancelAttempts(ctx context.Context, tx *gorm.DB, sub *models.Subscription, requestKey string, read bool, evidence map[string]any) error {
	if !sub.Status.Ended() && !sub.CancelAtPeriodEnd {
		return nil
	}
	evidence["status"], evidence["cancelAtPeriodEnd"] = sub.Status, sub.CancelAtPeriodEnd
	_, err := audit.CompleteOpen(ctx, tx, OpAdminCancel, audit.TargetSubscription, sub.ID,
		func(key string, planned json.RawMessage) bool {
			if !read {
				return requestKey != "" && key == requestKey
			}
			var want struct{ AtPeriodEnd bool }
			if json.Unmarshal(planned, &want) != nil {
				return false
			}
			return sub.Status.Ended() || (want.AtPeriodEnd && sub.CancelAtPeriodEnd)
		}, evidence)
	return err
}
