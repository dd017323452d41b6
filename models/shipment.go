package models

import (
	"io"
	"time"
)

// ShipmentStatus is where a box is in fulfilment.
type ShipmentStatus string

// The shipment statuses of API.md.
const (
	ShipmentPending  ShipmentStatus = "PENDING"
	ShipmentShipped  ShipmentStatus = "SHIPPED"
	ShipmentCanceled ShipmentStatus = "CANCELED"
)

var shipmentStatuses = newEnum("ShipmentStatus", ShipmentPending, ShipmentShipped, ShipmentCanceled)

// IsValid reports whether s is one of the statuses.
func (s ShipmentStatus) IsValid() bool { return shipmentStatuses.has(s) }

// UnmarshalGQL binds the schema enum.
func (s *ShipmentStatus) UnmarshalGQL(v any) error { return shipmentStatuses.unmarshal(v, s) }

// MarshalGQL writes the enum value.
func (s ShipmentStatus) MarshalGQL(w io.Writer) { marshalEnum(w, s) }

// Shipment is the box one paid invoice bought: for the period it covers, to the
// address the subscription had when it was paid. There is exactly one per paid invoice.
type Shipment struct {
	ID              string `gorm:"type:uuid;primaryKey;default:gen_random_uuid()"`
	SubscriptionID  string `gorm:"type:uuid"`
	CustomerID      string `gorm:"type:uuid"`
	PaymentID       string `gorm:"type:uuid"`
	PlanID          string `gorm:"type:uuid"`
	StripeInvoiceID string
	PeriodStart     time.Time
	PeriodEnd       time.Time
	Address         Address `gorm:"serializer:sealed"`
	Status          ShipmentStatus
	CreatedAt       time.Time
	UpdatedAt       time.Time
}
