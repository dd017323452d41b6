package database

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// CustomerRows returns every row of T's table that belongs to the customer (its
// customer_id column), oldest first by (created_at, id): what a customer's data
// export shows and what an erasure works through. Each owner of such a table
// calls it for its own table.
func CustomerRows[T any](ctx context.Context, db *gorm.DB, customerID string) ([]*T, error) {
	var out []*T
	if err := db.WithContext(ctx).Where("customer_id = ?", customerID).Order("created_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("database: %T rows of a customer: %w", *new(T), err)
	}
	return out, nil
}
