package e2e

import (
	"context"
	"database/sql"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/logging"
	"github.com/scoville/scoville/logging/logtest"
)

// TestNewReleasesWhatItBuiltWhenItFails: New fails after it has opened the database
// pool and migrated (OIDC discovery answers for another issuer), and leaves no
// connection of the server's role open.
func TestNewReleasesWhatItBuiltWhenItFails(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t, "")
	issuer := startIssuer(t)
	appURL := dbtest.AppURL(t, dbURL)
	env := map[string]string{
		"APP_ENV": "development", "DATABASE_URL": appURL, "DATABASE_MIGRATION_URL": dbURL,
		"MIGRATE_ON_START": "true",
		// The same server under another name: its discovery document names
		// 127.0.0.1, so discovery refuses it at once.
		"OIDC_ISSUER_URL": strings.Replace(issuer.IssuerURL(), "127.0.0.1", "localhost", 1),
		"OIDC_AUDIENCE":   testAudience, "STRIPE_API_BASE": stripeMockURL(t), "STRIPE_SECRET_KEY": "sk_test_123",
		"DATA_ENCRYPTION_KEYS": freshDataKeys(t),
	}
	cfg, err := config.Load(envOf(env))
	require.NoError(t, err)

	owner, err := sql.Open("pgx", dbURL)
	require.NoError(t, err)
	defer owner.Close()
	serverConns := func() int {
		var n int
		require.NoError(t, owner.QueryRow(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND usename <> current_user`).Scan(&n))
		return n
	}

	a, err := app.New(context.Background(), cfg, logging.New(&logtest.Buffer{}, nil))
	require.Error(t, err)
	require.Contains(t, err.Error(), "OIDC_ISSUER_URL")
	require.Nil(t, a)
	var migrated bool
	require.NoError(t, owner.QueryRow(`SELECT to_regclass('customers') IS NOT NULL`).Scan(&migrated))
	require.True(t, migrated, "New failed after the pool was open and the schema migrated")
	// A backend ends a moment after its client hangs up.
	require.Eventually(t, func() bool { return serverConns() == 0 }, 10*time.Second, 20*time.Millisecond,
		"the server role's connections outlived the failed New")
}

// TestCloseIsFinal: Close may be called again, and Start after Close is refused
// rather than running workers on a closed pool.
func TestCloseIsFinal(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true})
	a.app.Close()
	a.app.Close()
	require.Error(t, a.app.Start(context.Background()))
	require.Error(t, a.app.DB().Exec(`SELECT 1`).Error, "the pool is closed")
}

// The warning about a server that owns its schema follows the role it connects as,
// not whether DATABASE_MIGRATION_URL is set: replicas of a careful rollout are given
// only DATABASE_URL and must not warn.
func TestProductionWarnsOnlyWhenTheServerOwnsTables(t *testing.T) {
	const warning = "owns tables of the schema"
	owner, keys := dbtest.NewURL(t, ""), freshDataKeys(t)
	migrated := newTestApp(t, appOptions{env: map[string]string{"DATABASE_URL": owner, "DATA_ENCRYPTION_KEYS": keys}})
	require.NotContains(t, migrated.logs.String(), warning, "development does not warn")

	replica := newTestApp(t, appOptions{production: true, env: map[string]string{
		"DATABASE_URL": dbtest.AppURL(t, owner), "DATABASE_MIGRATION_URL": "", "MIGRATE_ON_START": "false", "DATA_ENCRYPTION_KEYS": keys,
	}})
	require.NotContains(t, replica.logs.String(), warning, "a role that owns nothing")

	asOwner := newTestApp(t, appOptions{production: true, env: map[string]string{
		"DATABASE_URL": owner, "DATABASE_MIGRATION_URL": "", "MIGRATE_ON_START": "false", "DATA_ENCRYPTION_KEYS": keys,
	}})
	require.Contains(t, asOwner.logs.String(), warning, "the schema's owner")
}

// A role that can act as the tables' owner can alter or drop them as the owner
// can: a superuser, and a member of the owning role. Production warns for both,
// not only for the owner itself (here the tables belong to a role that cannot
// log in, as when the migration job's role is not the cluster's superuser).
func TestProductionWarnsWhenTheServerCanActAsTheOwner(t *testing.T) {
	const warning = "owns tables of the schema"
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	owningRole, memberRole := "t_owner_"+suffix, "t_member_"+suffix
	admin, err := sql.Open("pgx", dbtest.AdminURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { // after the database (registered below) is dropped
		defer admin.Close()
		for _, role := range []string{memberRole, owningRole} {
			_, err := admin.Exec(`DROP ROLE IF EXISTS "` + role + `"`)
			require.NoError(t, err)
		}
	})
	owner, keys := dbtest.NewURL(t, ""), freshDataKeys(t)
	newTestApp(t, appOptions{env: map[string]string{"DATABASE_URL": owner, "DATA_ENCRYPTION_KEYS": keys}})

	db, err := sql.Open("pgx", owner)
	require.NoError(t, err)
	defer db.Close()
	for _, stmt := range []string{
		`CREATE ROLE "` + owningRole + `" NOLOGIN`,
		`CREATE ROLE "` + memberRole + `" LOGIN PASSWORD 'member' IN ROLE "` + owningRole + `"`,
		`DO $$ DECLARE r record; BEGIN
			FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') LOOP
				EXECUTE format('ALTER TABLE %I OWNER TO %I', r.relname, '` + owningRole + `');
			END LOOP; END $$`,
	} {
		_, err := db.Exec(stmt)
		require.NoError(t, err)
	}
	member, err := url.Parse(owner)
	require.NoError(t, err)
	member.User = url.UserPassword(memberRole, "member")

	for who, dsn := range map[string]string{"the superuser": owner, "a member of the owning role": member.String()} {
		a := newTestApp(t, appOptions{production: true, env: map[string]string{
			"DATABASE_URL": dsn, "DATABASE_MIGRATION_URL": "", "MIGRATE_ON_START": "false", "DATA_ENCRYPTION_KEYS": keys,
		}})
		require.Contains(t, a.logs.String(), warning, who)
	}
}
