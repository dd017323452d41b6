package models

import (
	"io"
	"time"
)

// BillingInterval is how often a plan bills (and ships). It is stored as its enum name.
type BillingInterval string

// The intervals a plan can have: monthly, quarterly (three months) and yearly boxes.
const (
	IntervalMonth   BillingInterval = "MONTH"
	IntervalQuarter BillingInterval = "QUARTER"
	IntervalYear    BillingInterval = "YEAR"
)

var billingIntervals = newEnum("BillingInterval", IntervalMonth, IntervalQuarter, IntervalYear)

// IsValid reports whether i is one of the three intervals.
func (i BillingInterval) IsValid() bool { return billingIntervals.has(i) }

// UnmarshalGQL binds the schema enum to this type.
func (i *BillingInterval) UnmarshalGQL(v any) error { return billingIntervals.unmarshal(v, i) }

// MarshalGQL writes the enum value.
func (i BillingInterval) MarshalGQL(w io.Writer) { marshalEnum(w, i) }

// Money is an amount in the currency's minor units (cents for USD) with its upper-case
// ISO 4217 code. Amounts are never floating point.
type Money struct {
	Amount   int64
	Currency string
}

// Product is a sauce box the brand sells; its plans are the ways to subscribe to it.
type Product struct {
	ID              string `gorm:"type:uuid;primaryKey;default:gen_random_uuid()"`
	Name            string
	Description     string
	StripeProductID *string
	Active          bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Plan is one recurring price of a product. Customers subscribe to plans.
type Plan struct {
	ID            string `gorm:"type:uuid;primaryKey;default:gen_random_uuid()"`
	ProductID     string `gorm:"type:uuid"`
	Product       Product
	Interval      BillingInterval `gorm:"column:billing_interval"`
	Amount        int64
	Currency      string
	TrialDays     int
	StripePriceID *string
	Active        bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Name is the product's name: a plan is sold as its box, billed at its interval.
func (p *Plan) Name() string { return p.Product.Name }

// Description is the product's description.
func (p *Plan) Description() string { return p.Product.Description }

// Price is what the plan costs per interval.
func (p *Plan) Price() Money { return Money{Amount: p.Amount, Currency: p.Currency} }
