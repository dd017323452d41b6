package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// Stripe's documented limits, checked here so a bad argument is an
// ErrInvalidInput before any request rather than a 400 after one.
const (
	maxTrialDays       = 730
	maxMetadataKeys    = 50
	maxMetadataKeyLen  = 40
	maxMetadataValLen  = 500
	maxIDLen           = 255
	maxPromotionCodeLn = 500
)

// CreateCustomer creates a Stripe customer carrying our id in
// metadata[scoville_customer_id] and returns Stripe's id (cus_...).
func (s *Stripe) CreateCustomer(ctx context.Context, key string, in CustomerInput) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if err := checkID("OurCustomerID", in.OurCustomerID); err != nil {
		return "", err
	}
	var out *stripe.Customer
	err := s.call(ctx, "CreateCustomer", func(ctx context.Context) error {
		p := &stripe.CustomerParams{Metadata: map[string]string{MetadataCustomerID: in.OurCustomerID}}
		p.Params = writeParams(ctx, key)
		if in.Email != "" {
			p.Email = stripe.String(in.Email)
		}
		if in.Name != "" {
			p.Name = stripe.String(in.Name)
		}
		var err error
		out, err = s.api.Customers.New(p)
		return err
	})
	if err != nil {
		return "", err
	}
	return out.ID, nil
}

// CreateProductAndPrice creates the product and its recurring price under keys
// derived from the caller's one, so a retry after a failure between the two
// requests completes the pair instead of leaving a product without a price.
// Returns (prod_..., price_...).
func (s *Stripe) CreateProductAndPrice(ctx context.Context, key string, in PlanInput) (productID, priceID string, err error) {
	if err := checkKey(key); err != nil {
		return "", "", err
	}
	interval, count, err := stripeInterval(in.Interval)
	if err != nil {
		return "", "", err
	}
	currency, err := stripeCurrency(in.Currency)
	if err != nil {
		return "", "", err
	}
	switch {
	case strings.TrimSpace(in.Name) == "":
		return "", "", invalid("Name", "is required")
	case in.Amount <= 0:
		return "", "", invalid("Amount", "must be positive (minor units)")
	}
	if err := checkID("OurPlanID", in.OurPlanID); err != nil {
		return "", "", err
	}

	// Two requests, each under its own key derived from the caller's: a retry after a
	// failure between them replays the product and creates the price, so nothing is
	// left half-done. (One request with default_price_data would do too, but stripe-mock
	// answers it with a fixed price id, which would hide duplicate-price bugs in tests.)
	var product *stripe.Product
	err = s.call(ctx, "CreateProduct", func(ctx context.Context) error {
		p := &stripe.ProductParams{
			Name:     stripe.String(in.Name),
			Metadata: map[string]string{MetadataPlanID: in.OurPlanID},
		}
		p.Params = writeParams(ctx, key+"-product")
		if in.Description != "" {
			p.Description = stripe.String(in.Description)
		}
		var err error
		product, err = s.api.Products.New(p)
		return err
	})
	if err != nil {
		return "", "", err
	}
	var price *stripe.Price
	err = s.call(ctx, "CreatePrice", func(ctx context.Context) error {
		p := &stripe.PriceParams{
			Product:    stripe.String(product.ID),
			Currency:   stripe.String(currency),
			UnitAmount: stripe.Int64(in.Amount),
			Recurring: &stripe.PriceRecurringParams{
				Interval:      stripe.String(interval),
				IntervalCount: stripe.Int64(count),
			},
			Metadata: map[string]string{MetadataPlanID: in.OurPlanID},
		}
		p.Params = writeParams(ctx, key+"-price")
		var err error
		price, err = s.api.Prices.New(p)
		return err
	})
	if err != nil {
		return "", "", err
	}
	return product.ID, price.ID, nil
}

// CreateCheckoutSession opens a hosted Checkout session in subscription mode
// (PAY-1: card data stays with Stripe). Payment methods are those enabled on the
// account (PAY-4), so none are listed here.
func (s *Stripe) CreateCheckoutSession(ctx context.Context, key string, in CheckoutInput) (CheckoutSession, error) {
	if err := checkKey(key); err != nil {
		return CheckoutSession{}, err
	}
	if err := errors.Join(
		checkID("CustomerID", in.CustomerID), checkID("PriceID", in.PriceID),
		checkURL("SuccessURL", in.SuccessURL), checkURL("CancelURL", in.CancelURL),
		checkTrial(in.TrialDays), checkMetadata(in.Metadata),
		checkOptionalID("PromotionCodeID", in.PromotionCodeID),
		checkOptionalID("ClientReferenceID", in.ClientReferenceID),
	); err != nil {
		return CheckoutSession{}, err
	}
	var out *stripe.CheckoutSession
	err := s.call(ctx, "CreateCheckoutSession", func(ctx context.Context) error {
		p := &stripe.CheckoutSessionParams{
			Mode:       stripe.String(string(stripe.CheckoutSessionModeSubscription)),
			Customer:   stripe.String(in.CustomerID),
			SuccessURL: stripe.String(in.SuccessURL),
			CancelURL:  stripe.String(in.CancelURL),
			LineItems: []*stripe.CheckoutSessionLineItemParams{
				{Price: stripe.String(in.PriceID), Quantity: stripe.Int64(1)},
			},
			Metadata:         in.Metadata,
			SubscriptionData: &stripe.CheckoutSessionSubscriptionDataParams{Metadata: in.Metadata},
		}
		p.Params = writeParams(ctx, key)
		if in.ClientReferenceID != "" {
			p.ClientReferenceID = stripe.String(in.ClientReferenceID)
		}
		if in.TrialDays > 0 {
			p.SubscriptionData.TrialPeriodDays = stripe.Int64(int64(in.TrialDays))
		}
		if in.PromotionCodeID != "" {
			p.Discounts = []*stripe.CheckoutSessionDiscountParams{{PromotionCode: stripe.String(in.PromotionCodeID)}}
		}
		if len(in.ShippingCountries) > 0 {
			p.ShippingAddressCollection = &stripe.CheckoutSessionShippingAddressCollectionParams{
				AllowedCountries: stripe.StringSlice(in.ShippingCountries),
			}
		}
		if in.AutomaticTax {
			p.AutomaticTax = &stripe.CheckoutSessionAutomaticTaxParams{Enabled: stripe.Bool(true)}
			// Stripe Tax needs an address; let Checkout save the one it collects.
			p.CustomerUpdate = &stripe.CheckoutSessionCustomerUpdateParams{Address: stripe.String("auto")}
		}
		var err error
		out, err = s.api.CheckoutSessions.New(p)
		return err
	})
	if err != nil {
		return CheckoutSession{}, err
	}
	return CheckoutSession{ID: out.ID, URL: out.URL}, nil
}

// CreateSubscription creates a subscription for the Payment Element flow (PAY-2):
// payment_behavior=default_incomplete leaves it incomplete until the customer
// confirms the first payment (3-D Secure included) with the returned client
// secret, and the payment method is saved on the subscription. The secret is the
// first invoice's PaymentIntent's; when a trial means nothing is due now it is the
// pending SetupIntent's, and it is "" when Stripe needs neither.
func (s *Stripe) CreateSubscription(ctx context.Context, key string, in SubscriptionInput) (Subscription, string, error) {
	if err := checkKey(key); err != nil {
		return Subscription{}, "", err
	}
	if err := errors.Join(
		checkID("CustomerID", in.CustomerID), checkID("PriceID", in.PriceID),
		checkTrial(in.TrialDays), checkMetadata(in.Metadata),
		checkOptionalID("PromotionCodeID", in.PromotionCodeID),
	); err != nil {
		return Subscription{}, "", err
	}
	var out *stripe.Subscription
	err := s.call(ctx, "CreateSubscription", func(ctx context.Context) error {
		p := &stripe.SubscriptionParams{
			Customer: stripe.String(in.CustomerID),
			Items: []*stripe.SubscriptionItemsParams{
				{Price: stripe.String(in.PriceID), Quantity: stripe.Int64(1)},
			},
			PaymentBehavior: stripe.String("default_incomplete"),
			PaymentSettings: &stripe.SubscriptionPaymentSettingsParams{
				SaveDefaultPaymentMethod: stripe.String("on_subscription"),
			},
			Metadata: in.Metadata,
		}
		p.Params = writeParams(ctx, key)
		if in.TrialDays > 0 {
			p.TrialPeriodDays = stripe.Int64(int64(in.TrialDays))
		}
		if in.PromotionCodeID != "" {
			p.PromotionCode = stripe.String(in.PromotionCodeID)
		}
		if in.AutomaticTax {
			p.AutomaticTax = &stripe.SubscriptionAutomaticTaxParams{Enabled: stripe.Bool(true)}
		}
		p.AddExpand("latest_invoice.payment_intent")
		p.AddExpand("pending_setup_intent")
		var err error
		out, err = s.api.Subscriptions.New(p)
		return err
	})
	if err != nil {
		return Subscription{}, "", err
	}
	return toSubscription(out), clientSecret(out), nil
}

// GetSubscription reads a subscription from Stripe: the server-side read that may
// change our status (PAY-3). Unknown ids give ErrNotFound.
func (s *Stripe) GetSubscription(ctx context.Context, id string) (Subscription, error) {
	if err := checkID("id", id); err != nil {
		return Subscription{}, err
	}
	var out *stripe.Subscription
	err := s.call(ctx, "GetSubscription", func(ctx context.Context) error {
		p := &stripe.SubscriptionParams{Params: stripe.Params{Context: ctx}}
		var err error
		out, err = s.api.Subscriptions.Get(id, p)
		return err
	})
	if err != nil {
		return Subscription{}, err
	}
	return toSubscription(out), nil
}

// GetInvoice reads an invoice from Stripe, for a webhook processor that wants
// the current state rather than the event's snapshot. Unknown ids give
// ErrNotFound.
func (s *Stripe) GetInvoice(ctx context.Context, id string) (Invoice, error) {
	if err := checkID("id", id); err != nil {
		return Invoice{}, err
	}
	var out *stripe.Invoice
	err := s.call(ctx, "GetInvoice", func(ctx context.Context) error {
		p := &stripe.InvoiceParams{Params: stripe.Params{Context: ctx}}
		var err error
		out, err = s.api.Invoices.Get(id, p)
		return err
	})
	if err != nil {
		return Invoice{}, err
	}
	return toInvoice(out), nil
}

// GetCharge reads a charge from Stripe, e.g. to find the invoice behind a
// dispute or an early fraud warning. Unknown ids give ErrNotFound.
func (s *Stripe) GetCharge(ctx context.Context, id string) (Charge, error) {
	if err := checkID("id", id); err != nil {
		return Charge{}, err
	}
	var out *stripe.Charge
	err := s.call(ctx, "GetCharge", func(ctx context.Context) error {
		p := &stripe.ChargeParams{Params: stripe.Params{Context: ctx}}
		var err error
		out, err = s.api.Charges.Get(id, p)
		return err
	})
	if err != nil {
		return Charge{}, err
	}
	return toCharge(out), nil
}

// ChangeSubscriptionPrice moves the subscription item to in.PriceID. With
// in.Prorate the difference is prorated (proration_behavior=create_prorations):
// credits and charges for the rest of the current period, billed with the next
// invoice. Without it nothing is prorated (proration_behavior=none): no credit
// for the unused time of the current period, whose box has shipped; when the
// new price's interval differs, Stripe starts a new period now and bills it in
// full at once.
func (s *Stripe) ChangeSubscriptionPrice(ctx context.Context, key, subID string, in ChangePriceInput) (Subscription, error) {
	if err := checkKey(key); err != nil {
		return Subscription{}, err
	}
	if err := errors.Join(checkID("subID", subID), checkID("itemID", in.ItemID), checkID("newPriceID", in.PriceID)); err != nil {
		return Subscription{}, err
	}
	behavior := "none"
	if in.Prorate {
		behavior = "create_prorations"
	}
	return s.updateSubscription(ctx, "ChangeSubscriptionPrice", key, subID, func(p *stripe.SubscriptionParams) {
		p.Items = []*stripe.SubscriptionItemsParams{{ID: stripe.String(in.ItemID), Price: stripe.String(in.PriceID)}}
		p.ProrationBehavior = stripe.String(behavior)
	})
}

// PauseSubscription pauses collection with PauseBehavior (void): no charge and no
// delivery until resumed. With resumesAt (which must be in the future) Stripe
// resumes by itself then; without it the pause lasts until ResumeSubscription.
// Stripe keeps the status as it was (e.g. active): read PauseBehavior.
func (s *Stripe) PauseSubscription(ctx context.Context, key, subID string, resumesAt *time.Time) (Subscription, error) {
	if err := checkKey(key); err != nil {
		return Subscription{}, err
	}
	if err := checkID("subID", subID); err != nil {
		return Subscription{}, err
	}
	if resumesAt != nil && !resumesAt.After(time.Now()) {
		return Subscription{}, invalid("resumesAt", "must be in the future")
	}
	return s.updateSubscription(ctx, "PauseSubscription", key, subID, func(p *stripe.SubscriptionParams) {
		p.PauseCollection = &stripe.SubscriptionPauseCollectionParams{Behavior: stripe.String(PauseBehavior)}
		if resumesAt != nil {
			p.PauseCollection.ResumesAt = stripe.Int64(resumesAt.Unix())
		}
	})
}

// ResumeSubscription clears pause_collection, so the next invoice is collected
// normally. Resuming a subscription that is not paused is a harmless no-op.
func (s *Stripe) ResumeSubscription(ctx context.Context, key, subID string) (Subscription, error) {
	if err := checkKey(key); err != nil {
		return Subscription{}, err
	}
	if err := checkID("subID", subID); err != nil {
		return Subscription{}, err
	}
	return s.updateSubscription(ctx, "ResumeSubscription", key, subID, func(p *stripe.SubscriptionParams) {
		// Stripe unsets a field sent as an empty string.
		p.AddExtra("pause_collection", "")
	})
}

// CancelSubscription cancels at the end of the paid period
// (cancel_at_period_end=true, reversible until then) or immediately (Stripe's
// cancel, final, without proration or a final invoice).
func (s *Stripe) CancelSubscription(ctx context.Context, key, subID string, atPeriodEnd bool) (Subscription, error) {
	if err := checkKey(key); err != nil {
		return Subscription{}, err
	}
	if err := checkID("subID", subID); err != nil {
		return Subscription{}, err
	}
	if atPeriodEnd {
		return s.updateSubscription(ctx, "CancelSubscription", key, subID, func(p *stripe.SubscriptionParams) {
			p.CancelAtPeriodEnd = stripe.Bool(true)
		})
	}
	var out *stripe.Subscription
	err := s.call(ctx, "CancelSubscription", func(ctx context.Context) error {
		p := &stripe.SubscriptionCancelParams{Params: writeParams(ctx, key)}
		var err error
		out, err = s.api.Subscriptions.Cancel(subID, p)
		return err
	})
	if err != nil {
		return Subscription{}, err
	}
	return answered(out), nil
}

// CreateBillingPortalSession returns a short-lived URL of Stripe's customer portal,
// where the customer manages payment methods (PAY-1: never through us).
func (s *Stripe) CreateBillingPortalSession(ctx context.Context, key, customerID, returnURL string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if err := errors.Join(checkID("customerID", customerID), checkURL("returnURL", returnURL)); err != nil {
		return "", err
	}
	var out *stripe.BillingPortalSession
	err := s.call(ctx, "CreateBillingPortalSession", func(ctx context.Context) error {
		p := &stripe.BillingPortalSessionParams{
			Customer:  stripe.String(customerID),
			ReturnURL: stripe.String(returnURL),
		}
		p.Params = writeParams(ctx, key)
		var err error
		out, err = s.api.BillingPortalSessions.New(p)
		return err
	})
	if err != nil {
		return "", err
	}
	return out.URL, nil
}

// FindPromotionCode returns the id (promo_...) of the active promotion code a
// customer typed. Stripe matches the code case-insensitively; a code that is
// unknown, inactive, expired or whose coupon is no longer valid gives
// ErrPromotionCodeNotFound.
func (s *Stripe) FindPromotionCode(ctx context.Context, code string) (string, error) {
	code = strings.TrimSpace(code)
	if code == "" || len(code) > maxPromotionCodeLn {
		return "", ErrPromotionCodeNotFound
	}
	var found *stripe.PromotionCode
	err := s.call(ctx, "FindPromotionCode", func(ctx context.Context) error {
		p := &stripe.PromotionCodeListParams{Code: stripe.String(code), Active: stripe.Bool(true)}
		p.Context = ctx
		p.Limit = stripe.Int64(1)
		p.Single = true // one page: never follow has_more
		it := s.api.PromotionCodes.List(p)
		found = nil
		if it.Next() {
			found = it.PromotionCode()
		}
		return it.Err()
	})
	if err != nil {
		return "", err
	}
	// Stripe filtered already; check again so a stale or lenient answer cannot
	// hand out an inactive discount.
	if found == nil || !found.Active ||
		(found.ExpiresAt != 0 && time.Unix(found.ExpiresAt, 0).Before(time.Now())) ||
		(found.Coupon != nil && found.Coupon.ID != "" && !found.Coupon.Valid) {
		return "", ErrPromotionCodeNotFound
	}
	return found.ID, nil
}

// updateSubscription posts one subscription update under key.
func (s *Stripe) updateSubscription(ctx context.Context, op, key, subID string, set func(*stripe.SubscriptionParams)) (Subscription, error) {
	var out *stripe.Subscription
	err := s.call(ctx, op, func(ctx context.Context) error {
		p := &stripe.SubscriptionParams{}
		set(p)
		p.Params.Context = ctx
		p.Params.IdempotencyKey = stripe.String(key)
		var err error
		out, err = s.api.Subscriptions.Update(subID, p)
		return err
	})
	if err != nil {
		return Subscription{}, err
	}
	return answered(out), nil
}

// answered is Stripe's answer to a write on a subscription, marked when Stripe
// replayed it (Idempotent-Replayed) instead of acting now.
func answered(in *stripe.Subscription) Subscription {
	out := toSubscription(in)
	out.Replayed = in.LastResponse != nil && in.LastResponse.Header.Get("Idempotent-Replayed") == "true"
	return out
}

// writeParams carries the attempt's context and the caller's key, the same on every
// attempt.
func writeParams(ctx context.Context, key string) stripe.Params {
	return stripe.Params{Context: ctx, IdempotencyKey: stripe.String(key)}
}

func toSubscription(in *stripe.Subscription) Subscription {
	out := Subscription{
		ID:                 in.ID,
		Status:             string(in.Status),
		CurrentPeriodStart: unixTime(in.CurrentPeriodStart),
		CurrentPeriodEnd:   unixTime(in.CurrentPeriodEnd),
		CancelAtPeriodEnd:  in.CancelAtPeriodEnd,
		Currency:           upper(in.Currency),
		Metadata:           in.Metadata,
		Created:            unixTime(in.Created),
	}
	if in.Customer != nil {
		out.CustomerID = in.Customer.ID
	}
	if in.Items != nil && len(in.Items.Data) > 0 && in.Items.Data[0] != nil {
		item := in.Items.Data[0]
		out.ItemID = item.ID
		if item.Price != nil {
			out.PriceID = item.Price.ID
			out.Amount = item.Price.UnitAmount * max(item.Quantity, 1)
			if out.Currency == "" {
				out.Currency = upper(item.Price.Currency)
			}
		}
	}
	if pc := in.PauseCollection; pc != nil && pc.Behavior != "" {
		out.PauseBehavior = string(pc.Behavior)
		if pc.ResumesAt != 0 {
			t := unixTime(pc.ResumesAt)
			out.PausedUntil = &t
		}
	}
	if in.LatestInvoice != nil {
		out.LatestInvoiceID = in.LatestInvoice.ID
	}
	return out
}

func clientSecret(sub *stripe.Subscription) string {
	if inv := sub.LatestInvoice; inv != nil && inv.PaymentIntent != nil && inv.PaymentIntent.ClientSecret != "" {
		return inv.PaymentIntent.ClientSecret
	}
	if si := sub.PendingSetupIntent; si != nil {
		return si.ClientSecret
	}
	return ""
}

func unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

func stripeInterval(interval string) (string, int64, error) {
	switch interval {
	case IntervalMonth:
		return "month", 1, nil
	case IntervalQuarter:
		return "month", 3, nil
	case IntervalYear:
		return "year", 1, nil
	}
	return "", 0, invalid("Interval", "must be MONTH, QUARTER or YEAR")
}

// stripeCurrency turns our upper-case ISO 4217 code into Stripe's lower case.
// Whether we sell in that currency, and its limits, is the catalog's rule.
func stripeCurrency(c string) (string, error) {
	if len(c) != 3 {
		return "", invalid("Currency", "must be a 3-letter ISO 4217 code")
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return "", invalid("Currency", "must be a 3-letter upper-case ISO 4217 code")
		}
	}
	return strings.ToLower(c), nil
}

func invalid(field, why string) error {
	return fmt.Errorf("%w: %s %s", ErrInvalidInput, field, why)
}

func checkID(field, id string) error {
	if strings.TrimSpace(id) == "" {
		return invalid(field, "is required")
	}
	return checkOptionalID(field, id)
}

func checkOptionalID(field, id string) error {
	if len(id) > maxIDLen || strings.ContainsAny(id, "\r\n\x00") {
		return invalid(field, "is too long or malformed")
	}
	return nil
}

func checkURL(field, u string) error {
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return invalid(field, "must be an absolute http(s) URL")
	}
	return nil
}

func checkTrial(days int) error {
	if days < 0 || days > maxTrialDays {
		return invalid("TrialDays", fmt.Sprintf("must be 0 to %d", maxTrialDays))
	}
	return nil
}

func checkMetadata(md map[string]string) error {
	if len(md) > maxMetadataKeys {
		return invalid("Metadata", fmt.Sprintf("has more than %d keys", maxMetadataKeys))
	}
	for k, v := range md {
		if k == "" || len(k) > maxMetadataKeyLen || len(v) > maxMetadataValLen || strings.Contains(k, "[") {
			return invalid("Metadata", fmt.Sprintf("keys must be 1-%d characters without brackets, values at most %d", maxMetadataKeyLen, maxMetadataValLen))
		}
	}
	return nil
}
