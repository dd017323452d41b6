package webhooks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/tracing"
)

// EnqueueArgs is the one job a batch of new events is stored with; it gives each
// event its own ProcessArgs job later. A job row per event, written while Stripe
// waits for the answer, was about half of PostgreSQL's work on the route.
type EnqueueArgs struct {
	EventIDs []string `json:"eventIds"` // webhook_events.id
	// Causes is, when traces are on, the traceparent of the request that stored
	// each event, by id: its event job's span links to it (package tracing).
	Causes map[string]string `json:"causes,omitempty"`
}

// Kind names the job in River.
func (EnqueueArgs) Kind() string { return "webhook_events_enqueue" }

// InsertOpts puts it on the events' queue.
func (EnqueueArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: jobs.QueueWebhooks} }

// EnqueueWorker hands out a batch's event jobs. They commit with the batch job's
// completion, so each event gets its job exactly once; a second run, were there one,
// would only add jobs that find their event done. Like applying, it waits while the
// route is saturated.
//
// Built with ApplyWith, it first applies the batch's events itself and hands out
// jobs only for those it could not apply.
type EnqueueWorker struct {
	river.WorkerDefaults[EnqueueArgs]
	db      *gorm.DB
	queue   *jobs.Client
	metrics *Metrics
	intake  saturation // nil: never yield
	applier *Worker    // nil: every event gets its job
}

// NewEnqueueWorker builds the worker; queue inserts the event jobs, and events it
// leaves FAILED count in metrics as the event worker's failures do. It holds back
// while intake, the route of the same process, is saturated; a nil intake never
// waits.
func NewEnqueueWorker(db *gorm.DB, queue *jobs.Client, metrics *Metrics, intake *Handler) *EnqueueWorker {
	w := &EnqueueWorker{db: db, queue: queue, metrics: metrics}
	if intake != nil {
		w.intake = intake
	}
	return w
}

// ApplyWith makes the worker apply the batch's events itself, through applier's
// batches, bounds and rules (apply.go), instead of giving each a job to be
// fetched, run and completed on its own. An event is applied exactly once all the
// same: its batch locks it and applies it only while it is RECEIVED and not
// rewritten, so a second run of the batch job (a retry, a rescue after a crash)
// finds it done. An event it could not apply (an error, a panic, a rewrite under
// it, the attempt's end before its turn) gets its ProcessArgs job as before, with
// River's retries, FAILED after the last attempt, and replay. It returns w.
func (w *EnqueueWorker) ApplyWith(applier *Worker) *EnqueueWorker {
	w.applier = applier
	return w
}

// Work inserts one ProcessArgs job per event of the batch (with ApplyWith, per
// event it could not apply), and completes the batch job with them. After the last attempt
// the events still waiting are FAILED with the error, so that support sees them
// and can replay them.
func (w *EnqueueWorker) Work(ctx context.Context, job *river.Job[EnqueueArgs]) error {
	yield(ctx, w.intake)
	err := w.enqueue(ctx, job)
	if err == nil || job.Attempt < job.MaxAttempts {
		return err
	}
	// The attempt's own context may be what ended; the record must still be written.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var failed []string // their types
	ferr := w.db.WithContext(rctx).Raw(`UPDATE webhook_events SET status = ?, last_error = ?
		WHERE id IN ? AND status = ? RETURNING type`,
		models.WebhookFailed, truncate("not queued: "+err.Error(), 2000), job.Args.EventIDs, models.WebhookReceived).
		Scan(&failed).Error
	if ferr != nil {
		return errors.Join(err, ferr)
	}
	for _, t := range failed {
		w.metrics.processed.WithLabelValues(typeLabel(t), "failed").Inc()
	}
	return err
}

func (w *EnqueueWorker) enqueue(ctx context.Context, job *river.Job[EnqueueArgs]) error {
	var left []leftEvent
	if w.applier == nil {
		left = make([]leftEvent, len(job.Args.EventIDs))
		for i, id := range job.Args.EventIDs {
			left[i].id = id
		}
	} else {
		left = w.applier.applyStored(ctx, job)
		// The events left are handed out even when the attempt's context ended
		// while the others were applied: that is when most are left.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	params := make([]river.InsertManyParams, 0, len(left))
	for _, l := range left {
		if l.final {
			continue
		}
		args := ProcessArgs{EventID: l.id}
		var opts river.InsertOpts
		if cause := job.Args.Causes[l.id]; cause != "" {
			opts.Metadata = tracing.CauseMetadata(cause)
		}
		if l.err != nil {
			// This attempt was one of the event's: its job makes the rest, the
			// first after this attempt's backoff (Worker.NextRetry the others').
			args.Tried, opts.MaxAttempts = job.Attempt, max(job.MaxAttempts-job.Attempt, 1)
			opts.ScheduledAt = w.applier.retryAfter(job.JobRow, job.Attempt)
		}
		p := river.InsertManyParams{Args: args}
		if opts.Metadata != nil || opts.MaxAttempts != 0 || !opts.ScheduledAt.IsZero() {
			p.InsertOpts = &opts
		}
		params = append(params, p)
	}
	err := w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		sqlTx, err := jobs.SQLTx(tx)
		if err != nil {
			return err
		}
		for _, l := range left {
			if l.err == nil {
				continue
			}
			// As the event's own attempt records its failure (Worker.failed).
			updates := map[string]any{"attempts": job.Attempt, "last_error": truncate(l.err.Error(), 2000)}
			if l.final {
				updates["status"] = models.WebhookFailed
			}
			if err := tx.Model(&models.WebhookEvent{}).Where("id = ? AND status = ?", l.id, models.WebhookReceived).
				Updates(updates).Error; err != nil {
				return err
			}
		}
		if len(params) > 0 {
			n, err := w.queue.InsertManyFastTx(ctx, sqlTx, params)
			if err != nil {
				return err
			}
			if n != len(params) {
				return fmt.Errorf("webhooks: %d jobs inserted for %d events", n, len(params))
			}
		}
		return completeInTx(ctx, tx, job)
	})
	if err != nil {
		return err // nothing recorded: Work fails what the last attempt leaves
	}
	// Counted once recorded, as an event's own attempt counts it.
	for _, l := range left {
		if l.err == nil {
			continue
		}
		outcome := "retry"
		if l.final {
			outcome = "failed"
		}
		w.metrics.processed.WithLabelValues(typeLabel(l.typ), outcome).Inc()
	}
	return nil
}

// leftEvent is an event of a batch job that the job did not apply: it gets a job
// of its own.
type leftEvent struct {
	id  string
	typ string // the event's type, for the metrics
	err error  // why this attempt failed it; nil when it was not tried (not read, malformed, rewritten)
	// final: that was the event's last attempt; it is FAILED instead of given a job.
	final bool
}

// applyStored applies the RECEIVED events of a batch job in this worker's batches
// and returns those left for a job of their own. Their rows are read in one
// statement; each is prepared as Work prepares it, within the same bounds.
func (w *Worker) applyStored(ctx context.Context, job *river.Job[EnqueueArgs]) (left []leftEvent) {
	start := time.Now()
	var rows []versionedEvent
	if err := w.readAll(ctx, &rows, job.Args.EventIDs); err != nil {
		w.logger.WarnContext(ctx, "webhook events not read; each gets its own job", "events", len(job.Args.EventIDs), "error", err.Error())
		for _, id := range job.Args.EventIDs {
			left = append(left, leftEvent{id: id})
		}
		return left
	}
	byID := make(map[string]*versionedEvent, len(rows))
	for i := range rows {
		byID[rows[i].ID] = &rows[i]
	}
	items := make([]*applyItem, 0, len(rows))
	seen := make(map[string]bool, len(job.Args.EventIDs))
	for _, id := range job.Args.EventIDs {
		if seen[id] {
			continue // named twice: tried once, one job at most
		}
		seen[id] = true
		r, ok := byID[id]
		switch {
		case !ok:
			w.logger.WarnContext(ctx, "webhook batch job for an event that does not exist", "webhook_event_id", id)
			continue
		case r.Status != models.WebhookReceived:
			continue // applied by an earlier run, or replayed since
		}
		ev, subjects, err := eventOf(&r.WebhookEvent)
		if err != nil {
			left = append(left, leftEvent{id: id}) // its own job fails it
			continue
		}
		ectx, end := eventSpan(ctx, job.Args.Causes[id], id)
		defer end()
		items = append(items, &applyItem{ctx: ectx, attempt: job.Attempt, row: &r.WebhookEvent, version: r.RowVersion,
			ev: ev, subjects: subjects, key: orderingKey(subjects)})
	}
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() { it.prepared, errs[i] = w.prepareSafely(it.ctx, it.ev) })
	}
	wg.Wait()
	ready := make([]*applyItem, 0, len(items))
	for i, it := range items {
		if errs[i] != nil {
			left = append(left, w.handOut(it, errs[i], job.MaxAttempts))
			continue
		}
		ready = append(ready, it)
	}
	// In seq order, as the route numbered them: the applyAll queue keeps it, so
	// the events of one key go batch after batch in that order however the job
	// lists them.
	slices.SortStableFunc(ready, func(a, b *applyItem) int { return cmp.Compare(a.ev.Seq, b.ev.Seq) })
	for i, res := range w.applyAll(ctx, ready) {
		it := ready[i]
		switch {
		case res.err == nil:
			w.recordApplied(it.ctx, it.row, res.effect, job.Attempt, false, start)
		case errors.Is(res.err, errDone):
		default:
			left = append(left, w.handOut(it, res.err, job.MaxAttempts))
		}
	}
	return left
}

// readAll reads the events and their rows' versions in one statement, one read
// slot of this process (applyReaders).
func (w *Worker) readAll(ctx context.Context, into *[]versionedEvent, ids []string) error {
	return w.withRead(ctx, func() error {
		return w.db.WithContext(ctx).Select("*, xmin::text AS row_version").Where("id IN ?", ids).Find(into).Error
	})
}

// prepareSafely is prepare with a panic turned into the event's error: in the
// batch job it would cost every event of the batch.
func (w *Worker) prepareSafely(ctx context.Context, ev subscriptions.Event) (p *subscriptions.Prepared, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("panic while preparing: %v", r)
		}
	}()
	return w.prepare(ctx, ev)
}

// handOut is an event the batch job could not apply, for its own job; or, when its
// try was the last of maxAttempts, to be FAILED (as Worker.failed). A failed try
// is logged as a failed attempt of the event's own job would be, and counted once
// the batch job has recorded it (enqueue), the attempt's end included (an event's
// own job that ran out of time while preparing or waiting for its batch failed that
// attempt too); an event rewritten since it was read is not, nor a malformed one,
// which its job fails at its first attempt.
func (w *Worker) handOut(it *applyItem, cause error, maxAttempts int) leftEvent {
	if errors.Is(cause, errRewritten) || errors.Is(cause, subscriptions.ErrMalformed) {
		return leftEvent{id: it.row.ID}
	}
	final := it.attempt >= maxAttempts
	level := slog.LevelWarn
	if final {
		level = slog.LevelError
	}
	w.logger.Log(it.ctx, level, "webhook attempt failed", "event_id", it.row.ProviderEventID, "event_type", it.row.Type,
		"attempt", it.attempt, "max_attempts", maxAttempts, "final", final, "error", cause.Error())
	return leftEvent{id: it.row.ID, typ: it.row.Type, err: cause, final: final}
}

// eventSpan starts, while the batch job's span is recording, a span for applying
// one of its events, linked to the request that stored it (cause, a traceparent),
// as the event's own job's span would be; what its apply enqueues names it as
// cause. The returned end ends it.
func eventSpan(ctx context.Context, cause, eventID string) (context.Context, func()) {
	tracer, ok := tracing.ChildTracer(ctx)
	if !ok {
		return ctx, func() {}
	}
	opts := []trace.SpanStartOption{trace.WithAttributes(attribute.String("webhook.event_id", eventID))}
	carrier := propagation.MapCarrier{"traceparent": cause}
	if sc := trace.SpanContextFromContext(tracing.Propagator.Extract(context.Background(), carrier)); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := tracer.Start(ctx, "webhooks.apply_event", opts...)
	return ctx, func() { span.End() }
}
