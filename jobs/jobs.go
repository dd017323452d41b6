// Package jobs owns the durable background queue: River on the same PostgreSQL
// database, driven through database/sql so that a job is enqueued, and completed, in
// the very gorm transaction whose effect it belongs to. A job can therefore never
// exist without its cause, nor a committed effect without its job being done.
package jobs

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"
)

// Queues. Webhook events get their own so that a flood of them never delays a
// customer's e-mail, and the other way round.
const (
	QueueDefault  = river.QueueDefault
	QueueWebhooks = "webhooks"
	// QueueOutbox carries outgoing webhook deliveries (package outbox), so that a
	// slow receiver never delays the Stripe inbox or an e-mail.
	QueueOutbox = "outbox"
)

// Client is the River client every part of the product shares.
type Client = river.Client[*sql.Tx]

// Driver is the River driver type, for River's generic helpers such as
// river.JobCompleteTx[*jobs.Driver].
type Driver = riverdatabasesql.Driver

// DefaultMaxAttempts is how often a job is tried before it is discarded. Working and
// inserting clients must agree on it (NewInserter stamps it on each job).
const DefaultMaxAttempts = 12

// Config sets the queue's knobs; zero values take the defaults.
type Config struct {
	WebhookWorkers int           // concurrency of QueueWebhooks; default 100
	DefaultWorkers int           // concurrency of QueueDefault; default 20
	OutboxWorkers  int           // concurrency of QueueOutbox; default 10
	PollInterval   time.Duration // how often to look for new jobs; default 200ms
	MaxAttempts    int           // tries before a job is discarded; default 12
	// RetryPolicy decides the wait before a retry; nil is River's attempt^4 s. A job
	// rescued from a dead process is retried at once whatever the policy says.
	RetryPolicy river.ClientRetryPolicy
	// RescueStuckJobsAfter is when a running job whose process died counts as stuck
	// and is handed to another; default RescueAfter. It must exceed JobTimeout.
	RescueStuckJobsAfter time.Duration
	// JobTimeout bounds one attempt of a worker that sets no Timeout of its own;
	// default Timeout. A longer job is wrapped in Leased instead.
	JobTimeout time.Duration
	// Periodic jobs, such as maintenance, started by the elected leader only.
	Periodic []*river.PeriodicJob
	// Middleware runs around every insert and every job worked (tracing).
	Middleware []rivertype.Middleware
}

// Recovery after a process dies. River hands a job that is still `running` to
// another process once it was attempted more than RescueStuckJobsAfter ago; its
// rescuer looks every 30 s (fixed in River) and runs only on the elected leader,
// whose lease outlives a dead leader by at most 15 s. So a job of a dead process is
// available again within RescueAfter + 30 s + the scheduler's 5 s, under a minute.
//
// No live attempt may be rescued, or it would run twice at once: every attempt is
// therefore bounded well below RescueAfter (Timeout, with room for a worker that
// returns a little after its context ends), and a job that needs longer renews its
// claim while it runs (Leased).
const (
	// RescueAfter is the default RescueStuckJobsAfter.
	RescueAfter = 15 * time.Second
	// Timeout is the default bound of one attempt.
	Timeout = 10 * time.Second
)

// NewClient builds a client that inserts and works jobs. The database/sql driver has
// no LISTEN support, so workers poll at PollInterval; that is what lets a worker
// complete its job inside its own gorm transaction (river.JobCompleteTx).
func NewClient(db *gorm.DB, workers *river.Workers, cfg Config, logger *slog.Logger) (*Client, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	poll := cfg.PollInterval
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	rescue := cmp.Or(cfg.RescueStuckJobsAfter, RescueAfter)
	timeout := cmp.Or(cfg.JobTimeout, Timeout)
	if timeout >= rescue {
		return nil, fmt.Errorf("jobs: JobTimeout (%s) must be shorter than RescueStuckJobsAfter (%s), or a slow job would be run twice at once", timeout, rescue)
	}
	retry := cfg.RetryPolicy
	if retry == nil {
		retry = &river.DefaultClientRetryPolicy{}
	}
	c, err := river.NewClient(riverdatabasesql.New(sqlDB), &river.Config{
		Queues: map[string]river.QueueConfig{
			QueueDefault:  {MaxWorkers: orDefault(cfg.DefaultWorkers, 20)},
			QueueWebhooks: {MaxWorkers: orDefault(cfg.WebhookWorkers, 100)},
			QueueOutbox:   {MaxWorkers: orDefault(cfg.OutboxWorkers, 10)},
		},
		Workers:           workers,
		FetchPollInterval: poll,
		// A producer fetches at most as many jobs as it has free workers, then waits
		// this long before fetching again: it bounds a busy queue's throughput at
		// workers per cooldown, so a long cooldown leaves the CPU idle under load.
		FetchCooldown:        min(poll, 10*time.Millisecond),
		MaxAttempts:          orDefault(cfg.MaxAttempts, DefaultMaxAttempts),
		RetryPolicy:          rescuedAtOnce{next: retry, rescueAfter: rescue},
		RescueStuckJobsAfter: rescue,
		JobTimeout:           timeout,
		PeriodicJobs:         cfg.Periodic,
		Middleware:           cfg.Middleware,
		Logger:               quiet(logger),
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return c, nil
}

// NewInserter builds a client that only enqueues: for commands and tools that must
// add work without running it. maxAttempts is stamped on each job it inserts (zero:
// the default), so it must agree with the working client's. middleware runs around
// every insert.
func NewInserter(db *gorm.DB, maxAttempts int, logger *slog.Logger, middleware ...rivertype.Middleware) (*Client, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	c, err := river.NewClient(riverdatabasesql.New(sqlDB), &river.Config{MaxAttempts: orDefault(maxAttempts, DefaultMaxAttempts), Middleware: middleware, Logger: quiet(logger)})
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return c, nil
}

// ErrNotInTransaction is returned by SQLTx for a handle outside a transaction:
// enqueueing there would break the promise that a job exists exactly when its cause
// was committed.
var ErrNotInTransaction = errors.New("jobs: not inside a database transaction")

// SQLTx returns the database/sql transaction under a gorm transaction handle, which
// is what River's InsertTx and JobCompleteTx take.
func SQLTx(tx *gorm.DB) (*sql.Tx, error) {
	if sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx); ok {
		return sqlTx, nil
	}
	return nil, ErrNotInTransaction
}

// Stop stops fetching, waits up to grace for running jobs, then cancels them; a
// cancelled job is retried later, so nothing is lost.
func Stop(c *Client, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := c.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		hard, cancelHard := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelHard()
		return c.StopAndCancel(hard)
	}
	return err
}

// rescuedAtOnce retries a rescued job now: its attempt did not fail, its process
// died, so the backoff meant for failures (attempt^4 s: 81 s at the third) would
// only delay it. River's rescuer asks the policy too; a job it passes has not been
// attempted for rescueAfter, which no attempt that ends by itself reaches (Timeout
// bounds ordinary jobs; a Leased job decides its own retry).
type rescuedAtOnce struct {
	next        river.ClientRetryPolicy
	rescueAfter time.Duration
}

func (p rescuedAtOnce) NextRetry(job *rivertype.JobRow) time.Time {
	if job.AttemptedAt != nil && time.Since(*job.AttemptedAt) >= p.rescueAfter {
		return time.Now()
	}
	return p.next.NextRetry(job)
}

func orDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// quiet passes River's own log lines on at warning level and above: its info lines
// (every fetch, every elected leader) would drown the product's. A maintenance
// service's line whose error is a cancelled context is River being stopped, not
// failing (its rescuer says nothing then; its periodic enqueuer, stopped within its
// first second as leader, logs "Error starting transaction": nothing is lost, the
// next leader schedules the periodic jobs again; its job scheduler, stopped inside
// its transaction, finds the transaction gone, as database/sql rolls back a
// transaction whose context is cancelled), so it is demoted to info: below the
// floor. A job's own errors keep their level.
func quiet(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(levelFloor{Handler: logger.Handler(), floor: slog.LevelWarn})
}

type levelFloor struct {
	slog.Handler
	floor slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.floor && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && strings.HasPrefix(r.Message, "maintenance.") && cancelledContext(r) {
		r = r.Clone()
		r.Level = slog.LevelInfo
	}
	if r.Level < h.floor || !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// cancelledContext is whether the record's error is a cancelled context, or the
// transaction database/sql rolled back when its context was cancelled.
func cancelledContext(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if v := a.Value.String(); (a.Key == "error" || a.Key == "err") && (v == context.Canceled.Error() || v == sql.ErrTxDone.Error()) {
			found = true
			return false
		}
		return true
	})
	return found
}

func (h levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{Handler: h.Handler.WithAttrs(as), floor: h.floor}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{Handler: h.Handler.WithGroup(name), floor: h.floor}
}
