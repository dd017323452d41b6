// Package catalog owns what the brand sells: products (sauce boxes) and their plans
// (recurring prices). It is the only writer of the products and plans tables.
package catalog

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
)

// Service answers catalog questions for the API and the other services.
type Service struct {
	db *gorm.DB
}

// NewService returns a catalog backed by db.
func NewService(db *gorm.DB) *Service { return &Service{db: db} }

// ActivePlans returns the plans a customer can subscribe to now: active plans of active
// products, in a stable order (product, then month, quarter, year).
func (s *Service) ActivePlans(ctx context.Context) ([]*models.Plan, error) {
	var plans []*models.Plan
	err := s.db.WithContext(ctx).
		Joins("Product").
		Where("plans.active AND \"Product\".active").
		Order("\"Product\".created_at, \"Product\".name, array_position(ARRAY['MONTH','QUARTER','YEAR'], plans.billing_interval), plans.amount, plans.id").
		Find(&plans).Error
	if err != nil {
		return nil, fmt.Errorf("catalog: list active plans: %w", err)
	}
	return plans, nil
}
