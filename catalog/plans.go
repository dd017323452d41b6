package catalog

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/models"
)

// VersionColumn is an SQL expression for the catalog's version, to read in the
// statement whose snapshot the plans must match (PlanCache.At).
const VersionColumn = "(SELECT version FROM catalog_version)"

// planCacheMax bounds the plans a PlanCache holds; past it the copy starts again
// from the plans of one read.
const planCacheMax = 10_000

// PlanCache holds plans with their products in the process, as of one catalog
// version, so that a read that needs a few plans by id (a customer's
// subscriptions) does not join them every time. Every write of products or plans
// moves the version on in its own transaction (migration 00017), so plans served
// for a version are exactly the rows that version's snapshot holds. Safe for
// concurrent use; the plans it returns are the caller's own copies.
type PlanCache struct {
	db   *gorm.DB
	held atomic.Pointer[heldPlans]
}

// heldPlans is one version's plans by id; never modified once published.
type heldPlans struct {
	version int64
	plans   map[string]models.Plan
}

// NewPlanCache returns an empty cache reading through db's pool.
func NewPlanCache(db *gorm.DB) *PlanCache {
	return &PlanCache{db: db}
}

// At returns the plans of ids (active or retired, each with its product) as
// they are at catalog version (read with VersionColumn in the caller's
// statement) or later: from memory when the cache holds that version, else read
// in one statement that also refreshes the cache. An id with no plan is absent
// from the map.
func (c *PlanCache) At(ctx context.Context, version int64, ids []string) (map[string]*models.Plan, error) {
	out := make(map[string]*models.Plan, len(ids))
	var missing []string
	if h := c.held.Load(); h != nil && h.version == version {
		for _, id := range ids {
			if p, ok := h.plans[id]; ok {
				out[id] = own(p)
			} else {
				missing = append(missing, id)
			}
		}
	} else {
		missing = ids
	}
	if len(missing) == 0 {
		return out, nil
	}
	read, readVersion, err := c.read(ctx, missing)
	if err != nil {
		return nil, err
	}
	for id, p := range read {
		out[id] = own(p)
	}
	c.keep(readVersion, read)
	return out, nil
}

// own is a copy of p that shares nothing with it: a caller writing through its
// pointers changes its own plan, not the cache's.
func own(p models.Plan) *models.Plan {
	if p.StripePriceID != nil {
		id := *p.StripePriceID
		p.StripePriceID = &id
	}
	if p.Product.StripeProductID != nil {
		id := *p.Product.StripeProductID
		p.Product.StripeProductID = &id
	}
	return &p
}

// keep adds plans read at version to the cache: to its copy when that is of the
// same version, in place of it otherwise (the database moved on, or was put back).
func (c *PlanCache) keep(version int64, read map[string]models.Plan) {
	for {
		old := c.held.Load()
		next := &heldPlans{version: version}
		if old != nil && old.version == version && len(old.plans)+len(read) <= planCacheMax {
			next.plans = make(map[string]models.Plan, len(old.plans)+len(read))
			for id, p := range old.plans {
				next.plans[id] = p
			}
		} else {
			next.plans = make(map[string]models.Plan, len(read))
		}
		for id, p := range read {
			next.plans[id] = p
		}
		if c.held.CompareAndSwap(old, next) {
			return
		}
	}
}

// planStatement reads plans by id with their products and the catalog version,
// all in the statement's one snapshot.
const planStatement = `SELECT p.id, p.product_id, p.billing_interval, p.amount, p.currency, p.trial_days,
	p.stripe_price_id, p.active, p.created_at, p.updated_at,
	pr.name, pr.description, pr.stripe_product_id, pr.active, pr.created_at, pr.updated_at,
	` + VersionColumn + `
FROM plans AS p JOIN products AS pr ON pr.id = p.product_id
WHERE p.id = ANY($1::uuid[])`

// versionStatement reads the catalog version alone, for a read of plans that
// found none.
const versionStatement = "SELECT " + VersionColumn

func (c *PlanCache) read(ctx context.Context, ids []string) (map[string]models.Plan, int64, error) {
	plans := make(map[string]models.Plan, len(ids))
	var version pgtype.Int8
	err := database.Query(ctx, c.db, planStatement, []any{ids}, func(rows pgx.Rows) error {
		for rows.Next() {
			var p models.Plan
			if err := rows.Scan(&p.ID, &p.ProductID, &p.Interval, &p.Amount, &p.Currency, &p.TrialDays,
				&p.StripePriceID, &p.Active, &p.CreatedAt, &p.UpdatedAt,
				&p.Product.Name, &p.Product.Description, &p.Product.StripeProductID, &p.Product.Active,
				&p.Product.CreatedAt, &p.Product.UpdatedAt, &version); err != nil {
				return err
			}
			p.Product.ID = p.ProductID
			plans[p.ID] = p
		}
		return nil
	})
	if err == nil && !version.Valid {
		err = database.Query(ctx, c.db, versionStatement, nil, func(rows pgx.Rows) error {
			for rows.Next() {
				if err := rows.Scan(&version); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, 0, fmt.Errorf("catalog: read plans: %w", err)
	}
	return plans, version.Int64, nil
}
