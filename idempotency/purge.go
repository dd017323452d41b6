package idempotency

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
)

// PurgeArgs is the periodic job that retires keys past their retention (each row
// becomes a small tombstone), so the table of results stays the size of one day's
// traffic and no retired key runs again, and deletes the tombstones past theirs
// (Store.PurgeTombstones), so the tombstones stay the size of that window.
type PurgeArgs struct{}

// Kind names the job in River.
func (PurgeArgs) Kind() string { return "idempotency_purge" }

// PurgeWorker runs Purge.
type PurgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	store  *Store
	logger *slog.Logger
}

// NewPurgeWorker builds the worker.
func NewPurgeWorker(store *Store, logger *slog.Logger) *PurgeWorker {
	return &PurgeWorker{store: store, logger: logger}
}

// Work retires the expired keys, then deletes the tombstones past their retention.
// Both are safe to run again: each deletes only what is still past its time.
func (w *PurgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	n, err := w.store.Purge(ctx)
	if err != nil {
		return err
	}
	gone, err := w.store.PurgeTombstones(ctx)
	if err != nil {
		return err
	}
	w.logger.InfoContext(ctx, "expired idempotency keys retired", "retired", n, "tombstones_purged", gone)
	return nil
}

// PurgeJob runs PurgeWorker every interval on the elected leader.
func PurgeJob(interval time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return PurgeArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
