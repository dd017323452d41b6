package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/trace"

	"github.com/scoville/scoville/tracing"
)

// Inserter is what inserts jobs in a transaction: a *Client, or a stand-in in tests.
type Inserter interface {
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// manyInserter inserts several jobs with one statement (a *Client does).
type manyInserter interface {
	InsertManyFastTx(ctx context.Context, tx *sql.Tx, params []river.InsertManyParams) (int, error)
}

// Deferred holds the jobs enqueued in one transaction under one context of
// WithDeferredInserts, for InsertDeferredTx to insert in it later, together with
// those of other units of work: one statement for many jobs instead of one each.
type Deferred struct {
	mu   sync.Mutex
	tx   *sql.Tx        // the transaction whose jobs it holds
	made bool           // InsertDeferredTx took them: later ones are inserted at once
	by   []manyInserter // the inserters, in order of first use
	jobs [][]river.InsertManyParams
}

type deferredKey struct{}

// WithDeferredInserts returns ctx under which InsertTx records the jobs of tx in
// the returned Deferred instead of inserting them. The caller must then pass it to
// InsertDeferredTx in tx before committing, or drop it together with the work that
// enqueued the jobs (a savepoint rolled back): a job then exists exactly when its
// cause commits, as with River's InsertTx. A job of another transaction, or one
// enqueued after InsertDeferredTx, is inserted at once: ctx reaching a goroutine or
// a later unit of work loses no job.
func WithDeferredInserts(ctx context.Context, tx *sql.Tx) (context.Context, *Deferred) {
	d := &Deferred{tx: tx}
	return context.WithValue(ctx, deferredKey{}, d), d
}

// record records the job when it belongs to d: enqueued in d's transaction before
// its jobs were made.
func (d *Deferred) record(tx *sql.Tx, many manyInserter, job river.InsertManyParams) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.made || tx != d.tx {
		return false
	}
	k := slices.Index(d.by, many)
	if k < 0 {
		d.by, d.jobs, k = append(d.by, many), append(d.jobs, nil), len(d.by)
	}
	d.jobs[k] = append(d.jobs[k], job)
	return true
}

// InsertTx enqueues args in tx through q: at once, or, under a context of
// WithDeferredInserts for tx and with a q that inserts many at once (a *Client),
// later, by InsertDeferredTx.
func InsertTx(ctx context.Context, q Inserter, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	d, ok := ctx.Value(deferredKey{}).(*Deferred)
	many, canDefer := q.(manyInserter)
	if ok && canDefer {
		// Inserted later, under the caller's context: the span that enqueued it is
		// named as its cause, so its work still links to it (package tracing).
		later := opts
		if tp := tracing.TraceParent(trace.SpanFromContext(ctx)); tp != "" && (opts == nil || len(opts.Metadata) == 0) {
			o := river.InsertOpts{}
			if opts != nil {
				o = *opts
			}
			o.Metadata, later = tracing.CauseMetadata(tp), &o
		}
		if d.record(tx, many, river.InsertManyParams{Args: args, InsertOpts: later}) {
			return nil
		}
	}
	_, err := q.InsertTx(ctx, tx, args, opts)
	return err
}

// InsertDeferredTx inserts in tx every job the Deferred hold, one statement per
// inserter; a job enqueued under them afterwards is inserted at once. nil entries
// are skipped.
func InsertDeferredTx(ctx context.Context, tx *sql.Tx, ds ...*Deferred) error {
	var (
		by   []manyInserter
		jobs [][]river.InsertManyParams
	)
	for _, d := range ds {
		if d == nil {
			continue
		}
		d.mu.Lock()
		d.made = true
		for i, q := range d.by {
			k := slices.Index(by, q)
			if k < 0 {
				by, jobs, k = append(by, q), append(jobs, nil), len(by)
			}
			jobs[k] = append(jobs[k], d.jobs[i]...)
		}
		d.mu.Unlock()
	}
	for k, q := range by {
		n, err := q.InsertManyFastTx(ctx, tx, jobs[k])
		if err != nil {
			return fmt.Errorf("jobs: insert deferred: %w", err)
		}
		if n != len(jobs[k]) {
			return fmt.Errorf("jobs: insert deferred: %d of %d jobs inserted", n, len(jobs[k]))
		}
	}
	return nil
}
