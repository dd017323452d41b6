package database_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/logging"
)

// openEverySlow opens a fresh database whose gorm logger writes to log with a 1 ns
// threshold: every statement is a slow one.
func openEverySlow(t *testing.T, log *slog.Logger) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(postgres.Open(dbtest.NewURL(t, "")), &gorm.Config{Logger: database.NewGormLogger(log, time.Nanosecond)})
	require.NoError(t, err)
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return db
}

// TestGormLogsStatementsWithoutValues: slow and failing statements are logged with
// their placeholders, never the values bound to them, and the error text of a
// failure (which PostgreSQL makes quote the value) is masked.
func TestGormLogsStatementsWithoutValues(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	// Every statement is a slow one, so both paths are exercised.
	db := openEverySlow(t, logging.New(&buf, slog.LevelDebug))

	const email = "slow.canary@example.com"
	var got string
	require.NoError(t, db.Raw("SELECT ?::text", email).Scan(&got).Error)
	require.Equal(t, email, got)
	require.Error(t, db.Exec("SELECT ?::int", email).Error, "PostgreSQL quotes the bad value in its error")

	logs := buf.String()
	require.Contains(t, logs, `"level":"WARN"`, "the slow statement was logged")
	require.Contains(t, logs, `SELECT $1::text`)
	require.Contains(t, logs, `"level":"ERROR"`, "the failed statement was logged")
	require.Contains(t, logs, `SELECT $1::int`)
	require.Contains(t, logs, "invalid input syntax")
	require.NotContains(t, logs, email)
	require.NotContains(t, logs, "slow.canary")
}

// TestGormNeverInterpolatesValues holds without the masking handler: the statement
// text gorm hands to the logger carries placeholders on the Scan path and the Exec
// path alike.
func TestGormNeverInterpolatesValues(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	db := openEverySlow(t, slog.New(slog.NewJSONHandler(&buf, nil)))
	const name = "Plain Canaryname"
	var got string
	require.NoError(t, db.Raw("SELECT ?::text", name).Scan(&got).Error)
	require.NoError(t, db.Exec("SELECT length(?::text)", name).Error)
	require.Equal(t, name, got)
	logs := buf.String()
	require.Contains(t, logs, `SELECT $1::text`)
	require.Contains(t, logs, `SELECT length($1::text)`)
	require.NotContains(t, logs, "Canaryname")
}

// TestGormLoggerBuildsOnlyWhatItLogs: the statement text (gorm's explainer, and the
// placeholder rewrite) is built only for a statement that is logged: failed, slow,
// or any at Info. A fast successful one, a record not found, or one its caller
// canceled (a client that went away: no database failure) costs nothing.
func TestGormLoggerBuildsOnlyWhatItLogs(t *testing.T) {
	t.Parallel()
	long := time.Now().Add(-time.Hour) // began long before the slow threshold
	for _, tc := range []struct {
		name   string
		info   bool
		begin  time.Time
		err    error
		builds bool
	}{
		{name: "fast and successful", begin: time.Now()},
		{name: "record not found", begin: time.Now(), err: gorm.ErrRecordNotFound},
		{name: "failed", begin: time.Now(), err: errors.New("boom"), builds: true},
		{name: "canceled by its caller", begin: time.Now(), err: fmt.Errorf("read: %w", context.Canceled)},
		{name: "slow, then canceled", begin: long, err: context.Canceled},
		{name: "slow", begin: long, builds: true},
		{name: "fast and successful at Info", info: true, begin: time.Now(), builds: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l := database.NewGormLogger(logging.New(&buf, slog.LevelDebug), time.Minute)
			if tc.info {
				l = l.LogMode(gormlogger.Info)
			}
			built := 0
			l.Trace(context.Background(), tc.begin, func() (string, int64) {
				built++
				return "SELECT $1$", 1
			}, tc.err)
			if !tc.builds {
				require.Zero(t, built, "the statement text was built for nothing")
				require.Empty(t, buf.String())
				return
			}
			require.Equal(t, 1, built)
			require.Contains(t, buf.String(), "SELECT $1", "logged with PostgreSQL's placeholder")
		})
	}
}
