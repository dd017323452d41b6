package database_test

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/database/dbtest"
)

func TestMigrateFromAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := database.Open(ctx, dbtest.NewURL(t, ""), database.Pool{MaxOpenConns: 4}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sqlDB.Close() })

	require.NoError(t, database.Migrate(ctx, sqlDB, slog.New(slog.DiscardHandler)))
	for _, table := range []string{"products", "plans", "customers"} {
		require.True(t, tableExists(t, sqlDB, table), table)
	}
	var version int64
	require.NoError(t, sqlDB.QueryRow("SELECT max(version_id) FROM goose_db_version").Scan(&version))
	require.Positive(t, version)

	// A second run (another instance starting) applies nothing and fails nothing.
	require.NoError(t, database.Migrate(ctx, sqlDB, slog.New(slog.DiscardHandler)))
	var after int64
	require.NoError(t, sqlDB.QueryRow("SELECT max(version_id) FROM goose_db_version").Scan(&after))
	require.Equal(t, version, after)
}

func TestSchemaRefusesBadMoney(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	require.NoError(t, db.Exec(`INSERT INTO products (id, name) VALUES ('00000000-0000-4000-8000-000000000001', 'Box')`).Error)
	for name, stmt := range map[string]string{
		"zero amount":      `INSERT INTO plans (product_id, billing_interval, amount, currency) VALUES ('00000000-0000-4000-8000-000000000001', 'MONTH', 0, 'USD')`,
		"lower currency":   `INSERT INTO plans (product_id, billing_interval, amount, currency) VALUES ('00000000-0000-4000-8000-000000000001', 'MONTH', 100, 'usd')`,
		"unknown interval": `INSERT INTO plans (product_id, billing_interval, amount, currency) VALUES ('00000000-0000-4000-8000-000000000001', 'WEEK', 100, 'USD')`,
	} {
		require.Error(t, db.Exec(stmt).Error, name)
	}
}

func TestOpenFailsWithoutLeakingTheURL(t *testing.T) {
	t.Parallel()
	_, err := database.Open(context.Background(), "postgres://user:s3cr3t-canary@127.0.0.1:1/db?connect_timeout=2", database.Pool{}, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cr3t-canary")
}

func tableExists(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, db.QueryRow("SELECT to_regclass($1) IS NOT NULL", "public."+name).Scan(&ok))
	return ok
}

func TestConnectionsKeepNoDescriptionCache(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t, "")
	withParam := func(p string) string {
		if strings.Contains(url, "?") {
			return url + "&" + p
		}
		return url + "?" + p
	}
	for _, tc := range []struct {
		name      string
		url       string
		describes bool
	}{
		{"the default exec mode prepares and caches statements only", url, false},
		{"cache_describe keeps the cache it needs", withParam("default_query_exec_mode=cache_describe"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := database.Open(ctx, tc.url, database.Pool{MaxOpenConns: 1}, slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			sqlDB, err := db.DB()
			require.NoError(t, err)
			t.Cleanup(func() { _ = sqlDB.Close() })

			var n int
			require.NoError(t, db.WithContext(ctx).Raw("SELECT ?::int", 7).Scan(&n).Error)
			require.Equal(t, 7, n)

			conn, err := sqlDB.Conn(ctx)
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.Raw(func(dc any) error {
				cfg := dc.(*stdlib.Conn).Conn().Config()
				require.Positive(t, cfg.StatementCacheCapacity, "statements are still cached")
				if tc.describes {
					require.Positive(t, cfg.DescriptionCacheCapacity)
				} else {
					require.Zero(t, cfg.DescriptionCacheCapacity)
				}
				return nil
			}))
		})
	}
}
