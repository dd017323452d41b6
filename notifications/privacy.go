package notifications

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/database"
)

// Stored is a notifications row as a customer's data export shows it.
type Stored struct {
	ID             string
	CustomerID     string
	Kind           string
	SubscriptionID *string
	PaymentID      *string
	Data           []byte
	CreatedAt      time.Time
	SentAt         *time.Time
}

// TableName is this package's table.
func (Stored) TableName() string { return "notifications" }

// ForCustomer returns every notification of the customer, oldest first.
func ForCustomer(ctx context.Context, db *gorm.DB, customerID string) ([]*Stored, error) {
	return database.CustomerRows[Stored](ctx, db, customerID)
}

// EraseFor is an erasure's part of the notifications table, in tx, after the
// customer is locked: the customer's notifications are deleted (they only existed
// to e-mail the person). A send job finding its notification gone sends nothing.
func EraseFor(ctx context.Context, tx *gorm.DB, customerID string) error {
	if err := tx.WithContext(ctx).Where("customer_id = ?", customerID).Delete(&Stored{}).Error; err != nil {
		return fmt.Errorf("notifications: erase: %w", err)
	}
	return nil
}
