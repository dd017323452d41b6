// Package subscriptions owns customers' subscriptions: who may see and change which,
// which changes each state allows, and how every change goes through Stripe with
// idempotency on both sides. A subscription's status is only ever what Stripe reports.
package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/catalog"
	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
)

// Gateway is what this service needs from the payment provider.
type Gateway interface {
	CreateCustomer(ctx context.Context, key string, in gateway.CustomerInput) (string, error)
	CreateCheckoutSession(ctx context.Context, key string, in gateway.CheckoutInput) (gateway.CheckoutSession, error)
	CreateSubscription(ctx context.Context, key string, in gateway.SubscriptionInput) (gateway.Subscription, string, error)
	ChangeSubscriptionPrice(ctx context.Context, key, subID string, in gateway.ChangePriceInput) (gateway.Subscription, error)
	PauseSubscription(ctx context.Context, key, subID string, resumesAt *time.Time) (gateway.Subscription, error)
	ResumeSubscription(ctx context.Context, key, subID string) (gateway.Subscription, error)
	CancelSubscription(ctx context.Context, key, subID string, atPeriodEnd bool) (gateway.Subscription, error)
	CreateBillingPortalSession(ctx context.Context, key, customerID, returnURL string) (string, error)
	FindPromotionCode(ctx context.Context, code string) (string, error)
}

// Customers is what this service needs to know about the caller.
type Customers interface {
	Provision(ctx context.Context, p *auth.Principal) (*models.Customer, error)
	Lookup(ctx context.Context, p *auth.Principal) (*models.Customer, error)
	ProvisionRead(ctx context.Context, p *auth.Principal, row *customers.Row) (*models.Customer, error)
}

// Config holds the service's policy knobs.
type Config struct {
	RedirectOrigins Origins // where checkout and portal may send the customer back
	AutomaticTax    bool    // ask Stripe Tax to compute tax on checkout and subscriptions
	// ShippingCountries is where Checkout lets the customer have the box sent.
	ShippingCountries []string
}

// Service is the subscription rules.
type Service struct {
	db        *gorm.DB
	gw        Gateway
	syncer    *Syncer
	customers Customers
	plans     *catalog.PlanCache
	idem      *idempotency.Store
	cfg       Config
	logger    *slog.Logger
	now       func() time.Time
}

// Option changes a part of the Service that NewService would otherwise default.
type Option func(*Service)

// WithClock makes the service judge time-bound input (a pause's resumeAt) by now
// instead of the wall clock; nil keeps the wall clock. Where Stripe's answers fall
// among its events is always judged by the wall clock, Stripe's own.
func WithClock(now func() time.Time) Option {
	return func(s *Service) {
		if now != nil {
			s.now = now
		}
	}
}

// NewService wires the service. syncer applies Stripe's answers to our changes by
// the rule its events follow.
func NewService(db *gorm.DB, gw Gateway, syncer *Syncer, customers Customers, idem *idempotency.Store, cfg Config, logger *slog.Logger, opts ...Option) *Service {
	s := &Service{db: db, gw: gw, syncer: syncer, customers: customers, plans: catalog.NewPlanCache(db), idem: idem,
		cfg: cfg, logger: logger, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Outcome is what a mutation produced, stored with its idempotency key so that a
// replay answers exactly as the first call did.
type Outcome struct {
	SubscriptionID string              `json:"subscriptionId,omitempty"`
	ClientSecret   string              `json:"clientSecret,omitempty"`
	URL            string              `json:"url,omitempty"`
	SessionID      string              `json:"sessionId,omitempty"`
	PaymentID      string              `json:"paymentId,omitempty"`
	UserErrors     []*models.UserError `json:"userErrors,omitempty"`
}

// Result is an Outcome with the objects it names loaded as they are now.
type Result struct {
	Outcome
	Subscription *models.Subscription
	Payment      *models.Payment
}

// run executes one client mutation under its idempotency key (see runKeyed).
func (s *Service) run(ctx context.Context, p *auth.Principal, op, key string, input any, check func() error,
	fn func(ctx context.Context, scope idempotency.Scope) (Outcome, error),
) (*Result, error) {
	return runKeyed(ctx, s.db, s.idem, p, op, key, input, check, fn)
}

// runKeyed executes one mutation, a customer's or staff's, under its idempotency key
// scoped to the caller and the operation.
//
// A key already answered replays its first result before anything else is looked
// at: neither the clock nor the object's state now can turn a faithful retry into a
// refusal. check (nil: none) then judges the input against what may have changed
// since a first call, such as the clock or the configuration; on the key's first use
// its refusal is not stored, as Stripe stores no answer to a request that fails
// validation, so the corrected request may use the key (a key an earlier run used
// keeps that run's input). fn's user errors become part of the stored
// outcome; any other error releases the key for a retry. The objects the outcome
// names are loaded as they are now.
func runKeyed(ctx context.Context, db *gorm.DB, idem *idempotency.Store, p *auth.Principal, op, key string, input any,
	check func() error, fn func(ctx context.Context, scope idempotency.Scope) (Outcome, error),
) (*Result, error) {
	scope := idempotency.ScopeFor(p.Issuer, p.Subject, op, key)
	out, _, err := idempotency.Run(ctx, idem, scope, input, func(ctx context.Context) (Outcome, error) {
		if check != nil {
			if err := check(); err != nil {
				return Outcome{}, idempotency.NothingDone{Err: refusal{err}}
			}
		}
		o, err := fn(ctx, scope)
		if ues, rest := models.UserErrorsOf(err); len(ues) > 0 && rest == nil {
			return Outcome{UserErrors: ues}, nil
		}
		return o, err
	})
	var r refusal
	if errors.As(err, &r) {
		return nil, r.err
	}
	if err != nil {
		return nil, idempotency.AsUserError(err)
	}
	res := &Result{Outcome: out}
	if len(out.UserErrors) > 0 {
		return res, nil
	}
	if out.SubscriptionID != "" {
		res.Subscription = new(models.Subscription)
		if err := db.WithContext(ctx).Take(res.Subscription, "id = ?", out.SubscriptionID).Error; err != nil {
			return nil, fmt.Errorf("subscriptions: %s: reload: %w", op, err)
		}
	}
	if out.PaymentID != "" {
		res.Payment = new(models.Payment)
		if err := db.WithContext(ctx).Take(res.Payment, "id = ?", out.PaymentID).Error; err != nil {
			return nil, fmt.Errorf("subscriptions: %s: reload: %w", op, err)
		}
	}
	return res, nil
}

// refusal carries check's verdict through idempotency.Run, which forgets the key it
// had just taken (idempotency.NothingDone): the corrected request may use it.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// Get returns the subscription if the caller may see it (its owner, SUPPORT or ADMIN),
// and nil otherwise: an invisible subscription looks exactly like a missing one.
func (s *Service) Get(ctx context.Context, p *auth.Principal, id string) (*models.Subscription, error) {
	if !models.ValidID(id) {
		return nil, nil
	}
	q := s.db.WithContext(ctx).Where("id = ?", id)
	if !p.Has(auth.RoleSupport) {
		c, err := s.customers.Lookup(ctx, p)
		if err != nil || c == nil {
			return nil, err
		}
		q = q.Where("customer_id = ?", c.ID)
	}
	var sub models.Subscription
	err := q.Take(&sub).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("subscriptions: get: %w", err)
	}
	return &sub, nil
}

// ForCustomer lists a customer's subscriptions, newest first, at most paging.MaxList.
func (s *Service) ForCustomer(ctx context.Context, customerID string) ([]*models.Subscription, error) {
	var subs []*models.Subscription
	err := s.db.WithContext(ctx).Where("customer_id = ?", customerID).Order("created_at DESC, id DESC").
		Limit(paging.MaxList).Find(&subs).Error
	if err != nil {
		return nil, fmt.Errorf("subscriptions: list: %w", err)
	}
	return subs, nil
}

// owned loads a subscription of the caller for a change. Anything the caller does not
// own, whatever their role, is NOT_FOUND: staff change others' objects through the
// audited admin operations only.
func (s *Service) owned(ctx context.Context, p *auth.Principal, id string) (*models.Subscription, *models.Customer, error) {
	notFound := models.NewUserError(models.UserErrorNotFound, "no such subscription", "input", "subscriptionId")
	if !models.ValidID(id) {
		return nil, nil, notFound
	}
	c, err := s.customers.Lookup(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	if c == nil {
		return nil, nil, notFound
	}
	var sub models.Subscription
	err = s.db.WithContext(ctx).Where("id = ? AND customer_id = ?", id, c.ID).Take(&sub).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, notFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("subscriptions: load: %w", err)
	}
	return &sub, c, nil
}

// activePlan loads a plan customers may subscribe to now. A plan that does not
// exist is NOT_FOUND; one that exists but is not offered (retired, or its product
// is) is INVALID.
func (s *Service) activePlan(ctx context.Context, id string, field ...string) (*models.Plan, error) {
	notFound := models.NewUserError(models.UserErrorNotFound, "no such plan", field...)
	if !models.ValidID(id) {
		return nil, notFound
	}
	var plan models.Plan
	err := s.db.WithContext(ctx).Joins("Product").Where("plans.id = ?", id).Take(&plan).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("subscriptions: plan: %w", err)
	}
	if !plan.Active || !plan.Product.Active {
		return nil, models.NewUserError(models.UserErrorInvalid, "this plan is not offered any more", field...)
	}
	if plan.StripePriceID == nil {
		return nil, models.NewUserError(models.UserErrorInvalid, "this plan is not on sale yet", field...)
	}
	return &plan, nil
}

// stripeCustomer returns the caller's Stripe customer, creating it once. Concurrent
// first calls send the same provider idempotency key, so Stripe creates one customer,
// and the conditional update keeps the first id stored.
func (s *Service) stripeCustomer(ctx context.Context, c *models.Customer) (string, error) {
	if c.StripeCustomerID != nil {
		return *c.StripeCustomerID, nil
	}
	id, err := s.gw.CreateCustomer(ctx, "scv-customer-"+c.ID, gateway.CustomerInput{OurCustomerID: c.ID, Email: c.Email, Name: deref(c.Name)})
	if err != nil {
		return "", providerFailure(err)
	}
	linked, err := customers.LinkStripeCustomer(ctx, s.db, c.ID, id)
	if err != nil {
		return "", fmt.Errorf("subscriptions: store stripe customer: %w", err)
	}
	if !linked {
		var stored models.Customer
		if err := s.db.WithContext(ctx).Take(&stored, "id = ?", c.ID).Error; err != nil {
			return "", fmt.Errorf("subscriptions: reload customer: %w", err)
		}
		return deref(stored.StripeCustomerID), nil
	}
	c.StripeCustomerID = &id
	return id, nil
}

// promotion resolves a customer-typed code at Stripe; "" means none.
func (s *Service) promotion(ctx context.Context, code *string) (string, error) {
	if code == nil || strings.TrimSpace(*code) == "" {
		return "", nil
	}
	c := strings.TrimSpace(*code)
	if len(c) > 100 || strings.ContainsFunc(c, func(r rune) bool { return r < 0x20 }) {
		return "", models.NewUserError(models.UserErrorInvalid, "is not a valid promotion code", "input", "promotionCode")
	}
	id, err := s.gw.FindPromotionCode(ctx, c)
	if errors.Is(err, gateway.ErrPromotionCodeNotFound) {
		return "", models.NewUserError(models.UserErrorInvalid, "this promotion code is unknown or has expired", "input", "promotionCode")
	}
	if err != nil {
		return "", providerFailure(err)
	}
	return id, nil
}

// providerFailure is gateway.AsUserError with this package's message for a refusal.
func providerFailure(err error) error {
	return gateway.AsUserError(err, "the payment provider refused the request")
}

// applyProvider copies Stripe's view of the subscription onto ours.
func applyProvider(sub *models.Subscription, gs gateway.Subscription) {
	sub.Status = gs.APIStatus()
	sub.StripeSubscriptionID = &gs.ID
	if gs.ItemID != "" {
		sub.StripeItemID = &gs.ItemID
	}
	sub.CurrentPeriodStart = timePtr(gs.CurrentPeriodStart)
	sub.CurrentPeriodEnd = timePtr(gs.CurrentPeriodEnd)
	sub.CancelAtPeriodEnd = gs.CancelAtPeriodEnd
	sub.PausedUntil = gs.PausedUntil
	if gs.PauseBehavior == "" {
		sub.PausedUntil = nil
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
