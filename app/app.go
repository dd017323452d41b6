// Package app is Scoville's composition root: New builds every part once from the
// configuration and wires them; Serve, Work, Migrate and Seed run the subcommands
// over it. Only the command (the repository root) and the end-to-end tests (e2e)
// import it (archtest checks).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
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
	"github.com/scoville/scoville/live"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/outbox"
	"github.com/scoville/scoville/playground"
	"github.com/scoville/scoville/privacy"
	"github.com/scoville/scoville/ratelimit"
	"github.com/scoville/scoville/requestscope"
	"github.com/scoville/scoville/resolvers"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/tracing"
	"github.com/scoville/scoville/webhooks"
)

// maxGraphQLBody bounds a GraphQL request; larger bodies are refused before parsing.
const maxGraphQLBody = graph.MaxBodyBytes

// App is the product wired once: every part built from the configuration. Its
// routes answer as soon as New returns; the background workers run after Start.
type App struct {
	handler    http.Handler // all public routes
	metrics    http.Handler // /metrics; outside production also mounted on handler when METRICS_ADDR is empty
	db         *gorm.DB
	jobs       *jobs.Client // works the queue once Start is called
	reconciler *subscriptions.Reconciler
	registry   *prometheus.Registry

	mu      sync.Mutex
	started bool
	closers []func() // run in reverse by Close
}

// onClose adds f to what Close undoes; the last added runs first.
func (a *App) onClose(f func()) { a.closers = append(a.closers, f) }

// New builds every part once and wires them: the one place that knows them all. On
// error everything already built is released, and nothing is left running.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts ...Option) (_ *App, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	a := &App{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	// Traces: nil when no OTLP endpoint is set, and then nothing is instrumented.
	// Closed last, so that the spans of the workers' last jobs are flushed.
	tp := o.tracerProvider
	if tp == nil && cfg.Traces {
		sdk, err := tracing.FromEnv(ctx, logger)
		if err != nil {
			return nil, err
		}
		tp = sdk
		a.onClose(func() {
			if err := tracing.Shutdown(sdk, 5*time.Second); err != nil {
				logger.Warn("traces not flushed at exit", "error", err)
			}
		})
	}
	var riverMiddleware []rivertype.Middleware
	if tp != nil {
		riverMiddleware = append(riverMiddleware, tracing.NewRiver(tp))
	}

	db, err := openDB(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if tp != nil {
		if err := db.Use(tracing.SQL{}); err != nil {
			return nil, err
		}
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	a.db = db
	a.onClose(func() { _ = sqlDB.Close() })
	if _, err := InstallDataKeys(db, cfg, logger); err != nil {
		return nil, err
	}
	if cfg.MigrateOnStart {
		if err := migrateSchema(ctx, cfg, sqlDB, logger); err != nil {
			return nil, err
		}
	}
	if cfg.IsProduction() {
		if owns, err := ownsTables(ctx, db); err != nil {
			return nil, err
		} else if owns {
			logger.WarnContext(ctx, "the server's database role (DATABASE_URL) owns tables of the schema, or can act as their owner (a superuser, a member of the owning role): "+
				"with the server's credentials anyone can alter, disable the triggers of, empty or drop any table, the audit log included. "+
				"Set DATABASE_MIGRATION_URL to the owner and DATABASE_URL to a role that owns nothing (docs/security.md)")
		}
	}

	verifier, err := auth.NewVerifier(ctx, auth.Config{
		IssuerURL:    cfg.OIDCIssuerURL,
		Audience:     cfg.OIDCAudience,
		RolesClaim:   cfg.OIDCRolesClaim,
		RequireATJWT: cfg.OIDCRequireATJWT,
	})
	if err != nil {
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
		return nil, err
	}
	idem := idempotency.NewStore(db).WithTombstoneRetention(cfg.IdempotencyTombstoneRetention)
	customerSvc := customers.NewService(db)

	// Two River clients on one pool: the inserter, which the services that enqueue
	// and the workers take in their constructors, and the client that works the queue.
	queue, err := jobs.NewInserter(db, cfg.JobMaxAttempts, logger, riverMiddleware...)
	if err != nil {
		return nil, err
	}
	mailer, err := newMailer(cfg, logger, o)
	if err != nil {
		return nil, err
	}
	syncer := subscriptions.NewSyncer(db, gw, queue, subscriptions.NewSyncMetrics(reg), logger)
	webhookMetrics := webhooks.NewMetrics(reg, db)
	// Close stops the workers (a job cut short is retried later, nothing is lost)
	// after the route below has written its queued deliveries (or answered 503).
	grace := cfg.ShutdownTimeout
	a.onClose(func() {
		a.mu.Lock()
		started := a.started
		a.mu.Unlock()
		if started {
			_ = jobs.Stop(a.jobs, grace)
		}
	})
	// The route is built before the workers, which take it to yield to it.
	inbox := webhooks.NewHandler(db, queue, cfg.StripeWebhookSecret.Reveal(), webhookMetrics, logger)
	a.onClose(inbox.Close)
	workers := river.NewWorkers()
	var applier webhooks.Applier = syncer
	if o.wrapApplier != nil {
		applier = o.wrapApplier(applier)
	}
	eventWorker := webhooks.NewWorker(db, applier, webhookMetrics, logger, inbox).RetryWith(o.jobRetry)
	river.AddWorker(workers, eventWorker)
	// A stored batch's job applies its events itself: a job per event only for
	// those it could not apply.
	river.AddWorker(workers, webhooks.NewEnqueueWorker(db, queue, webhookMetrics, inbox).ApplyWith(eventWorker))
	river.AddWorker(workers, notifications.NewSendWorker(db, mailer, logger))
	river.AddWorker(workers, idempotency.NewPurgeWorker(idem, logger))
	a.reconciler = subscriptions.NewReconciler(db, syncer, gw, reg, logger)
	// A run pages through Stripe for minutes: it renews its claim instead of
	// holding the client's short job timeout (jobs.Leased).
	river.AddWorker(workers, jobs.Leased(subscriptions.NewReconcileWorker(a.reconciler, logger), sqlDB, o.rescueStuckAfter))
	privacySvc := privacy.New(db, gw, idem, queue, logger)
	if o.beforeEraseLookup != nil {
		privacySvc.BeforeEraseLookup(o.beforeEraseLookup)
	}
	river.AddWorker(workers, privacy.NewScrubWorker(privacySvc))
	// Outgoing webhooks: an attempt may take AttemptTimeout, longer than the
	// client's job timeout, so it renews its claim (jobs.Leased).
	outbox.RegisterMetrics(reg, db)
	webhookTargets := outbox.Targets{Production: cfg.IsProduction(), Allowed: cfg.WebhookTargetAllowedCIDRs, RootCAs: o.webhookRootCAs}
	river.AddWorker(workers, jobs.Leased(outbox.NewDeliverWorker(db, webhookTargets, o.now, logger), sqlDB, o.rescueStuckAfter))
	periodic := []*river.PeriodicJob{idempotency.PurgeJob(time.Hour)}
	if cfg.ReconcileInterval > 0 {
		periodic = append(periodic, subscriptions.ReconcileJob(cfg.ReconcileInterval))
	}
	a.jobs, err = jobs.NewClient(db, workers, jobs.Config{
		WebhookWorkers: cfg.WebhookWorkers, DefaultWorkers: cfg.JobWorkers,
		PollInterval: cfg.JobPollInterval, MaxAttempts: cfg.JobMaxAttempts,
		RetryPolicy: o.jobRetry, RescueStuckJobsAfter: o.rescueStuckAfter, JobTimeout: o.jobTimeout,
		Periodic: periodic, Middleware: riverMiddleware,
	}, logger)
	if err != nil {
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
		Outbox:   outbox.NewService(db, idem, webhookTargets, o.now),
	}
	limiter := ratelimit.New(ratelimit.Config{
		Address:           ratelimit.PerMinute(cfg.RateLimitAddress),
		Query:             ratelimit.PerMinute(cfg.RateLimitQueries),
		Mutation:          ratelimit.PerMinute(cfg.RateLimitMutations),
		Payment:           ratelimit.PerMinute(cfg.RateLimitPayments),
		Webhook:           ratelimit.PerMinute(cfg.RateLimitWebhooks),
		Export:            ratelimit.PerMinute(cfg.RateLimitExports),
		InFlightPerCaller: cfg.RateLimitInFlightCaller, InFlightPerAddress: cfg.RateLimitInFlightAddress,
		Shared:        sqlDB, // mutation and payment allowances hold across replicas
		InFlightTotal: cfg.RateLimitInFlightTotal,
	}, reg)
	liveUpdates := live.NewHub(live.Config{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			cc, err := pgx.ParseConfig(cfg.DatabaseURL.Reveal())
			if err != nil {
				return nil, err
			}
			cc.RuntimeParams["application_name"] = live.ApplicationName
			return pgx.ConnectConfig(ctx, cc)
		},
		ReconnectDelay:         o.live.ReconnectDelay,
		MaxSocketsPerPrincipal: o.live.MaxSocketsPerPrincipal, MaxSocketsPerAddress: o.live.MaxSocketsPerAddress,
		MaxOperationsPerPrincipal: o.live.MaxOperationsPerPrincipal, MaxOperationsPerAddress: o.live.MaxOperationsPerAddress,
		Metrics: live.NewMetrics(reg), Logger: logger,
	})
	a.onClose(liveUpdates.Close)
	root.Updates = liveUpdates
	var persisted *graph.PersistedDocuments
	if cfg.PersistedDocumentsManifest != "" {
		if persisted, err = graph.LoadPersistedDocuments(cfg.PersistedDocumentsManifest); err != nil {
			return nil, err
		}
		logger.Info("persisted-documents mode: customers and anonymous callers run only the manifest's documents", "documents", persisted.Len())
	}
	extensions := []graphql.HandlerExtension{graph.NewMetrics(reg), limiter.GraphQL()}
	if tp != nil {
		extensions = append([]graphql.HandlerExtension{tracing.NewGraphQL(tp)}, extensions...)
	}
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
		Extensions:    extensions,
		Live: &graph.LiveConfig{
			Hub: liveUpdates, Verifier: verifier, AllowedOrigins: cfg.CORSAllowedOrigins, Address: ratelimit.AddressKey,
			InitTimeout: o.live.InitTimeout, PingInterval: o.live.PingInterval, ReadLimit: o.live.ReadLimit,
			OnTokenFailure: func(reason string) { tokenFailures.WithLabelValues(reason).Inc() },
		},
		APQCaller:          ratelimit.CallerKey,
		PersistedDocuments: persisted,
	})
	authenticate := auth.Middleware(verifier, logger, func(reason string) { tokenFailures.WithLabelValues(reason).Inc() })

	mux := http.NewServeMux()
	mux.Handle("/graphql", graphqlRoute(graphqlParts{
		logger: logger, metrics: httpMetrics, origins: cfg.CORSAllowedOrigins, timeout: cfg.GraphQLRequestTimeout,
		limiter: limiter, authenticate: authenticate, loaders: root.Loaders, gql: gql,
	}))
	var webhookRoute http.Handler = limiter.PerAddress(ratelimit.ScopeWebhook, inbox)
	if tp != nil {
		webhookRoute = tracing.Handler(tp, "POST /webhooks/stripe", webhookRoute)
	}
	mux.Handle("POST /webhooks/stripe", httpserver.Observe("webhooks", logger, httpMetrics, webhookRoute))
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
		ClientID: cfg.PlaygroundOIDCClientID, Production: cfg.IsProduction(), Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	ideRoute := httpserver.Observe("playground", logger, httpMetrics, ide)
	mux.Handle("GET /playground", ideRoute)
	mux.Handle("GET /playground/", ideRoute)
	a.handler = publicHandler(cfg.TrustedProxies, mux)
	return a, nil
}

// errClosed refuses Start after Close.
var errClosed = errors.New("app: Start after Close")

// Start runs the background workers (webhook events, notifications, maintenance).
// Close stops them.
func (a *App) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closers == nil {
		return errClosed
	}
	if a.started {
		return nil
	}
	if err := a.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	a.started = true
	return nil
}

// Close releases everything New built, in the reverse order: the webhook route's
// queued deliveries are written, then the workers stop (a job cut short is retried
// later, nothing is lost), then the database pool closes. A second Close does nothing.
func (a *App) Close() {
	a.mu.Lock()
	closers := a.closers
	a.closers = nil
	a.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
}

// Handler serves every public route: /graphql, /webhooks/stripe, the probes, the
// Playground and, outside production when METRICS_ADDR is empty, /metrics.
func (a *App) Handler() http.Handler { return a.handler }

// MetricsHandler serves /metrics from Registry.
func (a *App) MetricsHandler() http.Handler { return a.metrics }

// Registry holds every metric the application exposes.
func (a *App) Registry() *prometheus.Registry { return a.registry }

// DB is the application's database pool (the server's role); Close closes it.
func (a *App) DB() *gorm.DB { return a.db }

// Jobs is the client that works the queue once Start is called; it also inserts.
func (a *App) Jobs() *jobs.Client { return a.jobs }

// Reconciler compares the stored subscriptions with Stripe (OPS-5); the periodic
// job runs it.
func (a *App) Reconciler() *subscriptions.Reconciler { return a.reconciler }

// newGateway builds the Stripe adapter from the configuration; metrics may be nil.
func newGateway(cfg *config.Config, logger *slog.Logger, o options, metrics *gateway.Metrics) (*gateway.Stripe, error) {
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
func newMailer(cfg *config.Config, logger *slog.Logger, o options) (notifications.Mailer, error) {
	switch {
	case o.mailer != nil:
		return o.mailer, nil
	case cfg.SMTPURL != "":
		return notifications.NewSMTP(cfg.SMTPURL.Reveal())
	}
	return &notifications.LogMailer{Logger: logger}, nil
}

// graphqlParts are what the /graphql route is built from.
type graphqlParts struct {
	logger       *slog.Logger
	metrics      *httpserver.Metrics
	origins      []string
	timeout      time.Duration
	limiter      *ratelimit.Limiter
	authenticate func(http.Handler) http.Handler
	loaders      func(http.Handler) http.Handler
	gql          http.Handler
}

// graphqlRoute is the /graphql route below the mux. The client address is resolved
// for every route (publicHandler), before these. A request gets its deadline and the
// global bound first; the bound is held until the handler's work ends, even past the
// deadline.
func graphqlRoute(p graphqlParts) http.Handler {
	requests := httpserver.Observe("graphql", p.logger, p.metrics, httpserver.CORS(p.origins,
		httpserver.Deadline(p.timeout, p.limiter.Busy(
			limitBody(maxGraphQLBody, p.limiter.PerAddress(ratelimit.ScopeAddress, p.authenticate(p.limiter.InFlight(p.loaders(p.gql)))))))))
	// A WebSocket upgrade (live updates) has no body, no bearer header (its token
	// comes in connection_init), holds no in-flight slot (a socket is not a request)
	// and gets no request loaders (a socket would serve their cache for its whole
	// life); its own bounds apply (graph.LiveConfig). Keep request deadlines off it.
	sockets := httpserver.Observe("graphql_live", p.logger, p.metrics, p.limiter.PerAddress(ratelimit.ScopeAddress, p.gql))
	return graph.SplitUpgrades(httpserver.WebSocketUpgrade, sockets, requests)
}

// publicHandler wraps every public route: one scope for the request's values
// (requestscope), a request id, the client address, the security headers.
func publicHandler(trusted []netip.Prefix, mux http.Handler) http.Handler {
	return requestscope.Middleware(httpserver.RequestID(clientip.Resolver{Trusted: trusted}.Middleware(httpserver.SecurityHeaders(mux))))
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

// ownsTables reports whether the role the server connects as owns a table of its
// schema or can act as its owner (a superuser, a member of the owning role: either
// may alter or drop it). A replica given only DATABASE_URL, as a careful rollout
// runs it, cannot.
func ownsTables(ctx context.Context, db *gorm.DB) (bool, error) {
	var owns bool
	err := db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND pg_catalog.pg_has_role(c.relowner, 'MEMBER'))`).Scan(&owns).Error
	return owns, err
}
