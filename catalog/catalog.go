// Package catalog owns what the brand sells: products (sauce boxes) and their plans
// (recurring prices). It is the only writer of the products and plans tables.
package catalog

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
)

// Provider creates what the catalog sells at the payment provider.
type Provider interface {
	CreateProductAndPrice(ctx context.Context, key string, in gateway.PlanInput) (productID, priceID string, err error)
}

// Service answers catalog questions for the API and the other services.
type Service struct {
	db       *gorm.DB
	provider Provider // nil: the catalog can be read but not extended
	idem     *idempotency.Store
}

// NewService returns a catalog backed by db; provider and idem may be nil for read-only
// use (the seed command).
func NewService(db *gorm.DB, provider Provider, idem *idempotency.Store) *Service {
	return &Service{db: db, provider: provider, idem: idem}
}

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

// PlansByID loads plans (active or not: a subscription may be on a retired plan) with
// their products in one query, for the per-request plan loader.
func (s *Service) PlansByID(ctx context.Context, ids []string) (map[string]*models.Plan, error) {
	var plans []*models.Plan
	if err := s.db.WithContext(ctx).Joins("Product").Where("plans.id IN ?", ids).Find(&plans).Error; err != nil {
		return nil, fmt.Errorf("catalog: load plans: %w", err)
	}
	out := make(map[string]*models.Plan, len(plans))
	for _, p := range plans {
		out[p.ID] = p
	}
	return out, nil
}
