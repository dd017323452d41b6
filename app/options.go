package app

import (
	"crypto/x509"
	"time"

	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"

	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks"
)

// Option replaces one part of the application, for tests. Without options New
// builds the real thing from the configuration alone.
type Option func(*options)

// options are the parts the Options replace; the zero value builds the real thing.
type options struct {
	stripeTimeout           time.Duration // per attempt; zero: the gateway's default
	stripeRetryBudget       time.Duration // per call; zero: the gateway's default
	jobRetry                river.ClientRetryPolicy
	rescueStuckAfter        time.Duration
	mailer                  notifications.Mailer
	jobTimeout              time.Duration
	wrapApplier             func(webhooks.Applier) webhooks.Applier
	wrapSubscriptionGateway func(subscriptions.Gateway) subscriptions.Gateway
	wrapAdminGateway        func(subscriptions.AdminGateway) subscriptions.AdminGateway
	now                     func() time.Time
	beforeEraseLookup       func()
	webhookRootCAs          *x509.CertPool
	live                    LiveLimits
	tracerProvider          trace.TracerProvider
}

// LiveLimits are the live-update bounds and timings; a zero field keeps the default
// (graph.DefaultLive*, live.Default*).
type LiveLimits struct {
	InitTimeout, PingInterval, ReconnectDelay          time.Duration
	ReadLimit                                          int64
	MaxSocketsPerPrincipal, MaxSocketsPerAddress       int
	MaxOperationsPerPrincipal, MaxOperationsPerAddress int
}

// WithLiveLimits replaces the live-update bounds and timings.
func WithLiveLimits(l LiveLimits) Option {
	return func(o *options) { o.live = l }
}

// WithStripeTimeouts bounds each attempt at Stripe by perAttempt and each call,
// retries included, by budget; zero keeps the gateway's default for either.
func WithStripeTimeouts(perAttempt, budget time.Duration) Option {
	return func(o *options) { o.stripeTimeout, o.stripeRetryBudget = perAttempt, budget }
}

// WithJobRetryPolicy makes the queue retry failed jobs on p's schedule instead of
// River's default back-off.
func WithJobRetryPolicy(p river.ClientRetryPolicy) Option {
	return func(o *options) { o.jobRetry = p }
}

// WithRescueStuckJobsAfter makes the queue rescue a job left running after d (a
// worker that died), and sets the lease of long jobs (jobs.Leased) to match.
func WithRescueStuckJobsAfter(d time.Duration) Option {
	return func(o *options) { o.rescueStuckAfter = d }
}

// WithJobTimeout bounds every job by d instead of jobs' default timeout.
func WithJobTimeout(d time.Duration) Option {
	return func(o *options) { o.jobTimeout = d }
}

// WithMailer sends customers' notifications through m instead of SMTP_URL's mailer
// or the log.
func WithMailer(m notifications.Mailer) Option {
	return func(o *options) { o.mailer = m }
}

// WithApplierWrapper wraps the applier of webhook events, to inject faults such as
// a crash in the middle of applying.
func WithApplierWrapper(wrap func(webhooks.Applier) webhooks.Applier) Option {
	return func(o *options) { o.wrapApplier = wrap }
}

// WithSubscriptionGatewayWrapper wraps the gateway of the customers' subscription
// mutations, to act between Stripe's answer and its store.
func WithSubscriptionGatewayWrapper(wrap func(subscriptions.Gateway) subscriptions.Gateway) Option {
	return func(o *options) { o.wrapSubscriptionGateway = wrap }
}

// WithAdminGatewayWrapper wraps the gateway of the staff actions, to crash between
// Stripe's answer and its store.
func WithAdminGatewayWrapper(wrap func(subscriptions.AdminGateway) subscriptions.AdminGateway) Option {
	return func(o *options) { o.wrapAdminGateway = wrap }
}

// WithClock is the subscription service's clock for time-bound input, and the
// outgoing webhooks' clock (a rotated secret's 24 hours, the signing time); nil
// keeps the wall clock.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithBeforeEraseLookup runs hook inside each erasure, just before it looks up the
// customer's events, to interleave another write at that point.
func WithBeforeEraseLookup(hook func()) Option {
	return func(o *options) { o.beforeEraseLookup = hook }
}

// WithWebhookRootCAs makes outgoing webhook deliveries trust the certificates pool
// verifies (a test receiver's), instead of the system's.
func WithWebhookRootCAs(pool *x509.CertPool) Option {
	return func(o *options) { o.webhookRootCAs = pool }
}

// WithTracerProvider records traces on tp (a test's in-memory exporter) instead of
// the provider the OTEL_* variables describe.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracerProvider = tp }
}
