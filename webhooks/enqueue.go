package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
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
type EnqueueWorker struct {
	river.WorkerDefaults[EnqueueArgs]
	db      *gorm.DB
	queue   *jobs.Client
	metrics *Metrics
	intake  saturation // nil: never yield
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

// Work inserts one ProcessArgs job per event of the batch. After the last attempt
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
	params := make([]river.InsertManyParams, len(job.Args.EventIDs))
	for i, id := range job.Args.EventIDs {
		params[i] = river.InsertManyParams{Args: ProcessArgs{EventID: id}}
		if cause := job.Args.Causes[id]; cause != "" {
			params[i].InsertOpts = &river.InsertOpts{Metadata: tracing.CauseMetadata(cause)}
		}
	}
	return w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		sqlTx, err := jobs.SQLTx(tx)
		if err != nil {
			return err
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
}
