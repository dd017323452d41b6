package models

import "time"

// Customer is a person who signed in at our identity provider. Issuer and Subject
// identify them for good; e-mail and name are refreshed from their tokens. E-mail and
// name are sealed at rest (package sealing); EmailHash, their keyed blind index, is
// what e-mail lookups search, and BeforeSave keeps it in step with Email.
type Customer struct {
	ID               string `gorm:"type:uuid;primaryKey;default:gen_random_uuid()"`
	Issuer           string
	Subject          string
	Email            string  `gorm:"serializer:sealed"`
	Name             *string `gorm:"serializer:sealed"`
	EmailHash        []byte  `json:"-"`
	StripeCustomerID *string
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// Subscriptions, when not nil, are the customer's subscriptions as Customer.
	// subscriptions lists them, read with the customer in one statement for this
	// request only; nil means not read (never stored, never cached).
	Subscriptions []*Subscription `gorm:"-" json:"-"`
}
