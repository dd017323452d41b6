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
		func(rows pgx.Rows) error {
			for rows.Next() {
				var g int64
				if err := rows.Scan(&g); err != nil {
					return err
				}
				got = append(got, g)
			}
			return nil
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
