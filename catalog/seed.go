package catalog

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/models"
)

// devBox is one sauce box of the development catalog with its price per interval.
type devBox struct {
	id, name, description string
	prices                map[models.BillingInterval]int64
	planIDs               map[models.BillingInterval]string
}

// devCatalog is three sauce boxes, each in three intervals, priced in USD cents.
// Fixed ids make seeding idempotent and demo links stable.
var devCatalog = []devBox{
	{
		id: "4d0c6f1e-0000-4000-8000-000000000001", name: "Mild Box",
		description: "Three small-batch sauces for people who like flavour before fire.",
		prices:      map[models.BillingInterval]int64{models.IntervalMonth: 2500, models.IntervalQuarter: 7000, models.IntervalYear: 26000},
		planIDs: map[models.BillingInterval]string{
			models.IntervalMonth: "4d0c6f1e-0000-4000-8000-000000000101", models.IntervalQuarter: "4d0c6f1e-0000-4000-8000-000000000102", models.IntervalYear: "4d0c6f1e-0000-4000-8000-000000000103",
		},
	},
	{
		id: "4d0c6f1e-0000-4000-8000-000000000002", name: "Hot Box",
		description: "Habanero and scotch bonnet sauces, three bottles a box.",
		prices:      map[models.BillingInterval]int64{models.IntervalMonth: 3500, models.IntervalQuarter: 9900, models.IntervalYear: 36000},
		planIDs: map[models.BillingInterval]string{
			models.IntervalMonth: "4d0c6f1e-0000-4000-8000-000000000201", models.IntervalQuarter: "4d0c6f1e-0000-4000-8000-000000000202", models.IntervalYear: "4d0c6f1e-0000-4000-8000-000000000203",
		},
	},
	{
		id: "4d0c6f1e-0000-4000-8000-000000000003", name: "Inferno Box",
		description: "Ghost pepper, reaper and a monthly mystery bottle. Sign the waiver.",
		prices:      map[models.BillingInterval]int64{models.IntervalMonth: 4500, models.IntervalQuarter: 12900, models.IntervalYear: 46800},
		planIDs: map[models.BillingInterval]string{
			models.IntervalMonth: "4d0c6f1e-0000-4000-8000-000000000301", models.IntervalQuarter: "4d0c6f1e-0000-4000-8000-000000000302", models.IntervalYear: "4d0c6f1e-0000-4000-8000-000000000303",
		},
	},
}

// SeedDevelopment loads the demo catalog; running it again changes nothing. With a
// provider, each seeded plan without a Stripe price gets one (in development that is
// stripe-mock or a Stripe test account), so the demo plans can be subscribed to.
// Callers must refuse to run it in production (the `seed` command does).
func (s *Service) SeedDevelopment(ctx context.Context) error {
	if err := s.seedRows(ctx); err != nil {
		return err
	}
	if s.provider == nil {
		return nil
	}
	for _, box := range devCatalog {
		for interval, planID := range box.planIDs {
			var plan models.Plan
			if err := s.db.WithContext(ctx).Take(&plan, "id = ?", planID).Error; err != nil {
				return fmt.Errorf("catalog: seed: %w", err)
			}
			if plan.StripePriceID != nil {
				continue
			}
			_, priceID, err := s.provider.CreateProductAndPrice(ctx, "scv-seed-"+planID, gateway.PlanInput{
				Name: box.name, Description: box.description, Interval: string(interval),
				Amount: plan.Amount, Currency: plan.Currency, OurPlanID: planID,
			})
			if err != nil {
				return fmt.Errorf("catalog: seed price at the provider: %w", err)
			}
			if err := s.db.WithContext(ctx).Model(&models.Plan{}).Where("id = ? AND stripe_price_id IS NULL", planID).
				Update("stripe_price_id", priceID).Error; err != nil {
				return fmt.Errorf("catalog: seed: %w", err)
			}
		}
	}
	return nil
}

func (s *Service) seedRows(ctx context.Context) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, box := range devCatalog {
			product := models.Product{ID: box.id, Name: box.name, Description: box.description, Active: true}
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&product).Error; err != nil {
				return fmt.Errorf("catalog: seed product: %w", err)
			}
			for _, interval := range []models.BillingInterval{models.IntervalMonth, models.IntervalQuarter, models.IntervalYear} {
				plan := models.Plan{
					ID: box.planIDs[interval], ProductID: box.id, Interval: interval,
					Amount: box.prices[interval], Currency: "USD", Active: true,
				}
				if err := tx.Omit("Product").Clauses(clause.OnConflict{DoNothing: true}).Create(&plan).Error; err != nil {
					return fmt.Errorf("catalog: seed plan: %w", err)
				}
			}
		}
		return nil
	})
}
