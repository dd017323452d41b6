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
	Created         time.Time
}
