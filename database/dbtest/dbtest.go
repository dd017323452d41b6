// Package dbtest gives each test its own PostgreSQL database, cloned from a migrated
// template, so tests run against the real schema in parallel without sharing state.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/migrations"
	"github.com/scoville/scoville/sealing"
)

// howToRun is the message a test fails with when there is no database to use.
const howToRun = "DATABASE_URL is not set: run `make test`, which starts a throwaway PostgreSQL " +
	"and stripe-mock, or export DATABASE_URL as a PostgreSQL superuser URL (tests create databases)"

// AdminURL returns the server URL the tests manage databases through, failing the test
// with instructions when none is configured. It never skips.
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		t.Fatal(howToRun)
	}
	return u
}

// AppRole is the role tests run the application as, as production does: it owns
// nothing and holds only what database.GrantRuntime gives it. The schema's owner is
// DATABASE_URL's (super)user.
const AppRole = "scoville_app"

// New returns a gorm handle, connected as AppRole, on a fresh, fully migrated
// database that is dropped when the test ends.
func New(t testing.TB) *gorm.DB {
	t.Helper()
	app, _ := NewWithOwner(t)
	return app
}

// NewSealed is New with fresh data keys installed (sealing), as the server has keys:
// personal columns are sealed and opened as in production.
func NewSealed(t testing.TB) *gorm.DB {
	t.Helper()
	db := New(t)
	v, err := sealing.Generate()
	if err != nil {
		t.Fatalf("dbtest: keys: %v", err)
	}
	k, err := sealing.Parse(v)
	if err != nil {
		t.Fatalf("dbtest: keys: %v", err)
	}
	if err := sealing.Install(db, k); err != nil {
		t.Fatalf("dbtest: keys: %v", err)
	}
	return db
}

// NewWithOwner is New, and also a handle on the same database as the schema's owner,
// for a test that must change what the application cannot (a trigger that makes
// writes fail, say).
func NewWithOwner(t testing.TB) (app, owner *gorm.DB) {
	t.Helper()
	ownerURL := NewURL(t, templateName(t))
	return open(t, AppURL(t, ownerURL)), open(t, ownerURL)
}

func open(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	db, err := database.Open(context.Background(), dsn, database.Pool{MaxOpenConns: 30}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("dbtest: open: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return db
}

// AppURL returns ownerURL (a database of NewURL) as AppRole connects to it. The role
// exists once this returns; a database that was not cloned from the migrated template
// gets its grants from the application's own migration (DATABASE_MIGRATION_URL).
func AppURL(t testing.TB, ownerURL string) string {
	t.Helper()
	if err := ensureAppRoleAt(ownerURL); err != nil {
		t.Fatalf("dbtest: role %s: %v", AppRole, err)
	}
	u, err := url.Parse(ownerURL)
	if err != nil {
		t.Fatalf("dbtest: DATABASE_URL must be a postgres:// URL for tests")
	}
	u.User = url.UserPassword(AppRole, AppRole)
	return u.String()
}

// rolesMade holds the clusters (host and port) where AppRole exists.
var rolesMade sync.Map

// ensureAppRoleAt creates AppRole in the cluster of dsn (a test may run its own
// cluster) unless this process did already.
func ensureAppRoleAt(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	if _, done := rolesMade.Load(u.Host); done {
		return nil
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := ensureAppRole(db); err != nil {
		return err
	}
	rolesMade.Store(u.Host, true)
	return nil
}

// ensureAppRole creates AppRole in db's cluster; test processes racing to create it
// all succeed.
func ensureAppRole(db *sql.DB) error {
	_, err := db.Exec(`DO $$ BEGIN
		CREATE ROLE ` + AppRole + ` LOGIN PASSWORD '` + AppRole + `';
	EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
	END $$`)
	return err
}

// NewURL creates a database copied from template ("" for an empty one) and returns its
// URL; it is dropped when the test ends, even with connections left open.
func NewURL(t testing.TB, template string) string {
	t.Helper()
	admin := openAdmin(t)
	name := "scoville_test_" + randomSuffix()
	stmt := "CREATE DATABASE " + name
	if template != "" {
		stmt += " TEMPLATE " + template
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if _, err = admin.Exec(stmt); err == nil || !strings.Contains(err.Error(), "is being accessed by other users") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: drop %s: %v", name, err)
		}
	})
	return WithDatabase(t, AdminURL(t), name)
}

// WithDatabase returns base with its database name replaced.
func WithDatabase(t testing.TB, base, name string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("dbtest: DATABASE_URL must be a postgres:// URL for tests")
	}
	u.Path = "/" + name
	return u.String()
}

var (
	adminOnce sync.Once
	adminDB   *sql.DB
	adminErr  error

	templateOnce sync.Once
	template     string
	templateErr  error
)

func openAdmin(t testing.TB) *sql.DB {
	t.Helper()
	dsn := AdminURL(t)
	adminOnce.Do(func() {
		adminDB, adminErr = sql.Open("pgx", dsn)
		if adminErr == nil {
			adminErr = adminDB.Ping()
		}
	})
	if adminErr != nil {
		t.Fatalf("dbtest: PostgreSQL at DATABASE_URL does not answer (%v); %s", adminErr, howToRun)
	}
	return adminDB
}

// templateName returns a migrated template database named after the migrations'
// content, building it once across all test processes (an advisory lock serializes
// the packages that go test runs in parallel).
func templateName(t testing.TB) string {
	t.Helper()
	admin := openAdmin(t)
	templateOnce.Do(func() { template, templateErr = buildTemplate(admin) })
	if templateErr != nil {
		t.Fatalf("dbtest: template: %v", templateErr)
	}
	return template
}

func buildTemplate(admin *sql.DB) (string, error) {
	sum, err := migrationsDigest()
	if err != nil {
		return "", err
	}
	name := "scoville_tmpl_" + sum[:16]
	ctx := context.Background()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
		return "", err
	}
	defer conn.ExecContext(ctx, "SELECT pg_advisory_unlock(727274)") //nolint:errcheck
	var exists bool
	if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	if _, err := conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	u, err := url.Parse(os.Getenv("DATABASE_URL"))
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	tmpl, err := sql.Open("pgx", u.String())
	if err != nil {
		return "", err
	}
	if err := database.Migrate(ctx, tmpl, slog.New(slog.DiscardHandler)); err != nil {
		_ = tmpl.Close()
		return "", err
	}
	if err := ensureAppRole(admin); err != nil {
		_ = tmpl.Close()
		return "", err
	}
	if err := database.GrantRuntime(ctx, tmpl, AppRole); err != nil {
		_ = tmpl.Close()
		return "", err
	}
	if err := tmpl.Close(); err != nil {
		return "", err
	}
	if _, err := conn.ExecContext(ctx, "ALTER DATABASE "+name+" WITH is_template true"); err != nil {
		return "", err
	}
	return name, nil
}

func migrationsDigest() (string, error) {
	h := sha256.New()
	h.Write([]byte(migrations.RiverVersion))
	h.Write([]byte("grants to " + AppRole + " v1"))
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// StoredEventPayloads returns every stored webhook event's payload column as
// PostgreSQL holds it (sealed, hex), by Stripe's event id: any rewrite of an event
// changes its entry.
func StoredEventPayloads(t testing.TB, db *gorm.DB) map[string]string {
	t.Helper()
	var rows []struct{ ProviderEventID, Payload string }
	if err := db.Raw(`SELECT provider_event_id, encode(payload, 'hex') AS payload FROM webhook_events`).Scan(&rows).Error; err != nil {
		t.Fatalf("dbtest: read stored event payloads: %v", err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.ProviderEventID] = r.Payload
	}
	return out
}

// AwaitWaiter returns once some session waits for the transaction xid (on a lock
// it holds), checking pg_locks rather than sleeping; it fails the test when done
// yields first: the work ended without ever waiting for that transaction.
func AwaitWaiter(t testing.TB, db *gorm.DB, xid string, done <-chan error) {
	t.Helper()
	for {
		var waiting int64
		require.NoError(t, db.Raw("SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND transactionid::text = ? AND NOT granted", xid).Scan(&waiting).Error)
		if waiting > 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("the work ended without waiting for transaction %s: %v", xid, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
