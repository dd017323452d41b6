package models

import (
	"io"
	"time"
)

// SubscriptionStatus mirrors Stripe's subscription status (PAUSED also when Stripe has
// paused collection). It only ever changes from what Stripe reports.
type SubscriptionStatus string

// The statuses of API.md.
const (
	SubscriptionIncomplete        SubscriptionStatus = "INCOMPLETE"
	SubscriptionIncompleteExpired SubscriptionStatus = "INCOMPLETE_EXPIRED"
	SubscriptionTrialing          SubscriptionStatus = "TRIALING"
	SubscriptionActive            SubscriptionStatus = "ACTIVE"
	SubscriptionPastDue           SubscriptionStatus = "PAST_DUE"
	SubscriptionUnpaid            SubscriptionStatus = "UNPAID"
	SubscriptionPaused            SubscriptionStatus = "PAUSED"
	SubscriptionCanceled          SubscriptionStatus = "CANCELED"
)

var subscriptionStatuses = newEnum("SubscriptionStatus", SubscriptionIncomplete, SubscriptionIncompleteExpired, SubscriptionTrialing, SubscriptionActive, SubscriptionPastDue, SubscriptionUnpaid, SubscriptionPaused, SubscriptionCanceled)

var paymentStatuses = newEnum("PaymentStatus", PaymentPending, PaymentSucceeded, PaymentFailed, PaymentRefunded, PaymentPartiallyRefunded)

// IsValid reports whether s is one of the statuses.
func (s SubscriptionStatus) IsValid() bool { return subscriptionStatuses.has(s) }

// Ended reports whether the subscription can never bill or ship again.
func (s SubscriptionStatus) Ended() bool {
	return s == SubscriptionCanceled || s == SubscriptionIncompleteExpired
}

// UnmarshalGQL binds the schema enum.
func (s *SubscriptionStatus) UnmarshalGQL(v any) error { return subscriptionStatuses.unmarshal(v, s) }

// MarshalGQL writes the enum value.
func (s SubscriptionStatus) MarshalGQL(w io.Writer) { marshalEnum(w, s) }

// Address is where a box ships. Country is ISO 3166-1 alpha-2, upper case.
type Address struct {
	Name       string  `json:"name"`
	Line1      string  `json:"line1"`
	Line2      *string `json:"line2,omitempty"`
	City       string  `json:"city"`
	PostalCode string  `json:"postalCode"`
	Region     *string `json:"region,omitempty"`
	Country    string  `json:"country"`
}

// Subscription is a customer's standing order for a plan, mirrored from Stripe.
type Subscription struct {
	ID                   string `gorm:"type:uuid;primaryKey"`
	CustomerID           string `gorm:"type:uuid"`
	PlanID               string `gorm:"type:uuid"`
	Status               SubscriptionStatus
	StripeSubscriptionID *string
	StripeItemID         *string
	CurrentPeriodStart   *time.Time
	CurrentPeriodEnd     *time.Time
	CancelAtPeriodEnd    bool
	PausedUntil          *time.Time
	ShippingAddress      Address `gorm:"serializer:sealed"`
	// ProviderUpdatedAt is the Stripe time of the state last applied; older reports
	// never roll the subscription back.
	ProviderUpdatedAt *time.Time
	// ProviderEventSeq is the arrival order of that event, which breaks ties
	// between events created in the same second.
	ProviderEventSeq *int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// Plan, when not nil, is the plan of PlanID, read with the subscription in one
	// statement for this request only; nil means not read (never stored, never cached).
	Plan *Plan `gorm:"-" json:"-"`
}

// PaymentStatus is the outcome of one invoice's payment, as Stripe reports it.
type PaymentStatus string

// The payment statuses of API.md.
const (
	PaymentPending           PaymentStatus = "PENDING"
	PaymentSucceeded         PaymentStatus = "SUCCEEDED"
	PaymentFailed            PaymentStatus = "FAILED"
	PaymentRefunded          PaymentStatus = "REFUNDED"
	PaymentPartiallyRefunded PaymentStatus = "PARTIALLY_REFUNDED"
)

// IsValid reports whether s is one of the statuses.
func (s PaymentStatus) IsValid() bool { return paymentStatuses.has(s) }

// UnmarshalGQL binds the schema enum.
func (s *PaymentStatus) UnmarshalGQL(v any) error { return paymentStatuses.unmarshal(v, s) }

// MarshalGQL writes the enum value.
func (s PaymentStatus) MarshalGQL(w io.Writer) { marshalEnum(w, s) }

// Payment is one invoice of a subscription and what became of its payment.
type Payment struct {
	ID                    string `gorm:"type:uuid;primaryKey;default:gen_random_uuid()"`
	SubscriptionID        string `gorm:"type:uuid"`
	CustomerID            string `gorm:"type:uuid"`
	AmountMinor           int64  `gorm:"column:amount"`
	Currency              string
	AmountRefunded        int64
	Status                PaymentStatus
	StripeInvoiceID       string
	StripePaymentIntentID *string
	InvoiceURL            *string
	PaidAt                *time.Time
	// ProviderUpdatedAt and ProviderEventSeq order the events applied to the
	// payment, as on Subscription.
	ProviderUpdatedAt *time.Time
	ProviderEventSeq  *int64
	// Mismatch says how what Stripe charged differs from the plan we sold (PAY-3);
	// nil when it matches. A mismatched payment ships nothing until support acts.
	Mismatch       *string
	DisputedAt     *time.Time
	DisputeReason  *string
	FraudWarningAt *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Amount is what the invoice charged.
func (p *Payment) Amount() Money { return Money{Amount: p.AmountMinor, Currency: p.Currency} }
