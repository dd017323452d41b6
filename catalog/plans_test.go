package catalog

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/models"
)

// catalogVersion reads the version as a caller's statement would.
func catalogVersion(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var v int64
	require.NoError(t, db.Raw("SELECT "+VersionColumn).Scan(&v).Error)
	return v
}

// addPlan inserts a product and one plan of it, and returns the plan's id.
func addPlan(t *testing.T, db *gorm.DB, name string, amount int64) string {
	t.Helper()
	var productID, planID string
	require.NoError(t, db.Raw(`INSERT INTO products (name, description) VALUES (?, 'Three sauces') RETURNING id`, name).Scan(&productID).Error)
	require.NoError(t, db.Raw(`INSERT INTO plans (product_id, billing_interval, amount, currency) VALUES (?, 'MONTH', ?, 'USD') RETURNING id`,
		productID, amount).Scan(&planID).Error)
	return planID
}

// countReads counts the statements db runs through gorm's raw processor (the
// cache's reads).
func countReads(t *testing.T, db *gorm.DB) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	name := fmt.Sprintf("test:reads:%p", &n)
	require.NoError(t, db.Callback().Raw().After("gorm:raw").Register(name, func(*gorm.DB) { n.Add(1) }))
	t.Cleanup(func() { _ = db.Callback().Raw().Remove(name) })
	return &n
}

func TestPlanCacheAnswersFromMemoryOnlyAtTheVersionItRead(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	hot := addPlan(t, db, "Hot box", 2400)
	mild := addPlan(t, db, "Mild box", 1900)
	reads := countReads(t, db)
	replica, other := NewPlanCache(db), NewPlanCache(db)

	v := catalogVersion(t, db)
	reads.Store(0)
	plans, err := replica.At(ctx, v, []string{hot, mild, "00000000-0000-0000-0000-000000000000"})
	require.NoError(t, err)
	require.Len(t, plans, 2, "an id with no plan is absent")
	require.Equal(t, "Hot box", plans[hot].Name())
	require.Equal(t, int64(1900), plans[mild].Amount)
	require.True(t, plans[hot].Active)
	require.EqualValues(t, 1, reads.Load())

	plans[hot].Product.Name = "changed by a caller"
	plans, err = replica.At(ctx, v, []string{hot})
	require.NoError(t, err)
	require.EqualValues(t, 1, reads.Load(), "the same version is answered from memory")
	require.Equal(t, "Hot box", plans[hot].Name(), "what a caller does to its copy stays its own")
	_, err = other.At(ctx, v, []string{hot})
	require.NoError(t, err)

	// Every kind of write to the catalog is seen by every replica's next read.
	for _, change := range []struct {
		name, sql string
		check     func(t *testing.T, plans map[string]*models.Plan)
	}{
		{"a product renamed", `UPDATE products SET name = 'Very hot box' WHERE id = (SELECT product_id FROM plans WHERE id = '` + hot + `')`,
			func(t *testing.T, p map[string]*models.Plan) { require.Equal(t, "Very hot box", p[hot].Name()) }},
		{"a plan retired", `UPDATE plans SET active = false WHERE id = '` + hot + `'`,
			func(t *testing.T, p map[string]*models.Plan) { require.False(t, p[hot].Active) }},
		{"a trial changed", `UPDATE plans SET trial_days = 14 WHERE id = '` + hot + `'`,
			func(t *testing.T, p map[string]*models.Plan) { require.Equal(t, 14, p[hot].TrialDays) }},
		{"a product retired", `UPDATE products SET active = false WHERE id = (SELECT product_id FROM plans WHERE id = '` + mild + `')`,
			func(t *testing.T, p map[string]*models.Plan) { require.False(t, p[mild].Product.Active) }},
		{"a plan deleted", `DELETE FROM plans WHERE id = '` + mild + `'`,
			func(t *testing.T, p map[string]*models.Plan) { require.NotContains(t, p, mild) }},
	} {
		before := v
		require.NoError(t, db.Exec(change.sql).Error, change.name)
		v = catalogVersion(t, db)
		require.Greater(t, v, before, change.name)
		for _, c := range []*PlanCache{replica, other} {
			plans, err := c.At(ctx, v, []string{hot, mild})
			require.NoError(t, err)
			change.check(t, plans)
		}
	}
	// A write that changes no row still moves the version: nothing is assumed.
	require.NoError(t, db.Exec(`UPDATE plans SET active = true WHERE false`).Error)
	require.Greater(t, catalogVersion(t, db), v)
}

func TestPlanCacheNeverServesAnUncommittedOrOlderCatalog(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	hot := addPlan(t, db, "Hot box", 2400)
	c := NewPlanCache(db)
	v := catalogVersion(t, db)
	_, err := c.At(ctx, v, []string{hot})
	require.NoError(t, err)

	// A rename not yet committed: readers keep the committed catalog, and a cache
	// that reads meanwhile does not keep the pending one.
	tx := db.Begin()
	require.NoError(t, tx.Exec(`UPDATE products SET name = 'Pending box'`).Error)
	during := catalogVersion(t, db)
	require.Equal(t, v, during)
	fresh := NewPlanCache(db)
	for _, cache := range []*PlanCache{c, fresh} {
		plans, err := cache.At(ctx, during, []string{hot})
		require.NoError(t, err)
		require.Equal(t, "Hot box", plans[hot].Name())
	}
	require.NoError(t, tx.Commit().Error)
	after := catalogVersion(t, db)
	require.Greater(t, after, v)
	for _, cache := range []*PlanCache{c, fresh} {
		plans, err := cache.At(ctx, after, []string{hot})
		require.NoError(t, err)
		require.Equal(t, "Pending box", plans[hot].Name())
	}

	// A reader whose statement saw the older version, after the cache moved on,
	// gets the catalog at least as new as its own, never an older one.
	plans, err := c.At(ctx, v, []string{hot})
	require.NoError(t, err)
	require.Equal(t, "Pending box", plans[hot].Name())
}

// TestPlanCacheUnderConcurrentRenames: readers that each read the version and a
// product's name in one snapshot, then ask the cache at that version, while the
// product is renamed over and over, never get a name older than their snapshot's.
func TestPlanCacheUnderConcurrentRenames(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	hot := addPlan(t, db, "n0000", 2400)
	c := NewPlanCache(db)

	done := make(chan struct{})
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := 1; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if err := db.Exec(`UPDATE products SET name = ?`, fmt.Sprintf("n%04d", i)).Error; err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for range 150 {
				var snap struct {
					Version int64
					Name    string
				}
				if err := db.Raw(`SELECT ` + VersionColumn + ` AS version, name FROM products`).Scan(&snap).Error; err != nil {
					t.Error(err)
					return
				}
				plans, err := c.At(ctx, snap.Version, []string{hot})
				if err != nil {
					t.Error(err)
					return
				}
				if got := plans[hot].Name(); got < snap.Name {
					t.Errorf("at version %d the snapshot had %s, the cache gave the older %s", snap.Version, snap.Name, got)
					return
				}
			}
		}()
	}
	readers.Wait()
	close(done)
	writer.Wait()
}
