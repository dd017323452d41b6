// Package privacy serves a customer's rights over their data (DAT-3): the export
// of everything held about them and its erasure. It orchestrates; each table's
// owner reads and writes its own table (customers, subscriptions, payments,
// fulfilment, notifications, webhooks for the stored provider events, eventindex
// for their index), and this package calls them in the lock order.
package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/eventindex"
	"github.com/scoville/scoville/fulfilment"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/outbox"
	"github.com/scoville/scoville/payments"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks"
)

// Service serves a customer's rights over their data (DAT-3): a copy of everything
// held about them, and erasure.
//
// Erasure keeps what the law requires a merchant to keep (payments, and which box
// was shipped for which payment) and removes the person from it:
//
//   - customers (customers.Pseudonymize): the row stays as a pseudonym: e-mail and
//     name emptied, issuer and subject replaced by a random identity nobody can
//     sign in as (so a later sign-in by the same person creates a fresh customer).
//     The Stripe customer id stays as the link to Stripe's own retained invoices;
//     Stripe deletes the customer's personal data on its side (DeleteCustomer).
//   - subscriptions and shipments (subscriptions.ForgetAddresses,
//     fulfilment.ForgetAddresses): the address is emptied except its country (a
//     tax fact of the sale); statuses, periods and amounts stay.
//   - payments (payments.ForgetInvoiceLinks): kept whole, except the hosted invoice
//     URL, a bearer link to a page showing the billing name and address.
//   - notifications (notifications.EraseFor): deleted (they only existed to e-mail
//     the person).
//   - webhook_events that are the customer's (webhooks.ScrubPersonal): those whose object names, at a known
//     place, our id for them or the Stripe id of them, their subscriptions,
//     invoices, payment intents or charges (package eventindex; never their name
//     or e-mail, which anybody's text may contain). Their personal fields (name,
//     e-mail, phone, addresses, shipping and billing details, hosted invoice
//     links) are set to null by path; ids, amounts and statuses stay, so the event
//     still tells what happened and can still be applied. No other event is
//     touched. The rewritten payload is no longer Stripe's signed bytes; it was
//     verified when it arrived. Events that arrive later (Stripe reports the
//     cancellation and the deletion, quoting the customer) are scrubbed by jobs
//     scheduled with the erasure (ScrubDelays), found by the Stripe ids the
//     pseudonymous records keep.
//   - audit_log: an entry for the erasure, with the person's (issuer, subject) as
//     the actor, as every audit entry has; it holds no e-mail, name or address.
type Service struct {
	db        *gorm.DB
	customers *customers.Service
	gw        Gateway
	idem      *idempotency.Store
	queue     Inserter
	logger    *slog.Logger
	// beforeLookup runs in erasure's transaction before it looks up the
	// customer's events (a test seam; nil in production).
	beforeLookup func()
}

// BeforeEraseLookup is a test seam: f runs inside each erasure's transaction right
// before it looks up and locks the customer's events, where an event arriving at
// that moment is not seen. Call it before the service is used.
func (p *Service) BeforeEraseLookup(f func()) { p.beforeLookup = f }

// Gateway is what erasure needs from the payment provider.
type Gateway interface {
	CancelSubscription(ctx context.Context, key, subID string, atPeriodEnd bool) (gateway.Subscription, error)
	GetSubscription(ctx context.Context, id string) (gateway.Subscription, error)
	DeleteCustomer(ctx context.Context, key, customerID string) error
}

// New wires the service; queue schedules the later scrubs of an erasure
// (ScrubArgs); a nil logger discards log lines.
func New(db *gorm.DB, gw Gateway, idem *idempotency.Store, queue Inserter, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, customers: customers.NewService(db), gw: gw, idem: idem, queue: queue, logger: logger}
}

// OpDeleteMyAccount names the erasure for idempotency keys and the audit log.
const OpDeleteMyAccount = "deleteMyAccount"

// Export is the caller's data as one JSON document: their customer record,
// subscriptions, payments, shipments, notifications and the provider events that
// are theirs (see Service), and nobody else's. Someone never seen gets a document
// with nothing in it. Its cost is the caller's rows and events: events are found
// by an index, and only those are opened.
func (p *Service) Export(ctx context.Context, who *auth.Principal) (*models.DataExport, error) {
	now := time.Now().UTC()
	doc := exportDoc{GeneratedAt: now, Subscriptions: []exportSubscription{}, Payments: []exportPayment{},
		Shipments: []exportShipment{}, Notifications: []exportNotification{}, ProviderEvents: []exportEvent{}}
	db := p.db.WithContext(ctx)
	c, err := p.customers.Lookup(ctx, who)
	switch {
	case err != nil:
		return nil, fmt.Errorf("privacy: export: %w", err)
	case c == nil:
		return encodeExport(now, doc)
	}
	// Stored events not indexed yet are indexed first (each only once, ever), so
	// that the lookup by identifiers sees them.
	if _, err := eventindex.IndexPending(ctx, p.db); err != nil {
		return nil, fmt.Errorf("privacy: export: %w", err)
	}
	h, err := p.holdings(ctx, db, c)
	if err != nil {
		return nil, fmt.Errorf("privacy: export: %w", err)
	}
	if h.events, err = p.events(ctx, db, h.subjects(c), webhooks.ReadPlain); err != nil {
		return nil, fmt.Errorf("privacy: export: %w", err)
	}
	doc.Customer = &exportCustomer{ID: c.ID, Issuer: c.Issuer, Subject: c.Subject, Email: c.Email, Name: c.Name,
		StripeCustomerID: c.StripeCustomerID, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	for _, s := range h.subscriptions {
		doc.Subscriptions = append(doc.Subscriptions, exportSubscription{ID: s.ID, PlanID: s.PlanID, Status: s.Status,
			ShippingAddress: s.ShippingAddress, CurrentPeriodStart: s.CurrentPeriodStart, CurrentPeriodEnd: s.CurrentPeriodEnd,
			CancelAtPeriodEnd: s.CancelAtPeriodEnd, PausedUntil: s.PausedUntil, StripeSubscriptionID: s.StripeSubscriptionID,
			CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt})
	}
	for _, pay := range h.payments {
		doc.Payments = append(doc.Payments, exportPayment{ID: pay.ID, SubscriptionID: pay.SubscriptionID,
			Amount: exportMoney{pay.AmountMinor, pay.Currency}, AmountRefunded: exportMoney{pay.AmountRefunded, pay.Currency},
			Status: pay.Status, StripeInvoiceID: pay.StripeInvoiceID, InvoiceURL: pay.InvoiceURL, PaidAt: pay.PaidAt,
			DisputedAt: pay.DisputedAt, CreatedAt: pay.CreatedAt})
	}
	for _, s := range h.shipments {
		doc.Shipments = append(doc.Shipments, exportShipment{ID: s.ID, SubscriptionID: s.SubscriptionID, PaymentID: s.PaymentID,
			PlanID: s.PlanID, PeriodStart: s.PeriodStart, PeriodEnd: s.PeriodEnd, Address: s.Address, Status: s.Status, CreatedAt: s.CreatedAt})
	}
	for _, n := range h.notifications {
		if !json.Valid(n.Data) {
			n.Data = []byte("{}")
		}
		doc.Notifications = append(doc.Notifications, exportNotification{ID: n.ID, Kind: n.Kind, SubscriptionID: n.SubscriptionID,
			PaymentID: n.PaymentID, Data: json.RawMessage(n.Data), CreatedAt: n.CreatedAt, SentAt: n.SentAt})
	}
	for _, ev := range h.events {
		e := exportEvent{ID: ev.ProviderEventID, Type: ev.Type, ReceivedAt: ev.ReceivedAt}
		if json.Valid(ev.Payload) {
			e.Payload = json.RawMessage(ev.Payload)
		}
		doc.ProviderEvents = append(doc.ProviderEvents, e)
	}
	return encodeExport(now, doc)
}

func encodeExport(now time.Time, doc exportDoc) (*models.DataExport, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("privacy: export: encode: %w", err)
	}
	return &models.DataExport{GeneratedAt: now, JSON: string(raw)}, nil
}

// DeleteOutcome is what an erasure request produced, stored with its idempotency key
// so that a replay answers as the first call did.
type DeleteOutcome struct {
	Deleted    bool                `json:"deleted"`
	UserErrors []*models.UserError `json:"userErrors,omitempty"`
}

// Delete erases the caller (see Service for what is kept). It first cancels the
// caller's live subscriptions at Stripe, now, and deletes their Stripe customer;
// only when Stripe has done both is anything erased here, in one transaction with
// its audit entry. When Stripe cannot be reached the error wraps
// gateway.ErrProviderUnavailable, nothing was erased, and the same key may be
// retried: every Stripe call carries a key derived from it.
func (p *Service) Delete(ctx context.Context, who *auth.Principal, in models.DeleteMyAccountInput) (*DeleteOutcome, error) {
	if !in.Confirm {
		return nil, models.NewUserError(models.UserErrorInvalid, "must be true: deleting the account cannot be undone", "input", "confirm")
	}
	scope := idempotency.ScopeFor(who.Issuer, who.Subject, OpDeleteMyAccount, in.IdempotencyKey)
	out, _, err := idempotency.Run(ctx, p.idem, scope, in, func(ctx context.Context) (DeleteOutcome, error) {
		err := p.erase(ctx, who, scope)
		if ues, rest := models.UserErrorsOf(err); len(ues) > 0 && rest == nil {
			return DeleteOutcome{UserErrors: ues}, nil
		}
		if err != nil {
			return DeleteOutcome{}, err
		}
		return DeleteOutcome{Deleted: true}, nil
	})
	if err != nil {
		return nil, idempotency.AsUserError(err)
	}
	return &out, nil
}

func (p *Service) erase(ctx context.Context, who *auth.Principal, scope idempotency.Scope) error {
	c, err := p.customers.Lookup(ctx, who)
	if err != nil {
		return fmt.Errorf("privacy: erase: %w", err)
	}
	db := p.db.WithContext(ctx)
	if c == nil {
		// Never provisioned: nothing is held; the request itself is still recorded.
		return db.Transaction(func(tx *gorm.DB) error {
			return audit.Record(ctx, tx, who, audit.Action{Name: OpDeleteMyAccount, TargetType: "customer",
				Reason: "erasure requested by the customer; nothing was held"})
		})
	}
	// Stripe first: a failure here leaves everything as it was.
	ended, attemptID, err := p.endAtStripe(ctx, who, scope, c)
	if err != nil {
		return err
	}
	if _, err := eventindex.IndexPending(ctx, p.db); err != nil {
		return fmt.Errorf("privacy: erase: %w", err)
	}
	var canceled []string
	err = db.Transaction(func(tx *gorm.DB) error {
		var err error
		canceled, err = p.eraseLocked(ctx, tx, who, c, ended, attemptID)
		return err
	})
	if err != nil {
		return err
	}
	p.logger.InfoContext(ctx, "customer erased", "customer_id", c.ID, "canceled_subscriptions", len(canceled))
	return nil
}

// endAtStripe cancels the customer's live subscriptions at Stripe, now, and
// deletes their Stripe customer; it returns the status Stripe gave each canceled
// subscription, by our id, and the id of the attempt's audit entry. Every call
// carries a key derived from scope. Before the first call it commits, in its own
// transaction, an OpDeleteMyAccount.attempted entry (audit.RecordAttempt, under
// the key of the customer's deletion): Stripe's effects never exist without an
// entry naming who asked for them, whatever fails between Stripe's answers and
// the erasure's commit. A retry with the same key finds that entry and reuses it.
func (p *Service) endAtStripe(ctx context.Context, who *auth.Principal, scope idempotency.Scope, c *models.Customer) (map[string]models.SubscriptionStatus, string, error) {
	subs, err := subscriptions.ForCustomer(ctx, p.db, c.ID)
	if err != nil {
		return nil, "", fmt.Errorf("privacy: erase: %w", err)
	}
	var live []*models.Subscription
	for _, s := range subs {
		if s.StripeSubscriptionID != nil && !s.Status.Ended() {
			live = append(live, s)
		}
	}
	key := scope.ProviderKey("customer")
	attempt, err := audit.FindAttempt(ctx, p.db, OpDeleteMyAccount, key)
	if err != nil {
		return nil, "", fmt.Errorf("privacy: erase: %w", err)
	}
	if attempt == nil {
		cancel := make([]string, 0, len(live))
		for _, s := range live {
			cancel = append(cancel, s.ID)
		}
		id, err := audit.RecordAttempt(ctx, p.db, who, audit.Action{
			Name: OpDeleteMyAccount, TargetType: "customer", TargetID: c.ID,
			Reason: "erasure requested by the customer (DAT-3); the payment provider is told first",
			After:  map[string]any{"cancelSubscriptions": cancel, "deleteProviderCustomer": c.StripeCustomerID != nil},
		}, key)
		if err != nil {
			return nil, "", fmt.Errorf("privacy: erase: %w", err)
		}
		attempt = &audit.Attempt{ID: id}
	}
	ended := map[string]models.SubscriptionStatus{}
	for _, s := range live {
		st, err := p.cancelAtStripe(ctx, scope.ProviderKey("cancel-"+s.ID), *s.StripeSubscriptionID)
		if err != nil {
			return nil, "", err
		}
		ended[s.ID] = st
	}
	if c.StripeCustomerID != nil {
		if err := p.gw.DeleteCustomer(ctx, key, *c.StripeCustomerID); err != nil {
			return nil, "", providerFailure(err)
		}
	}
	return ended, attempt.ID, nil
}

// eraseLocked erases c in tx, each owner erasing its own part, and records the
// audit entry. It takes the locks in the order every writer of a customer's rows
// follows (eventindex.LockCustomers): the customer's provider events first, as the
// event worker takes an event before the customer's rows, then the customer, then
// their subscriptions, payments, shipments and notifications, which is the order
// the owners are called in. It returns the subscriptions Stripe ended; nothing
// when a concurrent request with another key erased the customer meanwhile.
func (p *Service) eraseLocked(ctx context.Context, tx *gorm.DB, who *auth.Principal, c *models.Customer, ended map[string]models.SubscriptionStatus, attemptID string) (canceled []string, err error) {
	if p.beforeLookup != nil {
		p.beforeLookup()
	}
	before, err := p.holdings(ctx, tx, c)
	if err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	events, err := p.events(ctx, tx, before.subjects(c), webhooks.LockWait)
	if err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	locked, err := customers.LockForErasure(ctx, tx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	if locked.Issuer != who.Issuer || locked.Subject != who.Subject {
		return nil, nil // erased meanwhile by a concurrent request with another key
	}
	h, err := p.holdings(ctx, tx, locked)
	if err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	// An event applied while the customer was not locked yet may have named a
	// new invoice, and events about it. Those taken by a worker right now are
	// not waited for (it holds them before the customer, which is ours now):
	// the scheduled scrubs (ScrubDelays) find them.
	late, err := p.events(ctx, tx, h.subjects(locked), webhooks.LockSkip)
	if err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	h.events = mergeEvents(events, late)
	now := time.Now().UTC()
	if canceled, err = subscriptions.ForgetAddresses(ctx, tx, locked.ID, ended, now); err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	if err := payments.ForgetInvoiceLinks(ctx, tx, locked.ID, now); err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	if err := fulfilment.ForgetAddresses(ctx, tx, locked.ID, now); err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	if err := notifications.EraseFor(ctx, tx, locked.ID); err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	if err := outbox.CustomerErased(ctx, tx, locked.ID); err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	if _, err := webhooks.ScrubPersonal(ctx, tx, h.events); err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	held := map[string]any{"subscriptions": len(h.subscriptions), "payments": len(h.payments),
		"shipments": len(h.shipments), "notifications": len(h.notifications), "providerEvents": len(h.events)}
	if err := customers.Pseudonymize(ctx, tx, locked, now); err != nil {
		return nil, fmt.Errorf("privacy: erase: %w", err)
	}
	if err := p.enqueueScrubs(ctx, tx, locked.ID); err != nil {
		return nil, err
	}
	err = audit.Record(ctx, tx, who, audit.Action{
		Name: OpDeleteMyAccount, TargetType: "customer", TargetID: locked.ID,
		Reason: "erasure requested by the customer (DAT-3); financial records kept under a pseudonym",
		Before: held, After: map[string]any{"pseudonymous": true, "canceledSubscriptions": canceled},
		AttemptID: attemptID,
	})
	return canceled, err
}

// cancelAtStripe ends a subscription now. One Stripe no longer knows, or one it
// refuses to cancel because it has ended already, counts as ended.
func (p *Service) cancelAtStripe(ctx context.Context, key, stripeID string) (models.SubscriptionStatus, error) {
	gs, err := p.gw.CancelSubscription(ctx, key, stripeID, false)
	if err == nil {
		return gs.APIStatus(), nil
	}
	if errors.Is(err, gateway.ErrNotFound) {
		return models.SubscriptionCanceled, nil
	}
	var pe *gateway.ProviderError
	if errors.As(err, &pe) {
		now, rerr := p.gw.GetSubscription(ctx, stripeID)
		if rerr == nil && now.APIStatus().Ended() {
			return now.APIStatus(), nil
		}
	}
	return "", providerFailure(err)
}

// providerFailure keeps unavailability as the error (PROVIDER_UNAVAILABLE, nothing
// erased, retry with the same key) and turns Stripe's refusals into a user error
// (gateway.AsUserError).
func providerFailure(err error) error {
	return gateway.AsUserError(err, "the payment provider refused to close the billing account; nothing was erased")
}

// holdings is everything stored about one customer, read from each owner.
type holdings struct {
	subscriptions []*models.Subscription
	payments      []*models.Payment
	shipments     []*models.Shipment
	notifications []*notifications.Stored
	events        []*models.WebhookEvent
}

// holdings reads the customer's rows; the provider events are read by events.
func (p *Service) holdings(ctx context.Context, db *gorm.DB, c *models.Customer) (*holdings, error) {
	h := &holdings{}
	var err error
	if h.subscriptions, err = subscriptions.ForCustomer(ctx, db, c.ID); err != nil {
		return nil, err
	}
	if h.payments, err = payments.ForCustomer(ctx, db, c.ID); err != nil {
		return nil, err
	}
	if h.shipments, err = fulfilment.ForCustomer(ctx, db, c.ID); err != nil {
		return nil, err
	}
	if h.notifications, err = notifications.ForCustomer(ctx, db, c.ID); err != nil {
		return nil, err
	}
	return h, nil
}

// subjects are the identifiers that make a provider event the customer's: our id
// for them, and the Stripe ids of them, their subscriptions, invoices and payment
// intents, each as a whole value at its known place (package eventindex). Their
// e-mail and name never are: anyone's text may contain them.
func (h *holdings) subjects(c *models.Customer) []eventindex.Subject {
	out := []eventindex.Subject{{Kind: eventindex.Customer, Value: c.ID}}
	add := func(k eventindex.Kind, s *string) {
		if s != nil && *s != "" {
			out = append(out, eventindex.Subject{Kind: k, Value: *s})
		}
	}
	add(eventindex.StripeCustomer, c.StripeCustomerID)
	for _, s := range h.subscriptions {
		add(eventindex.Subscription, s.StripeSubscriptionID)
	}
	for _, pay := range h.payments {
		add(eventindex.Invoice, &pay.StripeInvoiceID)
		add(eventindex.PaymentIntent, pay.StripePaymentIntentID)
	}
	return out
}

// events reads the stored provider events that name any of subjects (indexed:
// call eventindex.IndexPending first), in id order, the order they are locked in.
func (p *Service) events(ctx context.Context, db *gorm.DB, subjects []eventindex.Subject, lock webhooks.EventLock) ([]*models.WebhookEvent, error) {
	ids, err := eventindex.Find(ctx, db, subjects)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return webhooks.EventsByID(ctx, db, ids, lock)
}

// mergeEvents is a followed by those of b not in it, in id order.
func mergeEvents(a, b []*models.WebhookEvent) []*models.WebhookEvent {
	seen := make(map[string]bool, len(a))
	for _, ev := range a {
		seen[ev.ID] = true
	}
	for _, ev := range b {
		if !seen[ev.ID] {
			a = append(a, ev)
		}
	}
	slices.SortFunc(a, func(x, y *models.WebhookEvent) int { return strings.Compare(x.ID, y.ID) })
	return a
}

// The export document. Field names are the API's (camelCase); money is minor units
// with its currency, as everywhere.
type exportDoc struct {
	GeneratedAt    time.Time            `json:"generatedAt"`
	Customer       *exportCustomer      `json:"customer"`
	Subscriptions  []exportSubscription `json:"subscriptions"`
	Payments       []exportPayment      `json:"payments"`
	Shipments      []exportShipment     `json:"shipments"`
	Notifications  []exportNotification `json:"notifications"`
	ProviderEvents []exportEvent        `json:"providerEvents"`
}

type exportCustomer struct {
	ID               string    `json:"id"`
	Issuer           string    `json:"issuer"`
	Subject          string    `json:"subject"`
	Email            string    `json:"email"`
	Name             *string   `json:"name"`
	StripeCustomerID *string   `json:"stripeCustomerId"`
	CreatedAt        time.Time `json:"createdAt"`
	UpdatedAt        time.Time `json:"updatedAt"`
}

type exportSubscription struct {
	ID                   string                    `json:"id"`
	PlanID               string                    `json:"planId"`
	Status               models.SubscriptionStatus `json:"status"`
	ShippingAddress      models.Address            `json:"shippingAddress"`
	CurrentPeriodStart   *time.Time                `json:"currentPeriodStart"`
	CurrentPeriodEnd     *time.Time                `json:"currentPeriodEnd"`
	CancelAtPeriodEnd    bool                      `json:"cancelAtPeriodEnd"`
	PausedUntil          *time.Time                `json:"pausedUntil"`
	StripeSubscriptionID *string                   `json:"stripeSubscriptionId"`
	CreatedAt            time.Time                 `json:"createdAt"`
	UpdatedAt            time.Time                 `json:"updatedAt"`
}

type exportPayment struct {
	ID              string               `json:"id"`
	SubscriptionID  string               `json:"subscriptionId"`
	Amount          exportMoney          `json:"amount"`
	AmountRefunded  exportMoney          `json:"amountRefunded"`
	Status          models.PaymentStatus `json:"status"`
	StripeInvoiceID string               `json:"stripeInvoiceId"`
	InvoiceURL      *string              `json:"invoiceUrl"`
	PaidAt          *time.Time           `json:"paidAt"`
	DisputedAt      *time.Time           `json:"disputedAt"`
	CreatedAt       time.Time            `json:"createdAt"`
}

type exportMoney struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

type exportShipment struct {
	ID             string                `json:"id"`
	SubscriptionID string                `json:"subscriptionId"`
	PaymentID      string                `json:"paymentId"`
	PlanID         string                `json:"planId"`
	PeriodStart    time.Time             `json:"periodStart"`
	PeriodEnd      time.Time             `json:"periodEnd"`
	Address        models.Address        `json:"address"`
	Status         models.ShipmentStatus `json:"status"`
	CreatedAt      time.Time             `json:"createdAt"`
}

type exportNotification struct {
	ID             string          `json:"id"`
	Kind           string          `json:"kind"`
	SubscriptionID *string         `json:"subscriptionId"`
	PaymentID      *string         `json:"paymentId"`
	Data           json.RawMessage `json:"data"`
	CreatedAt      time.Time       `json:"createdAt"`
	SentAt         *time.Time      `json:"sentAt"`
}

type exportEvent struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	ReceivedAt time.Time       `json:"receivedAt"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}
