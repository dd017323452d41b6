package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/catalog"
	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/logging"
	"github.com/scoville/scoville/logging/logtest"
	"github.com/scoville/scoville/sealing"
)

const testAudience = "scoville-api"

// testApp is the whole product wired by app.New, served over real HTTP on loopback,
// with its own database and a real OIDC issuer.
type testApp struct {
	t      testing.TB
	srv    *httptest.Server
	issuer *devidp.Issuer
	db     *gorm.DB
	logs   *logtest.Buffer
	app    *app.App
	// migrationURL is the schema owner's connection (DATABASE_MIGRATION_URL); db
	// runs as the server's role.
	migrationURL string
}

type appOptions struct {
	env   map[string]string // overrides
	dbURL string            // default: a fresh database, migrated on start
	// production wires the app as production mode does, after config validation.
	production bool
	// options replace parts of the application (app.Option: the test seams).
	options []app.Option
	// jobs starts the background workers (webhook events, notifications).
	jobs bool
}

// testWebhookSecret signs the test's Stripe events.
const testWebhookSecret = "whsec_test_scoville_secret"

func newTestApp(t testing.TB, opts appOptions) *testApp {
	t.Helper()
	issuer := startIssuer(t)

	dbURL := opts.dbURL
	if dbURL == "" {
		dbURL = dbtest.NewURL(t, "")
	}
	env := map[string]string{
		"STRIPE_API_BASE":          stripeMockURL(t),
		"STRIPE_SECRET_KEY":        "sk_test_123",
		"ALLOWED_REDIRECT_ORIGINS": "https://shop.example",
		"APP_ENV":                  "development",
		// Two roles, as production runs: the server as a role that owns nothing,
		// migrations (and the grants to that role) as the schema's owner.
		"DATABASE_URL":           dbtest.AppURL(t, dbURL),
		"DATABASE_MIGRATION_URL": dbURL,
		"OIDC_ISSUER_URL":        issuer.IssuerURL(),
		"OIDC_AUDIENCE":          testAudience,
		"MIGRATE_ON_START":       "true",
		"STEP_UP_MAX_AGE":        "5m",
		"STRIPE_WEBHOOK_SECRET":  testWebhookSecret,
		"JOB_POLL_INTERVAL":      "20ms",
		// Rate limits out of the way of functional tests; limits_test.go sets its own.
		"RATE_LIMIT_ADDRESS_PER_MINUTE":   "1000000",
		"RATE_LIMIT_QUERIES_PER_MINUTE":   "1000000",
		"RATE_LIMIT_MUTATIONS_PER_MINUTE": "1000000",
		"RATE_LIMIT_PAYMENTS_PER_MINUTE":  "1000000",
		"RATE_LIMIT_WEBHOOKS_PER_MINUTE":  "1000000",
		"RATE_LIMIT_EXPORTS_PER_MINUTE":   "1000000",
		"RATE_LIMIT_INFLIGHT_PER_CALLER":  "10000",
		"RATE_LIMIT_INFLIGHT_PER_ADDRESS": "100000",
		"DATA_ENCRYPTION_KEYS":            testDataKeys(t, opts.dbURL),
	}
	for k, v := range opts.env {
		env[k] = v
	}
	if owner, ok := opts.env["DATABASE_URL"]; ok {
		// A test that names its database gets the two roles on that one.
		if _, named := opts.env["DATABASE_MIGRATION_URL"]; !named {
			env["DATABASE_MIGRATION_URL"], env["DATABASE_URL"] = owner, dbtest.AppURL(t, owner)
		}
		dbURL = owner
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	if opts.production {
		cfg.Env = config.Production
	}

	logs := &logtest.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg, logging.New(logs, nil), opts.options...)
	require.NoError(t, err)
	t.Cleanup(a.Close)
	if opts.jobs {
		require.NoError(t, a.Start(context.Background()))
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &testApp{t: t, srv: srv, issuer: issuer, db: a.DB(), logs: logs, app: a, migrationURL: dbURL}
}

// testDataKeys is the DATA_ENCRYPTION_KEYS of a test app. A fresh database gets fresh
// random keys. A database passed in may be shared with another app or process (a
// restart, the crash test's child), which must read what the first one sealed, so it
// gets the labelled development key set, unless the test sets its own.
func testDataKeys(t testing.TB, dbURL string) string {
	if dbURL != "" {
		return sealing.DevelopmentKeys
	}
	return freshDataKeys(t)
}

// freshDataKeys is a new DATA_ENCRYPTION_KEYS value.
func freshDataKeys(t testing.TB) string {
	t.Helper()
	v, err := sealing.Generate()
	require.NoError(t, err)
	return v
}

// seed loads the development catalog, with prices at stripe-mock.
func (a *testApp) seed() { a.seedAt(stripeMockURL(a.t)) }

// seedAt loads the development catalog with prices created at the Stripe at base.
func (a *testApp) seedAt(base string) {
	a.t.Helper()
	gw, err := gateway.NewStripe(gateway.Config{SecretKey: "sk_test_123", APIBase: base})
	require.NoError(a.t, err)
	require.NoError(a.t, catalog.NewService(a.db, gw, nil).SeedDevelopment(context.Background()))
}

// token mints an access token at the test issuer; roles are lower-case token names.
func (a *testApp) token(sub string, roles ...string) string {
	a.t.Helper()
	tok, err := a.issuer.Mint(devidp.Claims{
		Subject: sub, Email: sub + "@example.com", Name: "Test " + sub, Roles: roles,
		AuthTime: time.Now().Add(-time.Minute),
	})
	require.NoError(a.t, err)
	return tok
}

type gqlResponse struct {
	Status int
	Header http.Header
	Data   map[string]any
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	}
	Raw string
}

// codes returns the extensions.code of every error, in order.
func (r gqlResponse) codes() []string {
	var out []string
	for _, e := range r.Errors {
		c, _ := e.Extensions["code"].(string)
		out = append(out, c)
	}
	return out
}

// gql posts a GraphQL request through the real handler.
func (a *testApp) gql(token, query string, vars map[string]any) gqlResponse {
	a.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(a.t, err)
	out := a.raw(limitsRequest{body: bytes.NewReader(body), token: token})
	require.NoError(a.t, json.Unmarshal([]byte(out.Raw), &out), "body: %s", out.Raw)
	return out
}

// gqlPage runs query, requires no error, and reads the Relay connection at path
// in its data: its nodes, whether more follow, and the end cursor.
func (a *testApp) gqlPage(t *testing.T, token, query string, vars map[string]any, path ...string) (nodes []map[string]any, more bool, end any) {
	t.Helper()
	resp := a.gql(token, query, vars)
	require.Empty(t, resp.Errors, resp.Raw)
	c := resp.Data
	for _, field := range path {
		c = c[field].(map[string]any)
	}
	for _, e := range c["edges"].([]any) {
		nodes = append(nodes, e.(map[string]any)["node"].(map[string]any))
	}
	pi := c["pageInfo"].(map[string]any)
	return nodes, pi["hasNextPage"].(bool), pi["endCursor"]
}

func (a *testApp) get(path string) (int, string) {
	a.t.Helper()
	resp, err := a.srv.Client().Get(a.srv.URL + path)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// requireNoLeak fails when any secret string appears in the logs.
func (a *testApp) requireNoLeak(secrets ...string) {
	a.t.Helper()
	logs := a.logs.String()
	for _, s := range secrets {
		require.False(a.t, strings.Contains(logs, s), "a secret value reached the logs")
	}
}

// stripeMockURL is the stripe-mock that make test starts; without it the test fails
// and says how to run it.
func stripeMockURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("STRIPE_API_BASE")
	if u == "" {
		t.Fatal("STRIPE_API_BASE is not set: run `make test` (it starts stripe-mock), or run " +
			"`go tool stripe-mock -http-addr 127.0.0.1:12111` and export STRIPE_API_BASE=http://127.0.0.1:12111")
	}
	return u
}

// newFakeStripe is a stateful fake Stripe that stops with the test.
func newFakeStripe(t *testing.T) *stripefake.Server {
	t.Helper()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	return fake
}

// text is the one text value query finds, "" when it finds no row.
func (a *testApp) text(query string, args ...any) string {
	a.t.Helper()
	var v string
	require.NoError(a.t, a.db.Raw(query, args...).Scan(&v).Error)
	return v
}

// customersByEmail is the edges adminCustomers lists for email (each node's id and
// email), as token's holder sees them; the query must not fail.
func (a *testApp) customersByEmail(token, email string) []any {
	a.t.Helper()
	resp := a.gql(token, `query($e: String) { adminCustomers(email: $e) { edges { node { id email } } } }`, map[string]any{"e": email})
	require.Empty(a.t, resp.Errors, resp.Raw)
	return resp.Data["adminCustomers"].(map[string]any)["edges"].([]any)
}

// startIssuer serves a development identity provider for testAudience until the test
// ends.
func startIssuer(t testing.TB) *devidp.Issuer {
	t.Helper()
	issuer, idp, err := devidp.StartTestServer(testAudience)
	require.NoError(t, err)
	t.Cleanup(idp.Close)
	return issuer
}
