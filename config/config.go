package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Env is the mode the process runs in; it decides which settings are required
// and how strictly they are checked.
type Env string

const (
	// Development is the default mode: provider settings may be missing and http
	// URLs are allowed, so the service runs on a laptop against local fakes.
	Development Env = "development"
	// Production refuses to start unless the database, OIDC issuer and Stripe
	// credentials are set and every public URL uses https.
	Production Env = "production"
)

// Config is the whole validated configuration. Load builds it once at start; it is
// read-only afterwards, so it may be shared between goroutines. Credentials are
// Secret, so printing or logging a Config never shows them.
type Config struct {
	// Env is APP_ENV: development (default) or production.
	Env Env
	// HTTPAddr is HTTP_ADDR, the listen address (host:port), default ":8080".
	HTTPAddr string

	// DatabaseURL is DATABASE_URL, a postgres:// URL or a libpq key=value string;
	// required in every mode.
	DatabaseURL Secret
	// DatabaseMigrationURL is DATABASE_MIGRATION_URL, the schema owner's connection,
	// used only to migrate (and to grant DatabaseURL's role what the server needs);
	// empty: DatabaseURL does both.
	DatabaseMigrationURL Secret
	// DBMaxOpenConns is DB_MAX_OPEN_CONNS (1..1000), default 20.
	DBMaxOpenConns int
	// DBMaxIdleConns is DB_MAX_IDLE_CONNS (0..DBMaxOpenConns), default
	// DBMaxOpenConns: fewer idle than open makes the pool close and reopen
	// connections under load (measured: webhook acks 1,500/s against 2,200/s).
	DBMaxIdleConns int
	// DBConnMaxLifetime is DB_CONN_MAX_LIFETIME (> 0), default 30m.
	DBConnMaxLifetime time.Duration
	// DBConnMaxIdleTime is DB_CONN_MAX_IDLE_TIME (> 0), default 5m.
	DBConnMaxIdleTime time.Duration

	// OIDCIssuerURL is OIDC_ISSUER_URL exactly as given (it must equal the tokens'
	// iss); required and https in production. Empty only in development.
	OIDCIssuerURL string
	// OIDCAudience is OIDC_AUDIENCE, the aud access tokens must carry; required in
	// production and whenever OIDCIssuerURL is set.
	OIDCAudience string
	// OIDCRolesClaim is OIDC_ROLES_CLAIM, a claim name or dotted path such as
	// realm_access.roles, default "roles".
	OIDCRolesClaim string
	// StepUpMaxAge is STEP_UP_MAX_AGE (0 < d <= 24h), default 5m: how recent
	// auth_time must be for step-up operations.
	StepUpMaxAge time.Duration
	// StepUpACR is STEP_UP_ACR, a comma list (at most 20 values of printable ASCII
	// without spaces, quotes or backslashes; duplicates dropped): when set, a step-up
	// operation also needs the token's acr to be exactly one of them. Default none.
	StepUpACR []string
	// StepUpAMR is STEP_UP_AMR, a comma list like STEP_UP_ACR: when set, a step-up
	// operation also needs the token's amr array to hold one of them exactly. With
	// both set, both are needed. Default none.
	StepUpAMR []string
	// OIDCRequireATJWT is OIDC_REQUIRE_AT_JWT (strconv.ParseBool forms), default
	// false: accept only access tokens whose JWS typ header is at+jwt (RFC 9068).
	OIDCRequireATJWT bool

	// StripeSecretKey is STRIPE_SECRET_KEY (sk_ or rk_; in production sk_test_,
	// sk_live_, rk_test_ or rk_live_); required in production.
	StripeSecretKey Secret
	// StripeWebhookSecret is STRIPE_WEBHOOK_SECRET (whsec_...); required in
	// production.
	StripeWebhookSecret Secret
	// StripeAPIBase is STRIPE_API_BASE without a trailing slash (for stripe-mock);
	// empty means Stripe's own. https in production.
	StripeAPIBase string
	// ShippingCountries is SHIPPING_COUNTRIES, ISO 3166-1 alpha-2 codes (upper
	// case, no duplicates) that hosted Checkout offers for the delivery address;
	// default "US".
	ShippingCountries []string
	// StripeAutomaticTax is STRIPE_AUTOMATIC_TAX: ask Stripe Tax to compute tax on
	// checkout sessions and subscriptions (Stripe Tax must be enabled on the account).
	StripeAutomaticTax bool

	// AllowedRedirectOrigins is ALLOWED_REDIRECT_ORIGINS: normalized origins
	// (lower case, default port dropped, no duplicates) that success, cancel and
	// return URLs may point to. Never "*"; https only in production.
	AllowedRedirectOrigins []string
	// CORSAllowedOrigins is CORS_ALLOWED_ORIGINS, normalized like
	// AllowedRedirectOrigins; "*" is allowed in development only.
	CORSAllowedOrigins []string

	// MetricsAddr is METRICS_ADDR, a separate host:port for /metrics; empty means
	// /metrics is served on HTTPAddr in development and not at all in production.
	MetricsAddr string
	// TrustedProxies is TRUSTED_PROXIES: the networks whose X-Forwarded-For is
	// believed. A bare IP is a single-address prefix; IPv4-mapped IPv6 addresses
	// are unmapped.
	TrustedProxies []netip.Prefix
	// WebhookTargetAllowedCIDRs is WEBHOOK_TARGET_ALLOWED_CIDRS: networks an
	// outgoing webhook endpoint may resolve to in production although they are not
	// public (a receiver inside the brand's own network), written like
	// TRUSTED_PROXIES. Empty: public addresses only.
	WebhookTargetAllowedCIDRs []netip.Prefix
	// Traces is whether the standard OTEL_* variables ask for traces: an OTLP
	// endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT)
	// is set, and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none turns
	// them off. The exporter reads the variables themselves (package tracing).
	Traces bool
	// RateLimitAddress is RATE_LIMIT_ADDRESS_PER_MINUTE (1..1,000,000), default
	// 1200: /graphql requests from one client address, whoever the caller.
	RateLimitAddress int
	// RateLimitQueries is RATE_LIMIT_QUERIES_PER_MINUTE (1..1,000,000), default
	// 300: query operations per caller (principal, or address when anonymous).
	RateLimitQueries int
	// RateLimitMutations is RATE_LIMIT_MUTATIONS_PER_MINUTE (1..1,000,000),
	// default 60: mutation operations per caller.
	RateLimitMutations int
	// RateLimitPayments is RATE_LIMIT_PAYMENTS_PER_MINUTE (1..1,000,000), default
	// 10: selections per caller of the fields the schema marks @provider (each one
	// calls Stripe), aliases included.
	RateLimitPayments int
	// RateLimitWebhooks is RATE_LIMIT_WEBHOOKS_PER_MINUTE (1..1,000,000), default
	// 60000: webhook deliveries from one address (Stripe sends from a few addresses,
	// and a signature check is cheap). Every limit allows a burst of half
	// its minute at once.
	RateLimitWebhooks int
	// RateLimitExports is RATE_LIMIT_EXPORTS_PER_MINUTE (1..1,000,000), default
	// 5: exportMyData calls per caller (each reads everything held about them).
	RateLimitExports int
	// RateLimitInFlightCaller is RATE_LIMIT_INFLIGHT_PER_CALLER (1..10,000),
	// default 8: /graphql requests one caller (principal, or address when
	// anonymous) may have in flight at once.
	RateLimitInFlightCaller int
	// RateLimitInFlightAddress is RATE_LIMIT_INFLIGHT_PER_ADDRESS (1..100,000),
	// default 32: /graphql requests in flight at once from one client address,
	// whoever the callers.
	RateLimitInFlightAddress int
	// RateLimitInFlightTotal is RATE_LIMIT_INFLIGHT_TOTAL (1..100,000), default
	// 256: /graphql requests in flight at once from all callers together; over
	// it a request is refused at once with 503 (WebSocket upgrades excepted).
	RateLimitInFlightTotal int
	// GraphQLRequestTimeout is GRAPHQL_REQUEST_TIMEOUT (a Go duration, at most
	// 25s, under the server's 30 s write timeout), default 15s: the deadline of
	// one /graphql request over HTTP (WebSocket upgrades excepted).
	GraphQLRequestTimeout time.Duration
	// IdempotencyTombstoneRetention is IDEMPOTENCY_TOMBSTONE_RETENTION (a Go
	// duration from 168h to 87600h), default 2160h (90 days): how long a retired
	// idempotency key is still refused, counted from its first use.
	IdempotencyTombstoneRetention time.Duration
	// GraphQLMaxComplexity is GRAPHQL_MAX_COMPLEXITY (10..1,000,000), default
	// 5000: the cost limit of one operation (objects 1, scalars 0, a connection
	// first times its selection, first as asked even where it is served as 100).
	GraphQLMaxComplexity int
	// GraphQLMaxDepth is GRAPHQL_MAX_DEPTH (2..100), default 15: how deep one
	// operation may nest fields.
	GraphQLMaxDepth int
	// PersistedDocumentsManifest is PERSISTED_DOCUMENTS_MANIFEST, the path of a
	// persisted-documents manifest (clients/persisted-documents.json: sha256 of
	// each document mapped to its text). Set, callers who are not SUPPORT or ADMIN
	// may run only its documents; empty (the default), any document may run.
	PersistedDocumentsManifest string
	// SMTPURL is SMTP_URL (smtp:// or smtps:// with host and port); required in
	// production. Empty in development means notifications are only logged.
	SMTPURL Secret
	// PlaygroundOIDCClientID is PLAYGROUND_OIDC_CLIENT_ID, the public client the
	// admin Playground signs in with; optional.
	PlaygroundOIDCClientID string
	// DataEncryptionKeys is DATA_ENCRYPTION_KEYS, the keys personal data is sealed
	// with at rest (package sealing; `scoville keys generate` prints one). Required
	// in production, where the public development key set is refused; development
	// without it uses that development set.
	DataEncryptionKeys Secret
	// MigrateOnStart is MIGRATE_ON_START (strconv.ParseBool forms), default true
	// in development and false in production.
	MigrateOnStart bool
	// LogLevel is LOG_LEVEL: debug, info (default), warn or error.
	LogLevel slog.Level
	// ShutdownTimeout is SHUTDOWN_TIMEOUT (> 0), default 20s: how long in-flight
	// requests get to finish on shutdown.
	ShutdownTimeout time.Duration

	// RunWorkers is RUN_WORKERS (strconv.ParseBool forms), default true: whether
	// `scoville` (serve) also works the background queue. False makes a process that
	// only answers (the API and Stripe's deliveries, which it still enqueues), so
	// that workers can run apart (`scoville work`), scaled and prioritised on their
	// own: a burst of deliveries then does not compete with applying them.
	RunWorkers bool

	// WebhookWorkers is WEBHOOK_WORKERS (1..200), default 10: how many Stripe
	// events a process holds at once, read, prepared or waiting for their batch
	// (webhooks.Worker): the more wait, the larger the batches under a burst. The
	// connections they read, prepare and apply events with are bounded apart from
	// this number (docs/scaling.md). More than the default applies a burst sooner
	// but, in a process that also answers Stripe, slows its acknowledgements
	// (docs/performance.md).
	WebhookWorkers int
	// JobWorkers is JOB_WORKERS (1..200), default 20: concurrency of the other
	// background jobs (notifications, maintenance). Each fetch of the queue takes
	// up to the free workers, so more workers fetch a burst's notices in fewer,
	// larger fetches; a job holds a connection only while it runs a statement.
	JobWorkers int
	// JobMaxAttempts is JOB_MAX_ATTEMPTS (1..100), default 12: tries of a job,
	// with River's backoff (attempt^4 s, about 11 h in all), before it is FAILED.
	JobMaxAttempts int
	// JobPollInterval is JOB_POLL_INTERVAL (0 < d <= 10s), default 200ms: how often
	// workers look for new jobs.
	JobPollInterval time.Duration
	// ReconcileInterval is RECONCILE_INTERVAL (1m..24h in production, from 1s
	// outside it, or 0 to turn it off), default 15m: how often the elected leader
	// reconciles with Stripe (OPS-5).
	ReconcileInterval time.Duration
}

// Load reads every variable through getenv (os.Getenv when nil), trims
// whitespace around values (empty means unset), applies defaults and checks
// everything. On any problem it returns a nil Config and all problems joined
// with errors.Join, each naming its variable and none containing a value.
func Load(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	l := &loader{getenv: getenv}
	c := &Config{}

	switch l.get("APP_ENV") {
	case "", string(Development):
		c.Env = Development
	case string(Production):
		c.Env = Production
	default:
		l.failf("APP_ENV", "must be %q or %q", Development, Production)
		// Check the rest with the strict rules: the process will not start
		// anyway, and the operator sees every production problem at once.
		c.Env = Production
	}
	l.prod = c.Env == Production

	c.HTTPAddr = l.listenAddr("HTTP_ADDR", ":8080")

	c.DatabaseURL = l.databaseURL("DATABASE_URL", true)
	c.DatabaseMigrationURL = l.databaseURL("DATABASE_MIGRATION_URL", false)
	maxOpen, openOK := l.intIn("DB_MAX_OPEN_CONNS", 20, 1, 1000)
	c.DBMaxOpenConns = maxOpen
	maxIdle, idleOK := l.intIn("DB_MAX_IDLE_CONNS", maxOpen, 0, 1000)
	if idleOK && openOK && maxIdle > maxOpen {
		l.failf("DB_MAX_IDLE_CONNS", "must not exceed DB_MAX_OPEN_CONNS")
	}
	c.DBMaxIdleConns = maxIdle
	c.DBConnMaxLifetime = l.duration("DB_CONN_MAX_LIFETIME", 30*time.Minute, 0)
	c.DBConnMaxIdleTime = l.duration("DB_CONN_MAX_IDLE_TIME", 5*time.Minute, 0)

	issuerSet := l.required("OIDC_ISSUER_URL", l.get("OIDC_ISSUER_URL"), false)
	c.OIDCIssuerURL = l.httpURL("OIDC_ISSUER_URL")
	c.OIDCAudience = l.get("OIDC_AUDIENCE")
	if l.required("OIDC_AUDIENCE", c.OIDCAudience, false) && strings.ContainsFunc(c.OIDCAudience, isSpace) {
		l.failf("OIDC_AUDIENCE", "must not contain whitespace")
	}
	if c.OIDCAudience == "" && !l.prod && issuerSet {
		// Verifying tokens without an audience would accept tokens minted for
		// any other client of the same issuer.
		l.fail(errors.New("OIDC_AUDIENCE is required when OIDC_ISSUER_URL is set"))
	}
	c.OIDCRolesClaim = l.rolesClaim("OIDC_ROLES_CLAIM", "roles")
	c.StepUpMaxAge = l.duration("STEP_UP_MAX_AGE", 5*time.Minute, 24*time.Hour)
	c.StepUpACR = l.claimValues("STEP_UP_ACR")
	c.StepUpAMR = l.claimValues("STEP_UP_AMR")
	c.OIDCRequireATJWT = l.boolean("OIDC_REQUIRE_AT_JWT", false)

	c.StripeSecretKey = l.stripeSecretKey("STRIPE_SECRET_KEY")
	c.StripeWebhookSecret = l.prefixedSecret("STRIPE_WEBHOOK_SECRET", "whsec_")
	c.StripeAPIBase = strings.TrimRight(l.httpURL("STRIPE_API_BASE"), "/")

	c.AllowedRedirectOrigins = l.origins("ALLOWED_REDIRECT_ORIGINS", false)
	c.CORSAllowedOrigins = l.origins("CORS_ALLOWED_ORIGINS", true)

	c.MetricsAddr = l.listenAddr("METRICS_ADDR", "")
	if c.MetricsAddr != "" && c.HTTPAddr != "" && sameListener(c.MetricsAddr, c.HTTPAddr) {
		l.failf("METRICS_ADDR", "must differ from HTTP_ADDR (leave it empty to serve /metrics on HTTP_ADDR)")
	}
	c.TrustedProxies = l.prefixes("TRUSTED_PROXIES")
	c.WebhookTargetAllowedCIDRs = l.prefixes("WEBHOOK_TARGET_ALLOWED_CIDRS")
	c.Traces = l.traces()
	c.RateLimitAddress, _ = l.intIn("RATE_LIMIT_ADDRESS_PER_MINUTE", 1200, 1, 1_000_000)
	c.RateLimitQueries, _ = l.intIn("RATE_LIMIT_QUERIES_PER_MINUTE", 300, 1, 1_000_000)
	c.RateLimitMutations, _ = l.intIn("RATE_LIMIT_MUTATIONS_PER_MINUTE", 60, 1, 1_000_000)
	c.RateLimitPayments, _ = l.intIn("RATE_LIMIT_PAYMENTS_PER_MINUTE", 10, 1, 1_000_000)
	c.RateLimitWebhooks, _ = l.intIn("RATE_LIMIT_WEBHOOKS_PER_MINUTE", 60000, 1, 1_000_000)
	c.RateLimitExports, _ = l.intIn("RATE_LIMIT_EXPORTS_PER_MINUTE", 5, 1, 1_000_000)
	c.RateLimitInFlightCaller, _ = l.intIn("RATE_LIMIT_INFLIGHT_PER_CALLER", 8, 1, 10_000)
	c.RateLimitInFlightAddress, _ = l.intIn("RATE_LIMIT_INFLIGHT_PER_ADDRESS", 32, 1, 100_000)
	c.RateLimitInFlightTotal, _ = l.intIn("RATE_LIMIT_INFLIGHT_TOTAL", 256, 1, 100_000)
	c.GraphQLRequestTimeout = l.duration("GRAPHQL_REQUEST_TIMEOUT", 15*time.Second, 25*time.Second)
	c.IdempotencyTombstoneRetention = l.duration("IDEMPOTENCY_TOMBSTONE_RETENTION", 90*24*time.Hour, 10*365*24*time.Hour)
	if c.IdempotencyTombstoneRetention < 7*24*time.Hour {
		l.failf("IDEMPOTENCY_TOMBSTONE_RETENTION", "must be at least 168h (7 days)")
	}
	c.GraphQLMaxComplexity, _ = l.intIn("GRAPHQL_MAX_COMPLEXITY", 5000, 10, 1_000_000)
	c.GraphQLMaxDepth, _ = l.intIn("GRAPHQL_MAX_DEPTH", 15, 2, 100)
	c.PersistedDocumentsManifest = l.regularFile("PERSISTED_DOCUMENTS_MANIFEST")
	c.SMTPURL = l.smtpURL("SMTP_URL")
	// Customers must hear of every change (SUB-3): production cannot just log them.
	l.required("SMTP_URL", string(c.SMTPURL), false)
	c.PlaygroundOIDCClientID = l.get("PLAYGROUND_OIDC_CLIENT_ID")
	c.DataEncryptionKeys = l.dataEncryptionKeys("DATA_ENCRYPTION_KEYS")
	c.MigrateOnStart = l.boolean("MIGRATE_ON_START", !l.prod)
	c.StripeAutomaticTax = l.boolean("STRIPE_AUTOMATIC_TAX", false)
	c.ShippingCountries = l.countries("SHIPPING_COUNTRIES", "US")
	c.LogLevel = l.logLevel("LOG_LEVEL")
	c.ShutdownTimeout = l.duration("SHUTDOWN_TIMEOUT", 20*time.Second, 0)
	c.RunWorkers = l.boolean("RUN_WORKERS", true)
	c.WebhookWorkers, _ = l.intIn("WEBHOOK_WORKERS", 10, 1, 200)
	c.JobWorkers, _ = l.intIn("JOB_WORKERS", 20, 1, 200)
	c.JobMaxAttempts, _ = l.intIn("JOB_MAX_ATTEMPTS", 12, 1, 100)
	c.JobPollInterval = l.duration("JOB_POLL_INTERVAL", 200*time.Millisecond, 10*time.Second)
	c.ReconcileInterval = l.reconcileInterval("RECONCILE_INTERVAL")

	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return c, nil
}

// IsProduction reports whether the strict production rules apply, so callers
// (introspection, Playground, dev-only routes) branch on one method.
func (c *Config) IsProduction() bool { return c != nil && c.Env == Production }

// LogValue is a summary safe to log at start: every non-secret setting, and for
// each secret only whether it is set (plus Stripe's test/live mode, read from the
// key's public prefix).
func (c *Config) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	proxies := make([]string, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		proxies[i] = p.String()
	}
	return slog.GroupValue(
		slog.String("env", string(c.Env)),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.Bool("database_url_set", c.DatabaseURL != ""),
		slog.Bool("database_migration_url_set", c.DatabaseMigrationURL != ""),
		slog.Int("db_max_open_conns", c.DBMaxOpenConns),
		slog.Int("db_max_idle_conns", c.DBMaxIdleConns),
		slog.Duration("db_conn_max_lifetime", c.DBConnMaxLifetime),
		slog.Duration("db_conn_max_idle_time", c.DBConnMaxIdleTime),
		slog.String("oidc_issuer_url", c.OIDCIssuerURL),
		slog.String("oidc_audience", c.OIDCAudience),
		slog.String("oidc_roles_claim", c.OIDCRolesClaim),
		slog.Duration("step_up_max_age", c.StepUpMaxAge),
		slog.Any("step_up_acr", c.StepUpACR),
		slog.Any("step_up_amr", c.StepUpAMR),
		slog.Bool("oidc_require_at_jwt", c.OIDCRequireATJWT),
		slog.Bool("stripe_secret_key_set", c.StripeSecretKey != ""),
		slog.String("stripe_mode", stripeMode(c.StripeSecretKey)),
		slog.Bool("stripe_webhook_secret_set", c.StripeWebhookSecret != ""),
		slog.String("stripe_api_base", c.StripeAPIBase),
		slog.Any("allowed_redirect_origins", c.AllowedRedirectOrigins),
		slog.Any("cors_allowed_origins", c.CORSAllowedOrigins),
		slog.Any("trusted_proxies", proxies),
		slog.Int("rate_limit_address_per_minute", c.RateLimitAddress),
		slog.Int("rate_limit_queries_per_minute", c.RateLimitQueries),
		slog.Int("rate_limit_mutations_per_minute", c.RateLimitMutations),
		slog.Int("rate_limit_payments_per_minute", c.RateLimitPayments),
		slog.Int("rate_limit_webhooks_per_minute", c.RateLimitWebhooks),
		slog.Int("rate_limit_exports_per_minute", c.RateLimitExports),
		slog.Int("rate_limit_inflight_per_caller", c.RateLimitInFlightCaller),
		slog.Int("rate_limit_inflight_per_address", c.RateLimitInFlightAddress),
		slog.Int("rate_limit_inflight_total", c.RateLimitInFlightTotal),
		slog.Duration("graphql_request_timeout", c.GraphQLRequestTimeout),
		slog.Duration("idempotency_tombstone_retention", c.IdempotencyTombstoneRetention),
		slog.Int("graphql_max_complexity", c.GraphQLMaxComplexity),
		slog.Int("graphql_max_depth", c.GraphQLMaxDepth),
		slog.String("persisted_documents_manifest", c.PersistedDocumentsManifest),
		slog.Bool("smtp_url_set", c.SMTPURL != ""),
		slog.String("playground_oidc_client_id", c.PlaygroundOIDCClientID),
		slog.Bool("data_encryption_keys_set", c.DataEncryptionKeys != ""),
		slog.Bool("migrate_on_start", c.MigrateOnStart),
		slog.Bool("stripe_automatic_tax", c.StripeAutomaticTax),
		slog.Any("shipping_countries", c.ShippingCountries),
		slog.String("log_level", c.LogLevel.String()),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.Bool("run_workers", c.RunWorkers),
		slog.Int("webhook_workers", c.WebhookWorkers),
		slog.Int("job_workers", c.JobWorkers),
		slog.Int("job_max_attempts", c.JobMaxAttempts),
		slog.Duration("job_poll_interval", c.JobPollInterval),
		slog.Duration("reconcile_interval", c.ReconcileInterval),
	)
}

// Warnings lists settings that are allowed but weaken production, one sentence each
// naming its variable and no value, for the caller to log at start. It is empty in
// development.
func (c *Config) Warnings() []string {
	if !c.IsProduction() {
		return nil
	}
	var out []string
	if len(c.StepUpACR) == 0 && len(c.StepUpAMR) == 0 {
		out = append(out, "STEP_UP_ACR and STEP_UP_AMR are unset: step-up operations need a recent login but no second factor (SUB-2); set the values your identity provider reports for MFA")
	}
	return out
}

// stripeMode tells test from live keys by their public prefix only.
func stripeMode(key Secret) string {
	k := key.Reveal()
	switch {
	case k == "":
		return ""
	case strings.HasPrefix(k, "sk_live_"), strings.HasPrefix(k, "rk_live_"):
		return "live"
	case strings.HasPrefix(k, "sk_test_"), strings.HasPrefix(k, "rk_test_"):
		return "test"
	default:
		return "unknown"
	}
}

// loader reads variables and collects problems. Messages are built only from
// variable names and fixed text, never from values, so no secret can leak
// through an error (url, strconv and netip errors quote their input and are
// therefore never wrapped).
type loader struct {
	getenv func(string) string
	prod   bool
	errs   []error
}

func (l *loader) get(name string) string { return strings.TrimSpace(l.getenv(name)) }

func (l *loader) fail(err error) { l.errs = append(l.errs, err) }

// failf records "NAME: problem". args must be constants or positions, never values.
func (l *loader) failf(name, format string, args ...any) {
	l.fail(errors.New(name + ": " + fmt.Sprintf(format, args...)))
}

// required reports whether name is set, recording a problem when it is not but
// must be (always, or in production).
func (l *loader) required(name, v string, always bool) bool {
	if v != "" {
		return true
	}
	switch {
	case always:
		l.fail(errors.New(name + " is required"))
	case l.prod:
		l.fail(errors.New(name + " is required in production"))
	}
	return false
}

func (l *loader) intIn(name string, def, lo, hi int) (int, bool) {
	v := l.get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		l.failf(name, "not a whole number")
		return def, false
	}
	if n < lo || n > hi {
		l.failf(name, "must be between %d and %d", lo, hi)
		return def, false
	}
	return n, true
}

// duration parses a Go duration that must be positive and, when hi > 0, at most hi.
func (l *loader) duration(name string, def, hi time.Duration) time.Duration {
	v := l.get(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		l.failf(name, "not a Go duration (e.g. %s)", shortDuration(def))
	case d <= 0:
		l.failf(name, "must be greater than 0")
	case hi > 0 && d > hi:
		l.failf(name, "must be at most %s", shortDuration(hi))
	default:
		return d
	}
	return def
}

// reconcileInterval is a duration up to 24h, default 15m, at least 1m in
// production (Stripe's rate limit is the account's) and 1s elsewhere (a test
// cluster, stripe-mock); "0" turns the periodic reconciliation off (another
// deployment runs it, say).
func (l *loader) reconcileInterval(name string) time.Duration {
	if l.get(name) == "0" {
		return 0
	}
	d := l.duration(name, 15*time.Minute, 24*time.Hour)
	switch {
	case l.prod && d < time.Minute:
		l.failf(name, "must be at least 1m in production, or 0 to turn reconciliation off")
		return 15 * time.Minute
	case d < time.Second:
		l.failf(name, "must be at least 1s, or 0 to turn reconciliation off")
		return 15 * time.Minute
	}
	return d
}

// shortDuration prints 5m0s as 5m and 24h0m0s as 24h, for friendlier messages.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (l *loader) boolean(name string, def bool) bool {
	v := l.get(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.failf(name, "not a boolean (use true or false)")
		return def
	}
	return b
}

func (l *loader) logLevel(name string) slog.Level {
	switch strings.ToLower(l.get(name)) {
	case "", "info":
		return slog.LevelInfo
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		l.failf(name, "must be debug, info, warn or error")
		return slog.LevelInfo
	}
}

// maxClaimValues bounds STEP_UP_ACR and STEP_UP_AMR.
const maxClaimValues = 20

// claimValues reads a comma list of acr or amr values. Each value is 1 to 255
// printable ASCII characters without space, comma, quote or backslash, so it can be
// echoed in acr_values and an HTTP auth-param as it is. Empty entries are refused
// (a stray comma is a typo, not a value); duplicates are dropped.
func (l *loader) claimValues(name string) []string {
	v := l.get(name)
	if v == "" {
		return nil
	}
	var out []string
	for i, part := range strings.Split(v, ",") {
		val := strings.TrimSpace(part)
		if val == "" || len(val) > 255 || strings.ContainsFunc(val, func(r rune) bool {
			return r <= ' ' || r >= 0x7f || r == '"' || r == '\\'
		}) {
			l.failf(name, "entry %d must be 1 to 255 printable ASCII characters without spaces, quotes or backslashes", i+1)
			return nil
		}
		if !slices.Contains(out, val) {
			out = append(out, val)
		}
	}
	if len(out) > maxClaimValues {
		l.failf(name, "at most %d values", maxClaimValues)
		return nil
	}
	return out
}

// rolesClaim accepts a claim name or a dotted path of non-empty segments.
func (l *loader) rolesClaim(name, def string) string {
	v := l.get(name)
	if v == "" {
		return def
	}
	for seg := range strings.SplitSeq(v, ".") {
		if seg == "" || strings.ContainsFunc(seg, isSpace) {
			l.failf(name, "must be a claim name or a dotted path such as realm_access.roles")
			return def
		}
	}
	return v
}

func (l *loader) stripeSecretKey(name string) Secret {
	v := l.get(name)
	if !l.required(name, v, false) {
		return ""
	}
	prefixes := []string{"sk_", "rk_"}
	want := "must start with sk_ or rk_"
	if l.prod {
		prefixes = []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_"}
		want = "must start with sk_test_, sk_live_, rk_test_ or rk_live_ in production"
	}
	if strings.HasPrefix(v, "pk_") {
		l.failf(name, "%s (a publishable pk_ key was given)", want)
		return ""
	}
	return l.keyLike(name, v, want, prefixes...)
}

func (l *loader) prefixedSecret(name, prefix string) Secret {
	v := l.get(name)
	if !l.required(name, v, false) {
		return ""
	}
	return l.keyLike(name, v, "must start with "+prefix, prefix)
}

// keyLike is v as a Secret when it starts with one of prefixes, has more after it
// and holds no whitespace; otherwise it fails name, saying want when the prefix is
// wrong.
func (l *loader) keyLike(name, v, want string, prefixes ...string) Secret {
	if !hasPrefixAndMore(v, prefixes...) {
		l.failf(name, "%s", want)
		return ""
	}
	if strings.ContainsFunc(v, isSpace) {
		l.failf(name, "must not contain whitespace")
		return ""
	}
	return Secret(v)
}

// hasPrefixAndMore reports whether s starts with one of prefixes and has
// something after it.
func hasPrefixAndMore(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if len(s) > len(p) && strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}
