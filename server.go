// Command scoville is the Scoville API server. With no argument it serves; the
// subcommands run one-off work with the same configuration:
//
//	scoville            serve the API (GraphQL, probes, metrics) and, unless
//	                    RUN_WORKERS=false, work the background queue
//	scoville work       work the background queue only (no API; metrics on METRICS_ADDR)
//	scoville migrate    apply pending database migrations, then exit
//	scoville seed       load the development catalog (refused in production)
//	scoville devidp     run the development OpenID Connect issuer (refused in production)
//	scoville keys ...   make, rotate and apply DATA_ENCRYPTION_KEYS (scoville keys help)
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/catalog"
	"github.com/scoville/scoville/clientip"
	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/graph"
	"github.com/scoville/scoville/httpserver"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/logging"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/playground"
	"github.com/scoville/scoville/privacy"
	"github.com/scoville/scoville/ratelimit"
	"github.com/scoville/scoville/resolvers"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks"
)

// maxGraphQLBody bounds a GraphQL request; larger bodies are refused before parsing.
const maxGraphQLBody = graph.MaxBodyBytes

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stderr *os.File) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	if cmd == "devidp" {
		return runDevIDP(ctx, getenv, stderr)
	}
	if cmd == "keys" {
		return runKeys(ctx, args[1:], getenv, os.Stdin, os.Stdout, stderr)
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprintln(stderr, "usage: scoville [serve|work|migrate|seed|devidp|keys]")
		return 0
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "scoville: refusing to start: invalid configuration:\n%v\n", err)
		return 2
	}
	logger := logging.New(stderr, cfg.LogLevel)

	switch cmd {
	case "serve":
		err = serve(ctx, cfg, logger)
	case "work":
		err = work(ctx, cfg, logger)
	case "migrate":
		err = migrate(ctx, cfg, logger)
	case "seed":
		err = seed(ctx, cfg, logger)
	default:
		fmt.Fprintf(stderr, "scoville: unknown command %q; usage: scoville [serve|work|migrate|seed|devidp|keys]\n", cmd)
		return 2
	}
	if err != nil {
		logger.ErrorContext(ctx, "scoville: "+cmd+" failed", "error", err.Error())
		return 1
	}
	return 0
}

func openDB(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*gorm.DB, error) {
	return database.Open(ctx, cfg.DatabaseURL.Reveal(), database.Pool{
		MaxOpenConns:    cfg.DBMaxOpenConns,
		MaxIdleConns:    cfg.DBMaxIdleConns,
		ConnMaxLifetime: cfg.DBConnMaxLifetime,
		ConnMaxIdleTime: cfg.DBConnMaxIdleTime,
	}, logger)
}

func migrate(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	db, err := openDB(ctx, cfg, logger)
	if err != nil {
		return err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	return migrateSchema(ctx, cfg, sqlDB, logger)
}

// migrateSchema applies pending migrations as the schema's owner
// (DATABASE_MIGRATION_URL, else DATABASE_URL's role, runtime) and, when the two
// roles differ, grants runtime's role what the server needs and nothing more.
func migrateSchema(ctx context.Context, cfg *config.Config, runtime *sql.DB, logger *slog.Logger) error {
	if cfg.DatabaseMigrationURL == "" {
		return database.Migrate(ctx, runtime, logger)
	}
	owner, err := database.OpenOwner(ctx, cfg.DatabaseMigrationURL.Reveal())
	if err != nil {
		return err
	}
	defer owner.Close()
	if err := database.Migrate(ctx, owner, logger); err != nil {
		return err
	}
	role, err := database.CurrentRole(ctx, runtime)
	if err != nil {
		return err
	}
	ownerRole, err := database.CurrentRole(ctx, owner)
	if err != nil {
		return err
	}
	if role == ownerRole {
		return nil
	}
	return database.GrantRuntime(ctx, owner, role)
}

func seed(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	if cfg.IsProduction() {
		return errors.New("seed loads demo data and is refused when APP_ENV=production")
	}
	db, err := openDB(ctx, cfg, logger)
	if err != nil {
		return err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	var provider catalog.Provider
	if cfg.StripeSecretKey != "" {
		gw, err := newGateway(cfg, logger, overrides{}, nil)
		if err != nil {
			return err
		}
		provider = gw
	}
	if err := catalog.NewService(db, provider, nil).SeedDevelopment(ctx); err != nil {
		return err
	}
	logger.InfoContext(ctx, "development catalog loaded")
	return nil
}

// serve runs the API until ctx ends, then drains in-flight requests.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	logger.InfoContext(ctx, "starting", "config", cfg)
	for _, w := range cfg.Warnings() {
		logger.WarnContext(ctx, w)
	}
	a, err := newApp(ctx, cfg, logger, overrides{})
	if err != nil {
		return err
	}
	defer a.Close()
	if cfg.RunWorkers {
		if err := a.Start(ctx); err != nil {
			return err
		}
	} else {
		logger.InfoContext(ctx, "RUN_WORKERS=false: jobs are enqueued here and worked by `scoville work`")
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR: %w", err)
	}
	errc := make(chan error, 2)
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen on METRICS_ADDR: %w", err)
		}
		msrv := httpserver.NewServer(cfg.MetricsAddr, a.metrics, logger)
		go func() { errc <- httpserver.Serve(ctx, msrv, mln, cfg.ShutdownTimeout) }()
		logger.InfoContext(ctx, "metrics listening", "addr", mln.Addr().String())
	} else if cfg.IsProduction() {
		logger.WarnContext(ctx, "METRICS_ADDR is not set: /metrics is not served (production serves it only on METRICS_ADDR)")
	} else {
		logger.InfoContext(ctx, "METRICS_ADDR is not set: /metrics is served on HTTP_ADDR (development only)")
	}
	srv := httpserver.NewServer(cfg.HTTPAddr, a.handler, logger)
	logger.InfoContext(ctx, "listening", "addr", ln.Addr().String(), "env", string(cfg.Env))
	err = httpserver.Serve(ctx, srv, ln, cfg.ShutdownTimeout)
	logger.InfoContext(context.Background(), "stopped")
	return err
}

// work runs the background queue without the API until ctx ends, then lets running
// jobs finish (a job cut short is retried). It pairs with servers started with
// RUN_WORKERS=false; any number of either may share one database.
func work(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	logger.InfoContext(ctx, "starting workers", "config", cfg)
	a, err := newApp(ctx, cfg, logger, overrides{})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Start(ctx); err != nil {
		return err
	}
	if cfg.MetricsAddr == "" {
		logger.InfoContext(ctx, "working the queue (METRICS_ADDR is not set: no metrics listener)")
		<-ctx.Done()
		return nil
	}
	mln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on METRICS_ADDR: %w", err)
	}
	logger.InfoContext(ctx, "working the queue; metrics listening", "addr", mln.Addr().String())
	return httpserver.Serve(ctx, httpserver.NewServer(cfg.MetricsAddr, a.metrics, logger), mln, cfg.ShutdownTimeout)
}

// app is the product wired once: every part built from the configuration.
type app struct {
	handler http.Handler // all public routes
	metrics http.Handler // /metrics; outside production also mounted on handler when METRICS_ADDR is empty
	db      *gorm.DB
	jobs    *jobs.Client // works the queue once Start is called
	inbox   *webhooks.Handler
	started bool
	grace   time.Duration

	// reconciler compares with Stripe (OPS-5); the periodic job runs it.
	reconciler *subscriptions.Reconciler

	// registry holds every metric; tests check the alerting rules against it.
	registry *prometheus.Registry
}

// Start runs the background workers (webhook events, notifications, maintenance).
func (a *app) Start(ctx context.Context) error {
	if err := a.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	a.started = true
	return nil
}

// Close stops the workers (a job cut short is retried later, nothing is lost), then
// releases the database pool.
func (a *app) Close() {
	if a.inbox != nil {
		a.inbox.Close() // deliveries still queued are written (or answered 503) first
	}
	if a.jobs != nil && a.started {
		_ = jobs.Stop(a.jobs, a.grace)
	}
	if sqlDB, err := a.db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}

// overrides replace parts for tests; the zero value builds the real thing.
type overrides struct {
	stripeTimeout     time.Duration // per attempt; zero: the gateway's default
	stripeRetryBudget time.Duration // per call; zero: the gateway's default
	jobRetry          river.ClientRetryPolicy
	rescueStuckAfter  time.Duration
	mailer            notifications.Mailer
	jobTimeout        time.Duration
	// wrapApplier wraps the event applier, to inject faults such as a crash.
	wrapApplier func(webhooks.Applier) webhooks.Applier
	// wrapSubscriptionGateway wraps the customer mutations' gateway, to act between
	// Stripe's answer and its store.
	wrapSubscriptionGateway func(subscriptions.Gateway) subscriptions.Gateway
	// wrapAdminGateway wraps the staff actions' gateway, to crash between Stripe's
	// answer and its store.
	wrapAdminGateway func(subscriptions.AdminGateway) subscriptions.AdminGateway
	// now is the subscription service's clock for time-bound input; nil: the wall clock.
	now func() time.Time
	// beforeEraseLookup runs inside an erasure before it looks up the events.
	beforeEraseLookup func()
}

// newApp builds every part once and wires them: the one place that knows them all.
func newApp(ctx context.Context, cfg *config.Config, logger *slog.Logger, o overrides) (*app, error) {
	db, err := openDB(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	a := &app{db: db}
	if _, err := installDataKeys(db, cfg, logger); err != nil {
		a.Close()
		return nil, err
	}
	if cfg.MigrateOnStart {
		sqlDB, err := db.DB()
		if err == nil {
			err = migrateSchema(ctx, cfg, sqlDB, logger)
		}
		if err != nil {
			a.Close()
			return nil, err
		}
	}
	if cfg.IsProduction() && cfg.DatabaseMigrationURL == "" {
		logger.WarnContext(ctx, "DATABASE_MIGRATION_URL is unset, so the server runs as the role that owns the schema: "+
			"with the server's credentials anyone can alter, disable the triggers of, empty or drop any table, the audit log included. "+
			"Set DATABASE_MIGRATION_URL to the owner and DATABASE_URL to a role that owns nothing (docs/security.md)")
	}

	verifier, err := auth.NewVerifier(ctx, auth.Config{
		IssuerURL:    cfg.OIDCIssuerURL,
		Audience:     cfg.OIDCAudience,
		RolesClaim:   cfg.OIDCRolesClaim,
		RequireATJWT: cfg.OIDCRequireATJWT,
	})
	if err != nil {
		a.Close()
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	httpMetrics := httpserver.NewMetrics(reg)
	tokenFailures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scoville_auth_token_failures_total", Help: "Access tokens refused, by reason.",
	}, []string{"reason"})
	reg.MustRegister(tokenFailures)
	a.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	a.registry = reg

	gw, err := newGateway(cfg, logger, o, gateway.NewMetrics(reg))
	if err != nil {
		a.Close()
		return nil, err
	}
	idem := idempotency.NewStore(db)
	customerSvc := customers.NewService(db)

	// Two River clients on one pool: the inserter is built first, so the services
	// that enqueue exist before the workers that need them are registered.
	queue, err := jobs.NewInserter(db, cfg.JobMaxAttempts, logger)
	if err != nil {
		a.Close()
		return nil, err
	}
	mailer, err := newMailer(cfg, logger, o)
	if err != nil {
		a.Close()
		return nil, err
	}
	syncer := subscriptions.NewSyncer(db, gw, queue, subscriptions.NewSyncMetrics(reg), logger)
	webhookMetrics := webhooks.NewMetrics(reg, db)
	workers := river.NewWorkers()
	var applier webhooks.Applier = syncer
	if o.wrapApplier != nil {
		applier = o.wrapApplier(applier)
	}
	eventWorker := webhooks.NewWorker(db, applier, webhookMetrics, logger)
	river.AddWorker(workers, eventWorker)
	enqueueWorker := webhooks.NewEnqueueWorker(db, queue, webhookMetrics)
	river.AddWorker(workers, enqueueWorker)
	river.AddWorker(workers, notifications.NewSendWorker(db, mailer, logger))
	river.AddWorker(workers, idempotency.NewPurgeWorker(idem, logger))
	a.reconciler = subscriptions.NewReconciler(db, syncer, gw, reg, logger)
	sqlDB, err := db.DB()
	if err != nil {
		a.Close()
		return nil, err
	}
	// A run pages through Stripe for minutes: it renews its claim instead of
	// holding the client's short job timeout (jobs.Leased).
	river.AddWorker(workers, jobs.Leased(subscriptions.NewReconcileWorker(a.reconciler, logger), sqlDB, o.rescueStuckAfter))
	privacySvc := privacy.New(db, gw, idem, queue, logger)
	if o.beforeEraseLookup != nil {
		privacySvc.BeforeEraseLookup(o.beforeEraseLookup)
	}
	river.AddWorker(workers, privacy.NewScrubWorker(privacySvc))
	periodic := []*river.PeriodicJob{idempotency.PurgeJob(time.Hour)}
	if cfg.ReconcileInterval > 0 {
		periodic = append(periodic, subscriptions.ReconcileJob(cfg.ReconcileInterval))
	}
	a.grace = cfg.ShutdownTimeout
	a.jobs, err = jobs.NewClient(db, workers, jobs.Config{
		WebhookWorkers: cfg.WebhookWorkers, DefaultWorkers: cfg.JobWorkers,
		PollInterval: cfg.JobPollInterval, MaxAttempts: cfg.JobMaxAttempts,
		RetryPolicy: o.jobRetry, RescueStuckJobsAfter: o.rescueStuckAfter, JobTimeout: o.jobTimeout,
		Periodic: periodic,
	}, logger)
	if err != nil {
		a.Close()
		return nil, err
	}

	var subGateway subscriptions.Gateway = gw
	if o.wrapSubscriptionGateway != nil {
		subGateway = o.wrapSubscriptionGateway(subGateway)
	}
	var adminGateway subscriptions.AdminGateway = gw
	if o.wrapAdminGateway != nil {
		adminGateway = o.wrapAdminGateway(adminGateway)
	}
	root := &resolvers.Resolver{
		Catalog:   catalog.NewService(db, gw, idem),
		Customers: customerSvc,
		Subscriptions: subscriptions.NewService(db, subGateway, syncer, customerSvc, idem, subscriptions.Config{
			RedirectOrigins:   cfg.AllowedRedirectOrigins,
			AutomaticTax:      cfg.StripeAutomaticTax,
			ShippingCountries: cfg.ShippingCountries,
		}, logger, subscriptions.WithClock(o.now)),
		Inbox: webhooks.NewEvents(db),
		Audit: audit.NewLog(db),
		Admin: subscriptions.NewAdmin(db, adminGateway, syncer, idem, queue, logger),

		Syncer:   syncer,
		Replayer: webhooks.NewReplayer(db, queue, logger),
		Privacy:  privacySvc,
	}
	limiter := ratelimit.New(ratelimit.Config{
		Address:           ratelimit.PerMinute(cfg.RateLimitAddress),
		Query:             ratelimit.PerMinute(cfg.RateLimitQueries),
		Mutation:          ratelimit.PerMinute(cfg.RateLimitMutations),
		Payment:           ratelimit.PerMinute(cfg.RateLimitPayments),
		Webhook:           ratelimit.PerMinute(cfg.RateLimitWebhooks),
		Export:            ratelimit.PerMinute(cfg.RateLimitExports),
		InFlightPerCaller: cfg.RateLimitInFlightCaller, InFlightPerAddress: cfg.RateLimitInFlightAddress,
	}, reg)
	gql := graph.NewHandler(graph.HandlerConfig{
		Resolvers:     root,
		MaxComplexity: cfg.GraphQLMaxComplexity,
		MaxDepth:      cfg.GraphQLMaxDepth,
		StepUpMaxAge:  cfg.StepUpMaxAge,
		StepUpACR:     cfg.StepUpACR,
		StepUpAMR:     cfg.StepUpAMR,
		Introspection: !cfg.IsProduction(),
		Logger:        logger,
		OnForbidden:   audit.NewRefusals(db, logger, reg).Record,
		Extensions:    []graphql.HandlerExtension{graph.NewMetrics(reg), limiter.GraphQL()},
	})
	authenticate := auth.Middleware(verifier, logger, func(reason string) { tokenFailures.WithLabelValues(reason).Inc() })

	mux := http.NewServeMux()
	// The client address is resolved for every route (below), before these.
	mux.Handle("/graphql", httpserver.Observe("graphql", logger, httpMetrics, httpserver.CORS(cfg.CORSAllowedOrigins,
		limitBody(maxGraphQLBody, limiter.PerAddress(ratelimit.ScopeAddress, authenticate(limiter.InFlight(root.Loaders(gql))))))))
	a.inbox = webhooks.NewHandler(db, queue, cfg.StripeWebhookSecret.Reveal(), webhookMetrics, logger)
	eventWorker.YieldTo(a.inbox)
	enqueueWorker.YieldTo(a.inbox)
	mux.Handle("POST /webhooks/stripe", httpserver.Observe("webhooks", logger, httpMetrics,
		limiter.PerAddress(ratelimit.ScopeWebhook, a.inbox)))
	mux.Handle("GET /healthz", httpserver.Observe("healthz", logger, httpMetrics, httpserver.Healthz()))
	mux.Handle("GET /readyz", httpserver.Observe("readyz", logger, httpMetrics,
		httpserver.Readyz(func(ctx context.Context) error { return database.Ping(ctx, db) }, logger)))
	if cfg.MetricsAddr == "" && !cfg.IsProduction() {
		// Production never shows operational detail on the public listener.
		mux.Handle("GET /metrics", a.metrics)
	}
	// The admin GraphQL IDE, in every environment: embedded assets, a strict policy,
	// sign-in through the OIDC issuer (PLAYGROUND_OIDC_CLIENT_ID).
	ide, err := playground.New(playground.Config{
		Endpoint: "/graphql", IssuerURL: cfg.OIDCIssuerURL,
		ClientID: cfg.PlaygroundOIDCClientID, Production: cfg.IsProduction(),
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	ideRoute := httpserver.Observe("playground", logger, httpMetrics, ide)
	mux.Handle("GET /playground", ideRoute)
	mux.Handle("GET /playground/", ideRoute)
	a.handler = httpserver.RequestID(clientip.Resolver{Trusted: cfg.TrustedProxies}.Middleware(httpserver.SecurityHeaders(mux)))
	return a, nil
}

// newGateway builds the Stripe adapter from the configuration; metrics may be nil.
func newGateway(cfg *config.Config, logger *slog.Logger, o overrides, metrics *gateway.Metrics) (*gateway.Stripe, error) {
	key := cfg.StripeSecretKey.Reveal()
	if key == "" {
		// Development without a key: calls fail at the provider, as they would with a
		// revoked key; production refuses to start without one (config).
		key = "sk_test_unset"
	}
	return gateway.NewStripe(gateway.Config{
		SecretKey: key, APIBase: cfg.StripeAPIBase, Logger: logger,
		Timeout: o.stripeTimeout, RetryBudget: o.stripeRetryBudget, Metrics: metrics,
	})
}

// newMailer picks how customers are told of changes: SMTP when SMTP_URL is set, else
// (development only; production requires SMTP_URL) a log line per message.
func newMailer(cfg *config.Config, logger *slog.Logger, o overrides) (notifications.Mailer, error) {
	switch {
	case o.mailer != nil:
		return o.mailer, nil
	case cfg.SMTPURL != "":
		return notifications.NewSMTP(cfg.SMTPURL.Reveal())
	}
	return &notifications.LogMailer{Logger: logger}, nil
}

// limitBody refuses bodies over n bytes with 413 before any parsing.
func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			graph.WriteRequestError(w, http.StatusRequestEntityTooLarge, models.CodeBodyTooLarge,
				fmt.Sprintf("request body too large: the limit is %d bytes", n))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

// shutdownGrace is how long the development issuer waits for in-flight requests.
const shutdownGrace = 5 * time.Second
