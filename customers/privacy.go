package customers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/eventindex"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
)

// Privacy serves a customer's rights over their data (DAT-3): a copy of everything
// held about them, and erasure.
//
// Erasure keeps what the law requires a merchant to keep (payments, and which box
// was shipped for which payment) and removes the person from it:
//
//   - customers: the row stays as a pseudonym: e-mail and name emptied, issuer and
//     subject replaced by a random identity nobody can sign in as (so a later
//     sign-in by the same person creates a fresh customer). The Stripe customer id
//     stays as the link to Stripe's own retained invoices; Stripe deletes the
//     customer's personal data on its side (DeleteCustomer).
//   - subscriptions and shipments: the address is emptied except its country (a
//     tax fact of the sale); statuses, periods and amounts stay.
//   - payments: kept whole, except the hosted invoice URL, a bearer link to a page
//     showing the billing name and address.
//   - notifications: deleted (they only existed to e-mail the person).
//   - webhook_events that are the customer's: those whose object names, at a known
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
type Privacy struct {
	db     *gorm.DB
	gw     PrivacyGateway
	idem   *idempotency.Store
	queue  Inserter
	logger *slog.Logger
	// beforeLookup runs in erasure's transaction before it looks up the
	// customer's events (a test seam; nil in production).
	beforeLookup func()
}

// BeforeEraseLookup is a test seam: f runs inside each erasure's transaction right
// before it looks up and locks the customer's events, where an event arriving at
// that moment is not seen. Call it before the service is used.
func (p *Privacy) BeforeEraseLookup(f func()) { p.beforeLookup = f }

// PrivacyGateway is what erasure needs from the payment provider.
type PrivacyGateway interface {
	CancelSubscription(ctx context.Context, key, subID string, atPeriodEnd bool) (gateway.Subscription, error)
	GetSubscription(ctx context.Context, id string) (gateway.Subscription, error)
	DeleteCustomer(ctx context.Context, key, customerID string) error
}

// NewPrivacy wires the service; queue schedules the later scrubs of an erasure
// (ScrubArgs); a nil logger discards log lines.
func NewPrivacy(db *gorm.DB, gw PrivacyGateway, idem *idempotency.Store, queue Inserter, logger *slog.Logger) *Privacy {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Privacy{db: db, gw: gw, idem: idem, queue: queue, logger: logger}
}

// OpDeleteMyAccount names the erasure for idempotency keys and the audit log.
const OpDeleteMyAccount = "deleteMyAccount"

// ErasedIssuer is the issuer of an erased customer's pseudonymous identity: no
// identity provider has it, so no token ever matches the row again.
const ErasedIssuer = "urn:scoville:erased"

// Export is the caller's data as one JSON document: their customer record,
// subscriptions, payments, shipments, notifications and the provider events that
// are theirs (see Privacy), and nobody else's. Someone never seen gets a document
// with nothing in it. Its cost is the caller's rows and events: events are found
// by an index, and only those are opened.
func (p *Privacy) Export(ctx context.Context, who *auth.Principal) (*models.DataExport, error) {
	now := time.Now().UTC()
	doc := exportDoc{GeneratedAt: now, Subscriptions: []exportSubscription{}, Payments: []exportPayment{},
		Shipments: []exportShipment{}, Notifications: []exportNotification{}, ProviderEvents: []exportEvent{}}
	db := p.db.WithContext(ctx)
	var c models.Customer
	err := byPrincipal(db, who, &c)
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return encodeExport(now, doc)
	case err != nil:
		return nil, fmt.Errorf("customers: export: %w", err)
	}
	// Stored events not indexed yet are indexed first (each only once, ever), so
	// that the lookup by identifiers sees them.
	if _, err := eventindex.IndexPending(ctx, p.db); err != nil {
		return nil, fmt.Errorf("customers: export: %w", err)
	}
	h, err := p.holdings(ctx, db, &c)
	if err != nil {
		return nil, fmt.Errorf("customers: export: %w", err)
	}
	if h.events, err = p.events(ctx, db, h.subjects(&c), lockNone); err != nil {
		return nil, fmt.Errorf("customers: export: %w", err)
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
		return nil, fmt.Errorf("customers: export: encode: %w", err)
	}
	return &models.DataExport{GeneratedAt: now, JSON: string(raw)}, nil
}

// DeleteOutcome is what an erasure request produced, stored with its idempotency key
// so that a replay answers as the first call did.
type DeleteOutcome struct {
	Deleted    bool                `json:"deleted"`
	UserErrors []*models.UserError `json:"userErrors,omitempty"`
}

// Delete erases the caller (see Privacy for what is kept). It first cancels the
// caller's live subscriptions at Stripe, now, and deletes their Stripe customer;
// only when Stripe has done both is anything erased here, in one transaction with
// its audit entry. When Stripe cannot be reached the error wraps
// gateway.ErrProviderUnavailable, nothing was erased, and the same key may be
// retried: every Stripe call carries a key derived from it.
func (p *Privacy) Delete(ctx context.Context, who *auth.Principal, in models.DeleteMyAccountInput) (*DeleteOutcome, error) {
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

func (p *Privacy) erase(ctx context.Context, who *auth.Principal, scope idempotency.Scope) error {
	db := p.db.WithContext(ctx)
	var c models.Customer
	err := byPrincipal(db, who, &c)
	if errors.Is(err, gorm.ErrRecordNotFound) {
		// Never provisioned: nothing is held; the request itself is still recorded.
		return db.Transaction(func(tx *gorm.DB) error {
			return audit.Record(ctx, tx, who, audit.Action{Name: OpDeleteMyAccount, TargetType: "customer",
				Reason: "erasure requested by the customer; nothing was held"})
		})
	}
	if err != nil {
		return fmt.Errorf("customers: erase: %w", err)
	}

	// Stripe first: a failure here leaves everything as it was.
	var subs []*models.Subscription
	if err := db.Where("customer_id = ?", c.ID).Order("created_at, id").Find(&subs).Error; err != nil {
		return fmt.Errorf("customers: erase: subscriptions: %w", err)
	}
	stripeStatus := map[string]models.SubscriptionStatus{}
	for _, s := range subs {
		if s.StripeSubscriptionID == nil || s.Status.Ended() {
			continue
		}
		st, err := p.cancelAtStripe(ctx, scope.ProviderKey("cancel-"+s.ID), *s.StripeSubscriptionID)
		if err != nil {
			return err
		}
		stripeStatus[s.ID] = st
	}
	if c.StripeCustomerID != nil {
		if err := p.gw.DeleteCustomer(ctx, scope.ProviderKey("customer"), *c.StripeCustomerID); err != nil {
			return providerFailure(err)
		}
	}

	if _, err := eventindex.IndexPending(ctx, p.db); err != nil {
		return fmt.Errorf("customers: erase: %w", err)
	}
	var canceled []string
	err = db.Transaction(func(tx *gorm.DB) error {
		// Lock order (eventindex.LockCustomers): the customer's events first, as the
		// event worker takes an event before the customer's rows, then the customer,
		// then their subscriptions, payments, shipments and notifications.
		if p.beforeLookup != nil {
			p.beforeLookup()
		}
		before, err := p.holdings(ctx, tx, &c)
		if err != nil {
			return fmt.Errorf("customers: erase: %w", err)
		}
		events, err := p.events(ctx, tx, before.subjects(&c), lockWait)
		if err != nil {
			return fmt.Errorf("customers: erase: %w", err)
		}
		var locked models.Customer
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&locked, "id = ?", c.ID).Error; err != nil {
			return fmt.Errorf("customers: erase: lock: %w", err)
		}
		if locked.Issuer != who.Issuer || locked.Subject != who.Subject {
			return nil // erased meanwhile by a concurrent request with another key
		}
		h, err := p.holdings(ctx, tx, &locked)
		if err != nil {
			return fmt.Errorf("customers: erase: %w", err)
		}
		// An event applied while the customer was not locked yet may have named a
		// new invoice, and events about it. Those taken by a worker right now are
		// not waited for (it holds them before the customer, which is ours now):
		// the scheduled scrubs (ScrubDelays) find them.
		late, err := p.events(ctx, tx, h.subjects(&locked), lockSkip)
		if err != nil {
			return fmt.Errorf("customers: erase: %w", err)
		}
		h.events = mergeEvents(events, late)
		now := time.Now().UTC()
		for _, s := range h.subscriptions {
			s.ShippingAddress = erasedAddress(s.ShippingAddress)
			cols := []string{"shipping_address", "updated_at"}
			if st, ok := stripeStatus[s.ID]; ok {
				s.Status, s.CancelAtPeriodEnd = st, false
				cols = append(cols, "status", "cancel_at_period_end")
				canceled = append(canceled, s.ID)
			}
			s.UpdatedAt = now
			if err := tx.Model(s).Select(cols).Updates(s).Error; err != nil {
				return fmt.Errorf("customers: erase: subscription: %w", err)
			}
		}
		for _, pay := range h.payments {
			if pay.InvoiceURL == nil {
				continue
			}
			pay.InvoiceURL, pay.UpdatedAt = nil, now
			if err := tx.Model(pay).Select("invoice_url", "updated_at").Updates(pay).Error; err != nil {
				return fmt.Errorf("customers: erase: payment: %w", err)
			}
		}
		for _, s := range h.shipments {
			s.Address, s.UpdatedAt = erasedAddress(s.Address), now
			if err := tx.Model(s).Select("address", "updated_at").Updates(s).Error; err != nil {
				return fmt.Errorf("customers: erase: shipment: %w", err)
			}
		}
		if err := tx.Where("customer_id = ?", locked.ID).Delete(&notificationRow{}).Error; err != nil {
			return fmt.Errorf("customers: erase: notifications: %w", err)
		}
		for _, ev := range h.events {
			ev.Payload = scrubPayload(ev.Payload)
			if err := tx.Model(ev).Select("payload").Updates(ev).Error; err != nil {
				return fmt.Errorf("customers: erase: webhook event: %w", err)
			}
		}
		held := map[string]any{"subscriptions": len(h.subscriptions), "payments": len(h.payments),
			"shipments": len(h.shipments), "notifications": len(h.notifications), "providerEvents": len(h.events)}
		locked.Issuer, locked.Subject = ErasedIssuer, uuid.NewString()
		locked.Email, locked.Name, locked.UpdatedAt = "", nil, now
		// Save writes every column the model has, so whatever is derived from the
		// e-mail or name (a blind index, say) is rewritten from the emptied values.
		if err := tx.Save(&locked).Error; err != nil {
			return fmt.Errorf("customers: erase: customer: %w", err)
		}
		if err := p.enqueueScrubs(ctx, tx, locked.ID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, who, audit.Action{
			Name: OpDeleteMyAccount, TargetType: "customer", TargetID: locked.ID,
			Reason: "erasure requested by the customer (DAT-3); financial records kept under a pseudonym",
			Before: held, After: map[string]any{"pseudonymous": true, "canceledSubscriptions": canceled},
		})
	})
	if err != nil {
		return err
	}
	p.logger.InfoContext(ctx, "customer erased", "customer_id", c.ID, "canceled_subscriptions", len(canceled))
	return nil
}

// cancelAtStripe ends a subscription now. One Stripe no longer knows, or one it
// refuses to cancel because it has ended already, counts as ended.
func (p *Privacy) cancelAtStripe(ctx context.Context, key, stripeID string) (models.SubscriptionStatus, error) {
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

// erasedAddress keeps only the country, which a sale's tax records need.
func erasedAddress(a models.Address) models.Address {
	return models.Address{Country: a.Country}
}

// holdings is everything stored about one customer.
type holdings struct {
	subscriptions []*models.Subscription
	payments      []*models.Payment
	shipments     []*models.Shipment
	notifications []*notificationRow
	events        []*models.WebhookEvent
}

// notificationRow is a notifications row as this package reads and deletes it.
type notificationRow struct {
	ID             string
	CustomerID     string
	Kind           string
	SubscriptionID *string
	PaymentID      *string
	Data           []byte
	CreatedAt      time.Time
	SentAt         *time.Time
}

// TableName is the notifications package's table.
func (notificationRow) TableName() string { return "notifications" }

// holdings reads the customer's rows; the provider events are read by events.
func (p *Privacy) holdings(_ context.Context, db *gorm.DB, c *models.Customer) (*holdings, error) {
	h := &holdings{}
	if err := db.Where("customer_id = ?", c.ID).Order("created_at, id").Find(&h.subscriptions).Error; err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	if err := db.Where("customer_id = ?", c.ID).Order("created_at, id").Find(&h.payments).Error; err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	if err := db.Where("customer_id = ?", c.ID).Order("created_at, id").Find(&h.shipments).Error; err != nil {
		return nil, fmt.Errorf("shipments: %w", err)
	}
	if err := db.Where("customer_id = ?", c.ID).Order("created_at, id").Find(&h.notifications).Error; err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
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

// How events reads the events it finds: plainly (export), locked waiting for
// whoever holds them, or locked skipping those held.
const (
	lockNone = ""
	lockWait = "wait"
	lockSkip = "skip"
)

// events reads the stored provider events that name any of subjects (indexed:
// call eventindex.IndexPending first), in id order, the order they are locked in.
func (p *Privacy) events(ctx context.Context, db *gorm.DB, subjects []eventindex.Subject, lock string) ([]*models.WebhookEvent, error) {
	ids, err := eventindex.Find(ctx, db, subjects)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	q := db.Where("id IN ?", ids).Order("id")
	switch lock {
	case lockWait:
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	case lockSkip:
		q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
	}
	var out []*models.WebhookEvent
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("webhook events: %w", err)
	}
	return out, nil
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

// personalFields are Stripe object fields that hold a person's data (name,
// e-mail, address, phone) or a bearer link to a page showing them (a hosted
// invoice); erasure sets them to null wherever they appear in the customer's
// events' data.object and data.previous_attributes, except inside metadata, which
// holds our ids.
var personalFields = map[string]bool{
	"email": true, "name": true, "phone": true, "address": true, "shipping": true,
	"billing_details": true, "customer_email": true, "customer_name": true, "customer_phone": true,
	"customer_address": true, "customer_shipping": true, "customer_details": true,
	"shipping_details": true, "receipt_email": true, "individual": true,
	"hosted_invoice_url": true, "invoice_pdf": true, "receipt_url": true,
}

// freeTextFields are an object's own free text, which may quote the person
// (an invoice's description, say); they are nulled at the top of the object only.
var freeTextFields = map[string]bool{"description": true, "statement_descriptor": true}

// scrubPayload returns an event of the erased customer with the personal fields of
// its data.object and data.previous_attributes set to null, by path, and
// "erased": true added; ids, types, amounts and statuses stay, so the event still
// says what happened and can still be applied. Scrubbing a scrubbed event again
// gives the same bytes. A payload that is not JSON is replaced whole.
func scrubPayload(payload []byte) []byte {
	var tree any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // amounts and timestamps stay exact
	if dec.Decode(&tree) != nil {
		return []byte(`{"erased":true}`)
	}
	root, ok := tree.(map[string]any)
	if !ok {
		return []byte(`{"erased":true}`)
	}
	if data, ok := root["data"].(map[string]any); ok {
		for _, key := range []string{"object", "previous_attributes"} {
			obj, ok := data[key].(map[string]any)
			if !ok {
				continue
			}
			for k := range obj {
				if freeTextFields[k] {
					obj[k] = nil
				}
			}
			nullPersonal(obj)
		}
	}
	root["erased"] = true
	out, err := json.Marshal(root)
	if err != nil {
		return []byte(`{"erased":true}`)
	}
	return out
}

// nullPersonal sets the personal fields to null in v and every object inside it,
// except inside metadata.
func nullPersonal(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			switch {
			case personalFields[k]:
				t[k] = nil
			case k != "metadata":
				nullPersonal(x)
			}
		}
	case []any:
		for _, x := range t {
			nullPersonal(x)
		}
	}
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
