package jobs

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/riverqueue/river"
)

// errClaimLost ends a Leased attempt that could not renew its claim for half the
// rescue window: another process may take the job over soon, so this one stops.
var errClaimLost = errors.New("jobs: the job's claim could not be renewed; stopping so that it is not run twice")

// Leased wraps a worker whose attempts may run longer than the rescue window (a
// reconciliation paging through a large Stripe account). While an attempt runs it
// renews its claim (the job's attempted_at, which River's rescuer reads) every
// quarter of rescueAfter, so a live attempt is never rescued, and a dead process's
// job is rescued as soon as any other's. The attempt is bounded by the inner
// worker's own Timeout (zero: the package's Timeout), enforced here, and it stops
// when its claim cannot be renewed or has been taken over. rescueAfter is the
// client's RescueStuckJobsAfter (zero: RescueAfter).
func Leased[T river.JobArgs](inner river.Worker[T], db *sql.DB, rescueAfter time.Duration) river.Worker[T] {
	return &leased[T]{Worker: inner, db: db, rescueAfter: cmp.Or(rescueAfter, RescueAfter), failed: map[int64]int{}}
}

type leased[T river.JobArgs] struct {
	river.Worker[T]
	db          *sql.DB
	rescueAfter time.Duration

	mu     sync.Mutex
	failed map[int64]int // job id -> attempt that returned an error in this process
}

// Timeout is infinite for River: the rescuer then judges the job by its renewed
// claim alone. Work applies the inner worker's bound itself.
func (w *leased[T]) Timeout(*river.Job[T]) time.Duration { return -1 }

// NextRetry keeps the backoff of an attempt that failed here; a job asked about by
// the rescuer (its process died) is retried at once.
func (w *leased[T]) NextRetry(job *river.Job[T]) time.Time {
	w.mu.Lock()
	attempt, failed := w.failed[job.ID]
	delete(w.failed, job.ID)
	w.mu.Unlock()
	if !failed || attempt != job.Attempt {
		return time.Now()
	}
	if t := w.Worker.NextRetry(job); !t.IsZero() {
		return t
	}
	return (&river.DefaultClientRetryPolicy{}).NextRetry(job.JobRow)
}

func (w *leased[T]) Work(ctx context.Context, job *river.Job[T]) error {
	ctx, cancelTimeout := context.WithTimeout(ctx, cmp.Or(w.Worker.Timeout(job), Timeout))
	defer cancelTimeout()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		w.renew(ctx, job, done, cancel)
	}()
	err := w.Worker.Work(ctx, job)
	close(done)
	<-renewed
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, errClaimLost) {
		err = errors.Join(err, cause)
	}
	if err != nil {
		w.mu.Lock()
		w.failed[job.ID] = job.Attempt
		w.mu.Unlock()
	}
	return err
}

// renew moves the job's attempted_at forward until done, and cancels the attempt
// when that fails for half the rescue window or the job is no longer this attempt's.
func (w *leased[T]) renew(ctx context.Context, job *river.Job[T], done <-chan struct{}, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(w.rescueAfter / 4)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, rcancel := context.WithTimeout(ctx, w.rescueAfter/4)
		res, err := w.db.ExecContext(rctx,
			`UPDATE river_job SET attempted_at = now() WHERE id = $1 AND attempt = $2 AND state = 'running'`,
			job.ID, job.Attempt)
		rcancel()
		if err == nil {
			if n, _ := res.RowsAffected(); n == 0 {
				cancel(errClaimLost) // rescued or cancelled meanwhile
				return
			}
			last = time.Now()
			continue
		}
		if time.Since(last) >= w.rescueAfter/2 {
			cancel(errClaimLost)
			return
		}
	}
}
