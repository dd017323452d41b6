package models

import "time"

// Customer is a person who signed in at our identity provider. Issuer and Subject
// identify them for good; e-mail and name are refreshed from their tokens.
type Customer struct {
	ID               string `gorm:"type:uuid;primaryKey;default:gen_random_uuid()"`
	Issuer           string
	Subject          string
	Email            string
	Name             *string
	StripeCustomerID *string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}
