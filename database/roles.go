package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/jackc/pgx/v5"
)

// appendOnly are the tables the running server may read and add to, never change or
// empty: the audit trail must hold against the application that writes it.
var appendOnly = []string{"audit_log"}

// readOnly are the tables the running server reads but only migrations (or, for
// catalog_version, its trigger, migration 00017) write.
var readOnly = []string{"goose_db_version", "river_migration", "catalog_version"}

// OpenOwner connects to DATABASE_MIGRATION_URL, the schema owner's connection, which
// only migrations use. The DSN is never logged or echoed: it carries the password.
func OpenOwner(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, errors.New("database: cannot open DATABASE_MIGRATION_URL (check its format)")
	}
	db.SetMaxOpenConns(2)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("database: PostgreSQL at DATABASE_MIGRATION_URL does not answer: %w", err)
	}
	return db, nil
}

// CurrentRole returns the role a connection runs as.
func CurrentRole(ctx context.Context, db *sql.DB) (string, error) {
	var role string
	if err := db.QueryRowContext(ctx, "SELECT current_user").Scan(&role); err != nil {
		return "", fmt.Errorf("database: current role: %w", err)
	}
	return role, nil
}

// GrantRuntime gives role, through owner (the schema's owner), exactly what the
// running server needs on the current schema and nothing more: USAGE on the schema,
// SELECT, INSERT, UPDATE and DELETE on its tables (River's included), SELECT and
// INSERT only on the append-only audit log, SELECT only on the migration history,
// and USAGE and SELECT on its sequences (nextval, never setval). It grants no
// TRUNCATE, REFERENCES or TRIGGER, no CREATE on the schema, and no ownership, so the
// role cannot alter, disable the triggers of, empty or drop any table. It is
// idempotent and runs after every migration.
func GrantRuntime(ctx context.Context, owner *sql.DB, role string) error {
	r := pgx.Identifier{role}.Sanitize()
	stmts := []string{
		"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM " + r,
		"GRANT USAGE ON SCHEMA public TO " + r,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + r,
		// nextval needs USAGE; UPDATE would also allow setval, which could rewind
		// webhook_events' seq (the arrival order of same-second events).
		"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM " + r,
		"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO " + r,
	}
	for _, t := range appendOnly {
		stmts = append(stmts, fmt.Sprintf("REVOKE UPDATE, DELETE ON %s FROM %s", pgx.Identifier{t}.Sanitize(), r))
	}
	for _, t := range readOnly {
		stmts = append(stmts, fmt.Sprintf("REVOKE INSERT, UPDATE, DELETE ON %s FROM %s", pgx.Identifier{t}.Sanitize(), r))
	}
	tx, err := owner.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("database: grant: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("database: grant to the server's role: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("database: grant: %w", err)
	}
	return nil
}

// OwnsTables reports whether role owns any table of the current schema: a server
// running as such a role can alter or empty its own audit log.
func OwnsTables(ctx context.Context, db *sql.DB, role string) (bool, error) {
	var owns bool
	err := db.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tableowner = $1)`, role).Scan(&owns)
	if err != nil {
		return false, fmt.Errorf("database: table owners: %w", err)
	}
	return owns, nil
}
