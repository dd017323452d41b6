package jobs_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/jobs"
)

// Deferred inserts belong to one transaction, until InsertDeferredTx makes them:
// a context carrying them that reaches another transaction, or the same one after
// they were made, enqueues at once there, never into a list nobody inserts.
func TestDeferredInsertsOnlyDeferInTheirTransactionUntilMade(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	q, err := jobs.NewInserter(db, 0, nil)
	require.NoError(t, err)
	count := func() int64 {
		var n int64
		require.NoError(t, db.Raw(`SELECT count(*) FROM river_job WHERE kind = ?`, shortArgs{}.Kind()).Scan(&n).Error)
		return n
	}
	insert := func(ctx context.Context, tx *gorm.DB) error {
		sqlTx, err := jobs.SQLTx(tx)
		if err != nil {
			return err
		}
		return jobs.InsertTx(ctx, q, sqlTx, shortArgs{}, nil)
	}

	var ctx context.Context
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		sqlTx, err := jobs.SQLTx(tx)
		require.NoError(t, err)
		var d *jobs.Deferred
		ctx, d = jobs.WithDeferredInserts(context.Background(), sqlTx)
		require.NoError(t, insert(ctx, tx))
		require.NoError(t, db.Transaction(func(other *gorm.DB) error { return insert(ctx, other) }))
		require.Equal(t, int64(1), count(), "another transaction's job is inserted in it, at once")
		require.NoError(t, jobs.InsertDeferredTx(ctx, sqlTx, d))
		require.NoError(t, insert(ctx, tx), "after the deferred jobs were made")
		return nil
	}))
	require.Equal(t, int64(3), count(), "each job enqueued is inserted")

	// The context outlives its transaction (a goroutine, a later unit of work).
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error { return insert(ctx, tx) }))
	require.Equal(t, int64(4), count())
}
