package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/money"
)

// OpCreatePlan scopes createPlan's idempotency keys.
const OpCreatePlan = "createPlan"

// Bounds of plan input.
const (
	maxNameRunes        = 200
	maxDescriptionRunes = 2000
	maxTrialDays        = 730
)

// planOutcome is what createPlan stores with its idempotency key.
type planOutcome struct {
	PlanID     string              `json:"planId,omitempty"`
	UserErrors []*models.UserError `json:"userErrors,omitempty"`
}

// CreatePlan creates a product and its recurring price at Stripe, then the plan. The
// amount is validated against the currency's minimum and maximum; only known ISO 4217
// currencies are accepted. Stripe is called first with a key derived from the client's;
// the plan id is derived the same way, so a retry after a crash finishes the write.
func (s *Service) CreatePlan(ctx context.Context, p *auth.Principal, in models.CreatePlanInput) (*models.Plan, error) {
	if s.provider == nil || s.idem == nil {
		return nil, errors.New("catalog: no payment provider configured")
	}
	name, desc := strings.TrimSpace(in.Name), strings.TrimSpace(in.Description)
	if err := checkText(name, maxNameRunes, true, "name"); err != nil {
		return nil, err
	}
	if err := checkText(desc, maxDescriptionRunes, false, "description"); err != nil {
		return nil, err
	}
	if !in.Interval.IsValid() {
		return nil, models.NewUserError(models.UserErrorInvalid, "must be MONTH, QUARTER or YEAR", "input", "interval")
	}
	currency := money.Normalize(in.Currency)
	if err := money.Validate(int64(in.Amount), currency); err != nil {
		field := "amount"
		if errors.Is(err, money.ErrUnknownCurrency) {
			field = "currency"
		}
		return nil, models.NewUserError(models.UserErrorInvalid, err.Error(), "input", field)
	}
	trial := 0
	if in.TrialDays != nil {
		trial = *in.TrialDays
	}
	if trial < 0 || trial > maxTrialDays {
		return nil, models.NewUserError(models.UserErrorInvalid, fmt.Sprintf("must be between 0 and %d", maxTrialDays), "input", "trialDays")
	}

	scope := idempotency.ScopeFor(p.Issuer, p.Subject, OpCreatePlan, in.IdempotencyKey)
	out, _, err := idempotency.Run(ctx, s.idem, scope, in, func(ctx context.Context) (planOutcome, error) {
		planID, key := scope.DerivedID(), scope.ProviderKey("create")
		// Committed before Stripe is called: a product and price never exist at
		// Stripe without an entry naming who asked for them. A retry with the same
		// key finds it and finishes that effect under the same Stripe key.
		attempt, err := audit.FindAttempt(ctx, s.db, OpCreatePlan, key)
		if err != nil {
			return planOutcome{}, err
		}
		if attempt == nil {
			id, err := audit.RecordAttempt(ctx, s.db, p, audit.Action{
				Name: OpCreatePlan, TargetType: audit.TargetPlan, TargetID: planID,
				Reason: "new plan (createPlan takes no reason)",
				After:  map[string]any{"interval": in.Interval, "amount": in.Amount, "currency": currency, "trialDays": trial},
			}, key)
			if err != nil {
				return planOutcome{}, err
			}
			attempt = &audit.Attempt{ID: id}
		}
		productID, priceID, err := s.provider.CreateProductAndPrice(ctx, key, gateway.PlanInput{
			Name: name, Description: desc, Interval: string(in.Interval), Amount: int64(in.Amount), Currency: currency, OurPlanID: planID,
		})
		if err != nil {
			var ue *models.UserError
			if errors.As(gateway.AsUserError(err, "the payment provider refused the plan"), &ue) {
				return planOutcome{UserErrors: []*models.UserError{ue}}, nil
			}
			return planOutcome{}, err
		}
		err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			product := models.Product{ID: planID, Name: name, Description: desc, StripeProductID: &productID, Active: true}
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&product).Error; err != nil {
				return err
			}
			plan := models.Plan{ID: planID, ProductID: planID, Interval: in.Interval, Amount: int64(in.Amount),
				Currency: currency, TrialDays: trial, StripePriceID: &priceID, Active: true}
			if err := tx.Omit("Product").Clauses(clause.OnConflict{DoNothing: true}).Create(&plan).Error; err != nil {
				return err
			}
			return audit.Record(ctx, tx, p, audit.Action{
				Name: OpCreatePlan, TargetType: audit.TargetPlan, TargetID: planID,
				Reason: "new plan (createPlan takes no reason)",
				After: map[string]any{"interval": in.Interval, "amount": in.Amount, "currency": currency,
					"trialDays": trial, "stripePriceId": priceID},
				AttemptID: attempt.ID,
			})
		})
		if err != nil {
			return planOutcome{}, fmt.Errorf("catalog: store plan: %w", err)
		}
		return planOutcome{PlanID: planID}, nil
	})
	if err != nil {
		return nil, idempotency.AsUserError(err)
	}
	if len(out.UserErrors) > 0 {
		return nil, errors.Join(asErrors(out.UserErrors)...)
	}
	plans, err := s.PlansByID(ctx, []string{out.PlanID})
	if err != nil {
		return nil, err
	}
	return plans[out.PlanID], nil
}

func asErrors(ues []*models.UserError) []error {
	out := make([]error, len(ues))
	for i, ue := range ues {
		out[i] = ue
	}
	return out
}

func checkText(s string, max int, required bool, field string) error {
	switch n := utf8.RuneCountInString(s); {
	case !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }):
		return models.NewUserError(models.UserErrorInvalid, "contains characters that are not allowed", "input", field)
	case required && n == 0:
		return models.NewUserError(models.UserErrorInvalid, "is required", "input", field)
	case n > max:
		return models.NewUserError(models.UserErrorInvalid, fmt.Sprintf("is too long (at most %d characters)", max), "input", field)
	}
	return nil
}
