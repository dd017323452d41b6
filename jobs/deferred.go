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

// Deferred holds the jobs enqueued under one context of WithDeferredInserts, for
// InsertDeferredTx to insert in the same transaction later, together with those
// of other units of work: one statement for many jobs instead of one each.
type Deferred struct {
	mu   sync.Mutex
	by   []manyInserter // the inserters, in order of first use
	jobs [][]river.InsertManyParams
}

type deferredKey struct{}

// WithDeferredInserts returns ctx under which InsertTx records jobs in the returned
// Deferred instead of inserting them. The caller must then pass it to
// InsertDeferredTx in the same transaction before committing, or drop it together
// with the work that enqueued the jobs (a savepoint rolled back): a job then exists
// exactly when its cause commits, as with River's InsertTx.
func WithDeferredInserts(ctx context.Context) (context.Context, *Deferred) {
	d := &Deferred{}
	return context.WithValue(ctx, deferredKey{}, d), d
}

// InsertTx enqueues args in tx through q: at once, or, under a context of
// WithDeferredInserts and with a q that inserts many at once (a *Client), later,
// by InsertDeferredTx.
func InsertTx(ctx context.Context, q Inserter, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	d, ok := ctx.Value(deferredKey{}).(*Deferred)
	many, canDefer := q.(manyInserter)
	if !ok || !canDefer {
		_, err := q.InsertTx(ctx, tx, args, opts)
		return err
	}
	// Inserted later, under the caller's context: the span that enqueued it is
	// named as its cause, so its work still links to it (package tracing).
	if tp := tracing.TraceParent(trace.SpanFromContext(ctx)); tp != "" && (opts == nil || len(opts.Metadata) == 0) {
		o := river.InsertOpts{}
		if opts != nil {
			o = *opts
		}
		o.Metadata, opts = tracing.CauseMetadata(tp), &o
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := slices.Index(d.by, many)
	if k < 0 {
		d.by, d.jobs, k = append(d.by, many), append(d.jobs, nil), len(d.by)
	}
	d.jobs[k] = append(d.jobs[k], river.InsertManyParams{Args: args, InsertOpts: opts})
	return nil
}

// InsertDeferredTx inserts in tx every job the Deferred hold, one statement per
// inserter. nil entries are skipped.
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
