package gateway

import "time"

// Metadata keys written on Stripe objects so that webhook events and support can
// find our records from Stripe's side.
const (
	MetadataCustomerID = "scoville_customer_id"
	MetadataPlanID     = "scoville_plan_id"
)

// PauseBehavior is the pause_collection behavior PauseSubscription sends: invoices
// falling in the pause are voided, so the customer is not charged and, with one
// shipment per paid invoice, nothing is shipped (Stripe's recommendation when the
// service itself stops). keep_as_draft would pile up drafts to collect at resume.
const PauseBehavior = "void"

// Billing intervals accepted by PlanInput.Interval (API.md's BillingInterval).
const (
	IntervalMonth   = "MONTH"
	IntervalQuarter = "QUARTER" // Stripe: interval=month, interval_count=3
	IntervalYear    = "YEAR"
)

// CustomerInput describes a customer to create at Stripe.
type CustomerInput struct {
	OurCustomerID string // stored in metadata[scoville_customer_id]
	Email         string // optional
	Name          string // optional
}

// PlanInput describes a plan sold as one Stripe product with one recurring price.
type PlanInput struct {
	Name        string
	Description string // optional
	Interval    string // IntervalMonth, IntervalQuarter or IntervalYear
	Amount      int64  // minor units, > 0
	Currency    string // ISO 4217, upper case
	OurPlanID   string // stored in metadata[scoville_plan_id]
}

// CheckoutInput describes a hosted Checkout session in subscription mode.
type CheckoutInput struct {
	CustomerID        string
	PriceID           string
	SuccessURL        string
	CancelURL         string
	ClientReferenceID string // optional; comes back on checkout.session.completed
	TrialDays         int    // 0 = none
	PromotionCodeID   string // optional; from FindPromotionCode
	// Metadata goes on the session and on the subscription it creates, so
	// subscription events carry it too.
	Metadata     map[string]string
	AutomaticTax bool // Stripe Tax; Checkout collects the address when missing
	// ShippingCountries are the ISO alpha-2 codes Checkout offers for the box's
	// delivery address; empty: Checkout asks for none.
	ShippingCountries []string
}

// CheckoutSession is where the customer is sent to pay.
type CheckoutSession struct {
	ID  string
	URL string
}

// SubscriptionInput describes a subscription created for the Payment Element flow.
type SubscriptionInput struct {
	CustomerID      string
	PriceID         string
	TrialDays       int    // 0 = none
	PromotionCodeID string // optional; from FindPromotionCode
	Metadata        map[string]string
	AutomaticTax    bool // Stripe Tax; the customer needs an address at Stripe
}

// ChangePriceInput moves a subscription's item to another price.
type ChangePriceInput struct {
	ItemID  string // the subscription's item (Subscription.ItemID)
	PriceID string // the new price
	// Prorate credits the unused time of the current period and charges the
	// new price for it (create_prorations); false prorates nothing (none).
	Prorate bool
}

// Subscription is Stripe's view of a subscription, the only source of its status
// (PAY-3). Times are UTC; a zero time means Stripe sent none.
type Subscription struct {
	ID                 string
	CustomerID         string
	Status             string // Stripe's: incomplete, trialing, active, past_due, ...
	PriceID            string // of the first (only) item
	ItemID             string // of the first (only) item, for ChangeSubscriptionPrice
	CurrentPeriodStart time.Time
	CurrentPeriodEnd   time.Time
	CancelAtPeriodEnd  bool
	// PauseBehavior is non-empty while collection is paused; PausedUntil is set
	// when the pause has an end (pause_collection.resumes_at).
	PauseBehavior   string
	PausedUntil     *time.Time
	LatestInvoiceID string
	Amount          int64  // unit amount × quantity of the first item, minor units
	Currency        string // ISO 4217, upper case
	// Metadata is the subscription's own (CheckoutInput.Metadata and
	// SubscriptionInput.Metadata land here), so an event finds our record.
	Metadata map[string]string
	Created  time.Time
	// Replayed: Stripe answered a write with the stored answer of an earlier
	// request under the same idempotency key, so it shows the subscription as it
	// was then, not now.
	Replayed bool
}

// Address is a postal address as Stripe reports it (shipping details, customer
// address), so shipping can use what the customer gave Checkout or the invoice.
// Fields Stripe left empty are "".
type Address struct {
	Name       string // the recipient, when Stripe has one
	Line1      string
	Line2      string
	City       string
	PostalCode string
	State      string
	Country    string // ISO 3166-1 alpha-2, upper case
}

// InvoiceLine is one line of an invoice: what was billed, for which period.
type InvoiceLine struct {
	ID                 string
	Type               string // "subscription" or "invoiceitem"
	PriceID            string
	SubscriptionItemID string
	Amount             int64 // line amount before discounts, minor units
	Discount           int64 // the sum of the line's discount_amounts, minor units
	UnitAmount         int64 // the price's unit_amount, minor units; 0 when the price has none
	Quantity           int64
	Currency           string // ISO 4217, upper case
	Proration          bool   // a credit or charge from a plan change
	PeriodStart        time.Time
	PeriodEnd          time.Time
}

// Invoice is Stripe's invoice, what invoice.* events carry: a paid invoice of a
// subscription is what entitles a delivery. Times are UTC; zero means none.
type Invoice struct {
	ID               string
	CustomerID       string
	SubscriptionID   string // "" for an invoice outside any subscription
	Status           string // draft, open, paid, uncollectible, void
	BillingReason    string // subscription_create, subscription_cycle, subscription_update, manual, ...
	Currency         string // ISO 4217, upper case
	AmountDue        int64  // minor units, as are the three below
	AmountPaid       int64
	AmountRemaining  int64
	Total            int64
	PaymentIntentID  string
	ChargeID         string
	HostedInvoiceURL string
	PaidAt           time.Time // status_transitions.paid_at
	// NextPaymentAttempt is when Stripe retries collection; zero when it will not.
	NextPaymentAttempt time.Time
	AttemptCount       int64
	// Lines are those embedded in the invoice: Stripe embeds the first page
	// (10 lines), enough for a subscription invoice but not a full listing.
	Lines            []InvoiceLine
	CustomerShipping *Address // nil when the customer has no shipping details
	Metadata         map[string]string
	Created          time.Time

	// What makes up Total: the lines, less Discount (the sum of
	// total_discount_amounts, every discount on every line), plus ExclusiveTax
	// (inclusive tax is inside the lines' amounts) and AmountShipping.
	// StartingBalance is the customer's balance before the invoice (positive:
	// owed, negative: credit), which moves AmountDue away from Total. MoreLines:
	// Stripe has lines beyond those embedded.
	Discount        int64
	ExclusiveTax    int64
	AmountShipping  int64
	StartingBalance int64
	MoreLines       bool
}

// Charge is one payment attempt, what charge.* events (refunds among them)
// carry; InvoiceID ties it back to a subscription's invoice.
type Charge struct {
	ID              string
	InvoiceID       string
	PaymentIntentID string
	Currency        string // ISO 4217, upper case
	Amount          int64  // minor units
	AmountRefunded  int64  // minor units, all refunds so far
	Refunded        bool   // true once fully refunded
	Created         time.Time
}

// Dispute is a chargeback opened by the cardholder's bank, what
// charge.dispute.* events carry, so the order behind ChargeID can be held.
type Dispute struct {
	ID              string
	ChargeID        string
	PaymentIntentID string
	Reason          string // fraudulent, product_not_received, general, ...
	Status          string // warning_needs_response, needs_response, won, lost, ...
	Currency        string // ISO 4217, upper case
	Amount          int64  // minor units
	Created         time.Time
}

// EarlyFraudWarning is the card network's notice that a charge is likely
// fraudulent (radar.early_fraud_warning.* events). When Actionable, refunding
// ChargeID now avoids the dispute that would otherwise follow.
type EarlyFraudWarning struct {
	ID              string
	ChargeID        string
	PaymentIntentID string
	FraudType       string // e.g. card_never_received, made_with_stolen_card, misc
	Actionable      bool
	Created         time.Time
}

// CompletedCheckout is the Checkout session a checkout.session.* event
// carries: it links the session we created (ClientReferenceID, Metadata) to the
// customer and subscription Stripe created, with the address Checkout
// collected.
type CompletedCheckout struct {
	ID                string
	Mode              string // payment, setup or subscription
	Status            string // open, complete or expired
	PaymentStatus     string // paid, unpaid or no_payment_required
	CustomerID        string
	SubscriptionID    string
	ClientReferenceID string
	Metadata          map[string]string
	Shipping          *Address // shipping_details; nil when none was collected
	Created           time.Time
}
