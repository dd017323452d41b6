package catalog

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/database/dbtest"
)

// A caller writing through the pointer fields of a plan it was given (its Stripe
// price, its product's Stripe id) changes its own copy only: the next caller at
// the same version gets the plan as stored.
func TestReviewAPlansPointersAreTheCallersOwn(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	hot := addPlan(t, db, "Hot box", 2400)
	require.NoError(t, db.Exec(`UPDATE plans SET stripe_price_id = 'price_hot' WHERE id = ?`, hot).Error)
	require.NoError(t, db.Exec(`UPDATE products SET stripe_product_id = 'prod_hot'`).Error)
	c := NewPlanCache(db)
	v := catalogVersion(t, db)
	for range 2 { // read, then from memory
		plans, err := c.At(ctx, v, []string{hot})
		require.NoError(t, err)
		require.Equal(t, "price_hot", *plans[hot].StripePriceID)
		require.Equal(t, "prod_hot", *plans[hot].Product.StripeProductID)
		*plans[hot].StripePriceID, *plans[hot].Product.StripeProductID = "price_changed_by_a_caller", "prod_changed_by_a_caller"
	}
}

// A database put back to an older catalog version (a restore) and then written to
// until it reaches the version a cache holds: that cache must not answer from
// what it held before the restore.
func TestReviewACatalogPutBackAndMovedOnIsReadAgain(t *testing.T) {
	t.Parallel()
	db, owner := dbtest.NewWithOwner(t)
	ctx := context.Background()
	hot := addPlan(t, db, "Hot box", 2400)
	c := NewPlanCache(db)
	v := catalogVersion(t, db)
	_, err := c.At(ctx, v, []string{hot})
	require.NoError(t, err)

	require.NoError(t, owner.Exec(`UPDATE catalog_version SET version = version - 1`).Error) // the restore
	require.NoError(t, db.Exec(`UPDATE products SET name = 'Restored box'`).Error)
	plans, err := c.At(ctx, catalogVersion(t, db), []string{hot})
	require.NoError(t, err)
	require.Equal(t, "Restored box", plans[hot].Name())
}

// The server's role moves the version only through its writes of products and
// plans: it can neither rewind the version nor delete its row (which would fail
// every me), and its writes still move it.
func TestReviewTheServersRoleCannotWriteTheVersionItself(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	before := catalogVersion(t, db)
	require.Error(t, db.Exec(`UPDATE catalog_version SET version = 1`).Error)
	require.Error(t, db.Exec(`DELETE FROM catalog_version`).Error)
	addPlan(t, db, "Hot box", 2400)
	require.Greater(t, catalogVersion(t, db), before)
}
