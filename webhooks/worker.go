package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"

	"github.com/scoville/scoville/eventindex"
	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
)

// ProcessArgs is the job that applies one stored event.
type ProcessArgs struct {
	EventID string `json:"eventId"`
	// Replay marks a run support asked for (replayWebhookEvent); its outcome says so.
	Replay bool `json:"replay,omitempty"`
	// Tried is how many attempts the batch job that stored the event made on it
	// before giving it this job (EnqueueWorker.ApplyWith), whose MaxAttempts was
	// lowered by as many: the event's attempts count both.
	Tried int `json:"tried,omitempty"`
}

// attempt is the event's attempt that job is making.
func attempt(job *river.Job[ProcessArgs]) int { return job.Attempt + job.Args.Tried }

// Kind names the job in River.
func (ProcessArgs) Kind() string { return "webhook_event_process" }

// InsertOpts puts event jobs on their own queue.
func (ProcessArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: jobs.QueueWebhooks} }

// Applier is the business side of an event: reads from the provider first (Prepare),
// then the effect inside the transaction that marks the event done (Apply).
type Applier interface {
	Prepare(ctx context.Context, ev subscriptions.Event) (*subscriptions.Prepared, error)
	Apply(ctx context.Context, tx *gorm.DB, ev subscriptions.Event, p *subscriptions.Prepared) (subscriptions.Effect, error)
}

// Worker applies stored events. The effect, the event's new status and the job's
// completion commit in one transaction, so a crash anywhere either loses the whole
// attempt (and the job is retried) or none of it: each event applies exactly once.
// Events prepared at about the same time share that transaction, each in a
// savepoint of its own (apply.go); one that fails is rolled back alone.
type Worker struct {
	river.WorkerDefaults[ProcessArgs]
	db      *gorm.DB
	applier Applier
	metrics *Metrics
	logger  *slog.Logger
	intake  saturation    // nil: never yield
	queue   applyQueue    // prepared events waiting for their batch (apply.go)
	reads   chan struct{} // a slot per event read at once (applyReaders)
	prep    chan struct{} // a slot per event prepared at once (applyPreparers)
	// batchTimeout bounds a batch's transaction; zero is applyTimeout. Tests that
	// hold a batch on purpose lengthen it.
	batchTimeout time.Duration
	retry        river.ClientRetryPolicy // nil: River's default (RetryWith)
}

// RetryWith gives w the River client's retry policy (nil: River's default), so
// that an event whose first attempts its batch job made (ProcessArgs.Tried) waits
// the backoff of the event's attempts, not of its job's. It returns w.
func (w *Worker) RetryWith(p river.ClientRetryPolicy) *Worker {
	w.retry = p
	return w
}

// NextRetry is the client's backoff for the event's attempt that failed: its job's
// attempts come after the ones its batch job made. A job with none is left to the
// client's policy.
func (w *Worker) NextRetry(job *river.Job[ProcessArgs]) time.Time {
	if job.Args.Tried == 0 {
		return time.Time{}
	}
	return w.retryAfter(job.JobRow, attempt(job))
}

// retryAfter is the policy's time for the next attempt of a job like row whose
// attempt failed, as if every attempt before it had failed too (the default
// policy counts the errors).
func (w *Worker) retryAfter(row *rivertype.JobRow, attempt int) time.Time {
	r := *row
	r.Attempt, r.Errors = attempt, make([]rivertype.AttemptError, max(attempt-1, 0))
	p := w.retry
	if p == nil {
		p = &river.DefaultClientRetryPolicy{}
	}
	return p.NextRetry(&r)
}

// saturation is the route, as a worker sees it (Handler.Saturated).
type saturation interface {
	Saturated(window time.Duration) bool
}

// Yielding: acknowledging comes first. Stripe times out slow answers and counts
// them as failures, while applying may wait, so while the route of this process is
// saturated a worker holds its next event back, each preparation waits, and a
// committer holds its next batch, each wait a slice at a time and never more than
// yieldMax, leaving the CPU and the database to the acknowledgements. Outside
// bursts a route is not saturated and nothing waits.
const (
	yieldWindow = 10 * time.Millisecond
	yieldMax    = 2 * time.Second
)

// yield waits while intake is saturated, at most yieldMax.
func yield(ctx context.Context, intake saturation) {
	if intake == nil {
		return
	}
	deadline := time.Now().Add(yieldMax)
	for intake.Saturated(yieldWindow) && time.Now().Before(deadline) {
		t := time.NewTimer(yieldWindow)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// NewWorker builds the worker. It holds back while intake, the route of the same
// process, is saturated; a nil intake (a process without the route) never waits.
func NewWorker(db *gorm.DB, applier Applier, metrics *Metrics, logger *slog.Logger, intake *Handler) *Worker {
	w := &Worker{db: db, applier: applier, metrics: metrics, logger: logger, reads: make(chan struct{}, applyReaders),
		prep: make(chan struct{}, applyPreparers)}
	if intake != nil {
		w.intake = intake
	}
	return w
}

// errDone ends the transaction of an event that another run already finished.
var errDone = errors.New("webhooks: event already done")

// payload is the part of a stored event the appliers need.
type payload struct {
	Data struct {
		Object             json.RawMessage `json:"object"`
		PreviousAttributes json.RawMessage `json:"previous_attributes"`
	} `json:"data"`
	Request struct {
		IdempotencyKey *string `json:"idempotency_key"`
	} `json:"request"`
}

// Work applies the event once. A failed attempt is retried with River's backoff;
// after the last one the event is FAILED, with its error, for support to replay. A
// panic of the applier is such a failure too: the event never stays RECEIVED with no
// job left to apply it.
func (w *Worker) Work(ctx context.Context, job *river.Job[ProcessArgs]) error {
	yield(ctx, w.intake)
	for range maxRereads {
		if err := w.work(ctx, job); !errors.Is(err, errRewritten) {
			return err
		}
	}
	return w.work(ctx, job)
}

// errRewritten ends an attempt whose event was rewritten (scrubbed by an erasure)
// between reading it and locking it: applied from the copy read first, it would
// put the erased person's data back. The event is read again. Any update of the
// row in between counts as a rewrite (the row's version changed), so a harmless one
// costs a second read, never a stale apply.
var errRewritten = errors.New("webhooks: event rewritten while being applied")

// versionedEvent is a stored event with the version of its row (PostgreSQL's xmin,
// as text), which changes with every update of the row.
type versionedEvent struct {
	models.WebhookEvent
	RowVersion string `gorm:"column:row_version;->"`
}

// TableName is the events' table: the sealed payload opens only for its own row.
func (versionedEvent) TableName() string { return eventsTable }

// maxRereads bounds how often one attempt reads a rewritten event again; an event
// is rewritten once per erasure, so one reread is normally the last.
const maxRereads = 3

func (w *Worker) work(ctx context.Context, job *river.Job[ProcessArgs]) (err error) {
	start := time.Now()
	var row models.WebhookEvent
	defer func() {
		if r := recover(); r != nil {
			err = w.failed(ctx, job, &row, fmt.Errorf("panic while applying: %v", r))
		}
	}()
	// The row's version (xmin: every update writes a new one) comes with it, so the
	// lock below can tell whether the event was rewritten since without reading and
	// opening the payload again.
	var read versionedEvent
	err = w.read(ctx, &read, job.Args.EventID)
	row = read.WebhookEvent
	if errors.Is(err, gorm.ErrRecordNotFound) {
		w.logger.WarnContext(ctx, "webhook job for an event that does not exist", "webhook_event_id", job.Args.EventID)
		return nil
	}
	if err != nil {
		return w.failed(ctx, job, &row, err)
	}
	if row.Status != models.WebhookReceived {
		return nil // processed, ignored or failed already; a replay re-arms it first
	}
	ev, subjects, err := eventOf(&row)
	if err != nil {
		return w.failed(ctx, job, &row, err)
	}
	prepared, err := w.prepare(ctx, ev)
	if err != nil {
		return w.failed(ctx, job, &row, err)
	}
	res := w.apply(&applyItem{ctx: ctx, job: job, row: &row, version: read.RowVersion, ev: ev,
		subjects: subjects, prepared: prepared, key: orderingKey(subjects)})
	effect, err := res.effect, res.err
	if errors.Is(err, errDone) {
		return nil
	}
	if errors.Is(err, errRewritten) {
		return err
	}
	if err != nil {
		return w.failed(ctx, job, &row, err)
	}
	w.recordApplied(ctx, &row, effect, attempt(job), job.Args.Replay, start)
	return nil
}

// recordApplied counts and logs an event applied by an attempt begun at start.
func (w *Worker) recordApplied(ctx context.Context, row *models.WebhookEvent, effect subscriptions.Effect, attempt int, replay bool, start time.Time) {
	outcome := "processed"
	if effect.Ignored {
		outcome = "ignored"
	}
	w.metrics.processed.WithLabelValues(typeLabel(row.Type), outcome).Inc()
	w.metrics.duration.WithLabelValues(typeLabel(row.Type)).Observe(time.Since(start).Seconds())
	w.metrics.lag.Observe(time.Since(row.ReceivedAt).Seconds())
	w.logger.InfoContext(ctx, "webhook applied", "event_id", row.ProviderEventID, "event_type", row.Type, "outcome", outcome,
		"attempt", attempt, "replay", replay, "duration_ms", time.Since(start).Milliseconds())
}

// eventOf is the stored event as the appliers see it, and whom it is about (for a
// customer's export and erasure, package eventindex; recorded with the effect, so
// an applied event is always indexed). A payload that does not parse is
// subscriptions.ErrMalformed.
func eventOf(row *models.WebhookEvent) (subscriptions.Event, []eventindex.Subject, error) {
	var body payload
	if err := json.Unmarshal(row.Payload, &body); err != nil {
		return subscriptions.Event{}, nil, fmt.Errorf("%w: payload: %v", subscriptions.ErrMalformed, err)
	}
	ev := subscriptions.Event{
		ID: row.ID, ProviderEventID: row.ProviderEventID, Type: row.Type, Created: row.EventCreated, Seq: row.Seq,
		Object: body.Data.Object, PreviousAttributes: body.Data.PreviousAttributes,
	}
	if body.Request.IdempotencyKey != nil {
		ev.RequestKey = *body.Request.IdempotencyKey
	}
	return ev, eventindex.FromObject(body.Data.Object), nil
}

// read reads the event and its row's version, one of at most applyReaders reads
// of this process at once: the connections the workers hold are then bounded by
// applyReaders and not by their number, which a burst wants large.
func (w *Worker) read(ctx context.Context, into *versionedEvent, id string) error {
	return w.withRead(ctx, func() error {
		return w.db.WithContext(ctx).Select("*, xmin::text AS row_version").Take(into, "id = ?", id).Error
	})
}

// withRead runs fn in one of the applyReaders read slots of this process.
func (w *Worker) withRead(ctx context.Context, fn func() error) error {
	select {
	case w.reads <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.reads }()
	return fn()
}

// prepare is the applier's Prepare, one of at most applyPreparers of this process
// at once, so what it looks up or reads from Stripe is bounded apart from the
// number of workers.
func (w *Worker) prepare(ctx context.Context, ev subscriptions.Event) (*subscriptions.Prepared, error) {
	// A batch job prepares many events after its one yield: each waits here too,
	// before taking a slot, so the waits of one batch run side by side and a slot
	// is never held while the route is saturated.
	yield(ctx, w.intake)
	select {
	case w.prep <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-w.prep }()
	return w.applier.Prepare(ctx, ev)
}

// completeInTx marks the job done in the effect's transaction. Outside a River
// worker (a test calling Work directly) there is no client to do it with, and
// River completes the job after Work returns as usual.
func completeInTx[T river.JobArgs](ctx context.Context, tx *gorm.DB, job *river.Job[T]) error {
	if _, err := river.ClientFromContextSafely[*sql.Tx](ctx); err != nil {
		return nil
	}
	sqlTx, err := jobs.SQLTx(tx)
	if err != nil {
		return err
	}
	_, err = river.JobCompleteTx[*jobs.Driver](ctx, sqlTx, job)
	return err
}

// failed records a failed attempt on the event and hands the error to River for a
// retry; after the last attempt the event is FAILED. A malformed event cannot get
// better, so it fails at once.
func (w *Worker) failed(ctx context.Context, job *river.Job[ProcessArgs], row *models.WebhookEvent, cause error) error {
	final := job.Attempt >= job.MaxAttempts || errors.Is(cause, subscriptions.ErrMalformed)
	updates := map[string]any{"attempts": attempt(job), "last_error": truncate(cause.Error(), 2000)}
	outcome := "retry"
	if final {
		updates["status"] = models.WebhookFailed
		outcome = "failed"
	}
	// The attempt's own context may be what ended; the record must still be written.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.db.WithContext(rctx).Model(&models.WebhookEvent{}).
		Where("id = ? AND status = ?", job.Args.EventID, models.WebhookReceived).Updates(updates).Error; err != nil {
		w.logger.ErrorContext(ctx, "could not record a failed webhook attempt", "webhook_event_id", job.Args.EventID, "error", err.Error())
	}
	w.metrics.processed.WithLabelValues(typeLabel(row.Type), outcome).Inc()
	level := slog.LevelWarn
	if final {
		level = slog.LevelError
	}
	w.logger.Log(ctx, level, "webhook attempt failed", "event_id", row.ProviderEventID, "event_type", row.Type,
		"attempt", attempt(job), "max_attempts", job.MaxAttempts+job.Args.Tried, "final", final, "error", cause.Error())
	if final && errors.Is(cause, subscriptions.ErrMalformed) {
		return river.JobCancel(cause)
	}
	return cause
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a character boundary: PostgreSQL refuses invalid UTF-8, and the row
	// recording the failure would not be written.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
