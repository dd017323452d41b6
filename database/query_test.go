package database_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/logging"
)

// TestQueryRunsAsARawStatement: a statement run by Query passes through gorm's raw
// processor like db.Exec's, so what is registered there (tracing, counters) sees it
// once, with its text and the rows it read; the rows reach scan as pgx decodes them.
func TestQueryRunsAsARawStatement(t *testing.T) {
	t.Parallel()
	db := openEverySlow(t, slog.New(slog.DiscardHandler))
	var seen atomic.Int64
	var text string
	var affected int64
	require.NoError(t, db.Callback().Raw().After("gorm:raw").Register("test:seen", func(tx *gorm.DB) {
		seen.Add(1)
		text, affected = tx.Statement.SQL.String(), tx.RowsAffected
	}))

	var got []int64
	err := database.Query(context.Background(), db, "SELECT g FROM generate_series(1, $1::int) AS g ORDER BY g", []any{3},
		func(rows pgx.Rows) (err error) {
			got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			return err
		})
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3}, got)
	require.EqualValues(t, 1, seen.Load())
	require.Equal(t, "SELECT g FROM generate_series(1, $1::int) AS g ORDER BY g", text)
	require.EqualValues(t, 3, affected, "the rows read")
}

// TestQueryLogsFailuresWithoutValues: a failed statement, and a scan that fails on
// the rows, are logged by gorm's logger as any statement is (placeholders only, the
// error masked), and returned to the caller.
func TestQueryLogsFailuresWithoutValues(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	db := openEverySlow(t, logging.New(&buf, slog.LevelDebug))
	const email = "query.canary@example.com"
	err := database.Query(context.Background(), db, "SELECT $1::int", []any{email}, func(rows pgx.Rows) error {
		for rows.Next() {
		}
		return nil
	})
	require.Error(t, err, "PostgreSQL refuses the value")

	refused := errors.New("scan refused the row")
	err = database.Query(context.Background(), db, "SELECT $1::text AS scanned", []any{email}, func(pgx.Rows) error { return refused })
	require.ErrorIs(t, err, refused)

	logs := buf.String()
	require.Contains(t, logs, `"level":"ERROR"`)
	require.Contains(t, logs, "SELECT $1::int")
	require.Contains(t, logs, "SELECT $1::text AS scanned", "a scan's failure is the statement's")
	require.NotContains(t, logs, "query.canary")
}

// TestQueryRefusesATransaction: inside a transaction Query runs nothing (a
// connection of the pool would not see the transaction's writes).
func TestQueryRefusesATransaction(t *testing.T) {
	t.Parallel()
	db := openEverySlow(t, slog.New(slog.DiscardHandler))
	ran := false
	err := db.Transaction(func(tx *gorm.DB) error {
		return database.Query(context.Background(), tx, "SELECT 1", nil, func(pgx.Rows) error {
			ran = true
			return nil
		})
	})
	require.ErrorIs(t, err, database.ErrQueryInTransaction)
	require.False(t, ran)
}

// TestQueryLeavesThePoolUsable: whatever ends a read midway (scan's error, scan
// returning early, scan's panic, the context canceled while rows still come), the
// pool's connection is given back clean or dropped, never left busy with the
// statement's rows: on a pool of one, the next statements read their own rows.
func TestQueryLeavesThePoolUsable(t *testing.T) {
	t.Parallel()
	db := openEverySlow(t, slog.New(slog.DiscardHandler))
	sqlDB, err := db.DB()
	require.NoError(t, err)
	sqlDB.SetMaxOpenConns(1)
	// Many rows, then a pause before the last: the statement is still running
	// when scan stops reading.
	const long = "SELECT g FROM generate_series(1, 100001) AS g WHERE g <= 100000 OR pg_sleep(10) IS NULL"
	usable := func(t *testing.T) {
		t.Helper()
		var got []int64
		require.NoError(t, database.Query(context.Background(), db, "SELECT $1::int8", []any{7}, func(rows pgx.Rows) (err error) {
			got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			return err
		}))
		require.Equal(t, []int64{7}, got)
		var n int
		require.NoError(t, db.Raw("SELECT 8").Scan(&n).Error)
		require.Equal(t, 8, n)
	}
	firstRow := func(rows pgx.Rows) {
		require.True(t, rows.Next())
	}

	t.Run("scan fails", func(t *testing.T) {
		refused := errors.New("scan refused the row")
		err := database.Query(context.Background(), db, "SELECT g FROM generate_series(1, 100000) AS g", nil, func(rows pgx.Rows) error {
			firstRow(rows)
			return refused
		})
		require.ErrorIs(t, err, refused)
		usable(t)
	})
	t.Run("scan returns early", func(t *testing.T) {
		require.NoError(t, database.Query(context.Background(), db, "SELECT g FROM generate_series(1, 100000) AS g", nil, func(rows pgx.Rows) error {
			firstRow(rows)
			return nil
		}))
		usable(t)
	})
	t.Run("scan panics", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		require.PanicsWithValue(t, "scan bug", func() {
			_ = database.Query(ctx, db, long, nil, func(rows pgx.Rows) error {
				firstRow(rows)
				cancel() // the dropped connection's statement need not run to its end
				panic("scan bug")
			})
		})
		usable(t)
	})
	t.Run("context canceled mid-rows", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		err := database.Query(ctx, db, long, nil, func(rows pgx.Rows) error {
			firstRow(rows)
			cancel()
			for rows.Next() {
			}
			return rows.Err()
		})
		require.ErrorIs(t, err, context.Canceled)
		usable(t)
	})
}
