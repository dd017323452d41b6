package database_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database/dbtest"
)

// The server's role (DATABASE_URL, as database.GrantRuntime leaves it) can read and
// add to the audit log and do DML on business tables, and nothing else: every
// statement that would rewrite, empty, unprotect, drop or extend the schema is
// refused, and nothing changes.
func TestServerRoleCannotAlterOrEmptyTheSchema(t *testing.T) {
	t.Parallel()
	app, owner := dbtest.NewWithOwner(t)

	// What the server needs works.
	require.NoError(t, app.Exec(`INSERT INTO audit_log (actor_issuer, actor_subject, action, target_type, target_id, reason)
		VALUES ('https://issuer.example', 'staff-1', 'refundPayment', 'payment', 'p1', 'customer asked')`).Error)
	require.NoError(t, app.Exec(`INSERT INTO products (name, description) VALUES ('Box', 'Sauces')`).Error)
	require.NoError(t, app.Exec(`UPDATE products SET description = 'Hot sauces'`).Error)

	count := func(db *gorm.DB, q string) int64 {
		t.Helper()
		var n int64
		require.NoError(t, db.Raw(q).Scan(&n).Error)
		return n
	}
	shape := func() int64 {
		return count(owner, `SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()`) +
			count(owner, `SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O'`) +
			count(owner, `SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace`)
	}
	before := shape()

	for name, stmt := range map[string]string{
		"update the audit log":            `UPDATE audit_log SET reason = 'rewritten'`,
		"delete from the audit log":       `DELETE FROM audit_log`,
		"truncate the audit log":          `TRUNCATE audit_log`,
		"disable the audit log's trigger": `ALTER TABLE audit_log DISABLE TRIGGER ALL`,
		"drop the audit log":              `DROP TABLE audit_log`,
		"alter the audit log":             `ALTER TABLE audit_log DROP COLUMN reason`,
		"truncate a business table":       `TRUNCATE products CASCADE`,
		"disable a business trigger":      `ALTER TABLE products DISABLE TRIGGER ALL`,
		"drop a business table":           `DROP TABLE products CASCADE`,
		"alter a business table":          `ALTER TABLE products ADD COLUMN x int`,
		"index a business table":          `CREATE INDEX products_x ON products (name)`,
		"create a table":                  `CREATE TABLE intruder (id int)`,
		"create a function":               `CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
		"rewrite the migration history":   `DELETE FROM goose_db_version`,
		"rewrite River's migrations":      `DELETE FROM river_migration`,
		"rewind the arrival order":        `SELECT setval('webhook_events_seq_seq', 1)`,
	} {
		t.Run(name, func(t *testing.T) {
			err := app.Exec(stmt).Error
			require.Error(t, err, "the server's role must not be able to: %s", stmt)
		})
	}

	require.Equal(t, before, shape(), "the schema is as it was")
	require.EqualValues(t, 1, count(owner, `SELECT count(*) FROM audit_log WHERE reason = 'customer asked'`))
	require.EqualValues(t, 1, count(owner, `SELECT count(*) FROM products`))
	require.Positive(t, count(owner, `SELECT count(*) FROM goose_db_version`))
	require.EqualValues(t, 0, count(owner, `SELECT count(*) FROM pg_tables
		WHERE schemaname = current_schema() AND tableowner = '`+dbtest.AppRole+`'`), "the server's role owns no table")
}
