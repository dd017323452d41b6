package webhooks

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/eventindex"
	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/live"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
)

// Group apply. Applying an event is a few milliseconds of statements and then a
// durable commit, and the commits of transactions that announce (live.Announce's
// NOTIFY) reach the disk one at a time. Events that River hands to this process's
// workers at about the same moment are therefore applied together: each worker reads
// its event and prepares it as before, then queues it, and at most applyCommitters
// goroutines each take what is queued and apply it in one transaction, each event
// in a savepoint of its own, each event's job completed in it. One commit, one flush
// and one NOTIFY lock hold per batch instead of per event. The batch job of stored
// events (EnqueueWorker.ApplyWith) queues all its events at once the same way;
// they have no job of their own to complete, and the batch job completes once
// each is applied or handed a job.
//
// What holds as when each event had its own transaction:
//   - an event's effect, its new status and its job's completion commit together, or
//     none of them does: a crash before the commit leaves every job of the batch
//     running, for River to rescue and retry, and each finds its event still RECEIVED;
//     a batch job's retry finds the events it applied before done;
//   - an event that fails (an error, a panic, a lock it could not get) is rolled back
//     to its savepoint alone and fails its own attempt, retried by River as before
//     (from a batch job: given its own job); the others of the batch commit;
//   - in a batch, the events of one ordering key are applied in seq order (sorted by
//     key, then seq); across batches and processes the order checks of package
//     subscriptions (the stamps) decide as before, and they read what the events
//     before them in the batch wrote;
//   - a lone event is applied at once: nothing waits on purpose, batches form while
//     the committers are busy;
//   - committers never apply the same ordering key at once: an event whose key is in
//     another committer's batch waits for that batch, so the committers work on
//     disjoint subscriptions in parallel instead of queueing on the same rows.
const (
	// applyCommitters is how many batches one process applies at once, on disjoint
	// ordering keys: a batch is a chain of round trips and a commit, so with two
	// one keeps the database busy while the other waits for answers or the disk.
	// More split a burst into smaller batches, whose fixed statements then cost
	// more per event.
	applyCommitters = 2
	// maxApplyBatch bounds a batch. Each event is a savepoint, a subtransaction with
	// its own id, and PostgreSQL tracks at most 64 per transaction in shared memory
	// before every snapshot of every session gets slower.
	maxApplyBatch = 32
	// applyReaders bounds the events one process reads at once. A worker holds a
	// connection while it reads its event; a batch holds one per committer. So
	// reading and applying take at most applyCommitters + applyReaders connections
	// however many workers wait for their batch, and many workers are what make
	// the batches large under a burst. Not bounded here: the lookup an applier's
	// Prepare may make (applyPreparers) and the record of a failed attempt.
	applyReaders = 4
	// applyPreparers bounds the events one process prepares at once. Prepare may
	// look an object up (one statement) or read it from Stripe; bounded apart from
	// the workers, those stay what they were with few workers while many wait for
	// their batches. It is not a read slot: a slow Stripe answer holds no read.
	applyPreparers = 10
	// applyTimeout bounds one batch's transaction, below the jobs' timeout. The batch
	// belongs to several jobs, so no single job's context may cancel it.
	applyTimeout = 8 * time.Second
)

// applyItem is one prepared event waiting for its batch.
type applyItem struct {
	ctx context.Context // the job's: River's client and the job's values
	// job is the event's own job, completed with its effect; nil for an event
	// applied by the batch job that stored it (EnqueueWorker), which completes
	// itself once every event of it is applied or handed a job of its own.
	job      *river.Job[ProcessArgs]
	attempt  int // the batch job's attempt, when job is nil
	row      *models.WebhookEvent
	version  string // the row's version when it was read
	ev       subscriptions.Event
	subjects []eventindex.Subject
	prepared *subscriptions.Prepared
	key      string // events of one key are applied in seq order
	done     chan applied
}

// attemptNo is the attempt recorded on the event when it is applied.
func (it *applyItem) attemptNo() int {
	if it.job != nil {
		return attempt(it.job)
	}
	return it.attempt
}

// applied is what became of an item: its effect, or why it was not applied.
type applied struct {
	effect subscriptions.Effect
	err    error
}

// applyQueue holds the prepared events of one process and its running committers.
type applyQueue struct {
	mu      sync.Mutex
	pending []*applyItem
	running int
	busy    map[string]bool // ordering keys of the batches being applied
}

// take removes from the queue the next batch: up to maxApplyBatch items, in queue
// order, of keys no other committer is applying, and marks their keys busy. The
// caller holds q.mu.
func (q *applyQueue) take() []*applyItem {
	var batch []*applyItem
	rest := q.pending[:0]
	for _, it := range q.pending {
		if len(batch) < maxApplyBatch && (it.key == "" || !q.busy[it.key]) {
			batch = append(batch, it)
		} else {
			rest = append(rest, it)
		}
	}
	clear(q.pending[len(rest):])
	q.pending = rest
	if q.busy == nil {
		q.busy = map[string]bool{}
	}
	for _, it := range batch {
		if it.key != "" {
			q.busy[it.key] = true
		}
	}
	return batch
}

// orderingKey is the subject whose events must apply in order: the subscription,
// else the Stripe customer, else our customer; an event that names none has no order
// to keep with another.
func orderingKey(subjects []eventindex.Subject) string {
	for _, k := range []eventindex.Kind{eventindex.Subscription, eventindex.StripeCustomer, eventindex.Customer} {
		for _, s := range subjects {
			if s.Kind == k {
				return string(k) + ":" + s.Value
			}
		}
	}
	return ""
}

// apply queues it and waits for its batch's outcome. An item still queued when its
// job's context ends is withdrawn; one already taken is waited for, since its
// effect may commit (the batch is bounded by applyTimeout).
func (w *Worker) apply(it *applyItem) applied {
	return w.applyAll(it.ctx, []*applyItem{it})[0]
}

// applyAll queues the items together and waits for each one's outcome, as apply
// does for one: once ctx ends, the items still queued are withdrawn with its error
// and those already taken are waited for.
func (w *Worker) applyAll(ctx context.Context, items []*applyItem) []applied {
	q := &w.queue
	q.mu.Lock()
	for _, it := range items {
		it.done = make(chan applied, 1)
		q.pending = append(q.pending, it)
	}
	for start := min(len(items), applyCommitters-q.running); start > 0; start-- {
		q.running++
		go w.applyLoop()
	}
	q.mu.Unlock()

	results := make([]applied, len(items))
	for i, it := range items {
		select {
		case results[i] = <-it.done:
			continue
		case <-ctx.Done():
		}
		// Withdraw what is still queued, then wait for the rest.
		q.mu.Lock()
		withdrawn := make(map[*applyItem]bool)
		for _, rest := range items[i:] {
			if k := slices.Index(q.pending, rest); k >= 0 {
				q.pending = slices.Delete(q.pending, k, k+1)
				withdrawn[rest] = true
			}
		}
		q.mu.Unlock()
		for k := i; k < len(items); k++ {
			if withdrawn[items[k]] {
				results[k] = applied{err: ctx.Err()}
			} else {
				results[k] = <-items[k].done
			}
		}
		break
	}
	return results
}

// applyLoop applies batches until nothing in the queue is free to take. What it
// leaves waits for a key another committer is applying, and that committer takes
// it once its batch is done.
func (w *Worker) applyLoop() {
	q := &w.queue
	for {
		// Each batch waits while the route is saturated, as each event job did
		// before its event: a batch job queues many events at once, so yielding
		// only before it would let them all compete with the acknowledgements.
		yield(context.Background(), w.intake)
		q.mu.Lock()
		batch := q.take()
		if len(batch) == 0 {
			q.running--
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()

		results := w.applyBatch(batch)
		q.mu.Lock()
		for _, it := range batch {
			delete(q.busy, it.key)
		}
		q.mu.Unlock()
		for i, it := range batch {
			it.done <- results[i]
		}
	}
}

// applyBatch applies the batch in one transaction and returns each item's outcome.
// The batch's events are locked first, together, in id order (the lock order of
// eventindex.LockCustomers: events, then customers). A lone event has no savepoint:
// its error rolls the transaction back.
func (w *Worker) applyBatch(batch []*applyItem) []applied {
	slices.SortStableFunc(batch, func(a, b *applyItem) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.ev.Seq, b.ev.Seq))
	})
	results := make([]applied, len(batch))
	at := make([]time.Time, len(batch)) // when each was applied
	// The jobs each event enqueues, inserted together once the batch is applied:
	// those of an event rolled back to its savepoint are dropped with it.
	later := make([]*jobs.Deferred, len(batch))
	announced := make([]*live.Later, len(batch)) // and their live announcements
	deadline := time.Now().Add(cmp.Or(w.batchTimeout, applyTimeout))
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	alone := len(batch) == 1
	err := w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		sqlTx, err := jobs.SQLTx(tx)
		if err != nil {
			return err
		}
		ids := make([]string, len(batch))
		for i, it := range batch {
			ids[i] = it.row.ID
		}
		var rows []lockedEvent
		if err := tx.Raw(`SELECT id, status, xmin::text AS row_version FROM webhook_events
			WHERE id IN ? ORDER BY id FOR UPDATE`, ids).Scan(&rows).Error; err != nil {
			return err
		}
		locked := make(map[string]lockedEvent, len(rows))
		for _, r := range rows {
			locked[r.ID] = r
		}
		for i, it := range batch {
			l, ok := locked[it.row.ID]
			switch {
			case !ok:
				results[i].err = fmt.Errorf("webhooks: event %s vanished while being applied", it.row.ID)
				continue
			case l.Status != models.WebhookReceived:
				results[i].err = errDone // by another run, or by an earlier item of this batch
				continue
			case l.RowVersion != it.version:
				results[i].err = errRewritten
				continue
			}
			// The job's values (River's client, to complete the job), without its
			// cancellation: a statement cut off by one job would break the
			// connection that the whole batch is written on.
			ectx, ecancel := context.WithDeadline(context.WithoutCancel(it.ctx), deadline)
			ectx, later[i] = jobs.WithDeferredInserts(ectx, sqlTx)
			ectx, announced[i] = live.WithAnnounceLater(ectx, sqlTx)
			if !alone {
				if err := tx.Exec("SAVEPOINT apply").Error; err != nil {
					ecancel()
					return err
				}
			}
			results[i] = w.applyOneSafely(ectx, tx.WithContext(ectx), it)
			at[i] = time.Now().UTC()
			ecancel()
			if results[i].err == nil {
				l.Status = models.WebhookProcessed // a second job of the same event finds it done
				locked[it.row.ID] = l
				continue
			}
			if alone {
				return results[i].err
			}
			if err := tx.Exec("ROLLBACK TO SAVEPOINT apply").Error; err != nil {
				return err
			}
		}
		return markApplied(ctx, tx, batch, results, at, later, announced)
	})
	if err != nil {
		// Nothing of the batch committed.
		for i := range results {
			if results[i].err == nil || alone {
				results[i] = applied{err: err}
			}
		}
	}
	return results
}

// lockedEvent is an event's row as the batch locked it.
type lockedEvent struct {
	ID         string
	Status     models.WebhookEventStatus
	RowVersion string
}

// applyOneSafely is applyOne with a panic turned into the item's error: a panic in
// a job's own goroutine costs that job; here it would cost the batch and the
// process.
func (w *Worker) applyOneSafely(ctx context.Context, tx *gorm.DB, it *applyItem) (res applied) {
	defer func() {
		if r := recover(); r != nil {
			res = applied{err: fmt.Errorf("panic while applying: %v", r)}
		}
	}()
	effect, err := w.applyOne(ctx, tx, it)
	return applied{effect: effect, err: err}
}

// applyOne applies one event, locked RECEIVED and unchanged since it was read, in
// tx: it indexes the event's subjects, locks its customers and applies it;
// markApplied then records its status and completes its job.
func (w *Worker) applyOne(ctx context.Context, tx *gorm.DB, it *applyItem) (subscriptions.Effect, error) {
	var effect subscriptions.Effect
	row, job := it.row, it.job
	// The event's subjects, then the lock order (eventindex.LockCustomers): the
	// event, then its customers, then their subscriptions, payments and the rest, as
	// erasure takes them.
	each, err := eventindex.RecordAndLockEach(ctx, tx, row.ID, it.subjects)
	if err != nil {
		return effect, err
	}
	erased := slices.Contains(slices.Collect(maps.Values(each)), true)
	// What the lock read stands for the rest of tx: the apply need not ask again.
	ctx = customers.WithLocked(ctx, each)
	if effect, err = w.applier.Apply(ctx, tx.WithContext(ctx), it.ev, it.prepared); err != nil {
		return effect, err
	}
	if erased {
		// About an erased customer: its personal fields go now, as erasure
		// scrubbed the events stored before it (DAT-3).
		if _, err := ScrubPersonal(ctx, tx, []*models.WebhookEvent{{ID: row.ID, Payload: row.Payload}}); err != nil {
			return effect, err
		}
	}
	if job != nil && job.Args.Replay {
		effect.Outcome = "replayed: " + effect.Outcome
	}
	return effect, nil
}

// markApplied records the outcome of every event of the batch applied without an
// error, in one statement of tx outside the savepoints (so the rows carry the
// transaction's own id): status, outcome, attempt, the time it was applied, and
// that its subjects are indexed. It then inserts the jobs their apply enqueued
// (later, by item), makes their live announcements (announced, by item), and
// completes their own jobs (completeApplied).
func markApplied(ctx context.Context, tx *gorm.DB, batch []*applyItem, results []applied, at []time.Time,
	later []*jobs.Deferred, announced []*live.Later) error {
	var (
		ids, statuses, outcomes []string
		attempts                []int32
		times                   []time.Time
		enqueued                []*jobs.Deferred
		announce                []*live.Later
	)
	for i, it := range batch {
		if results[i].err != nil {
			continue
		}
		enqueued, announce = append(enqueued, later[i]), append(announce, announced[i])
		status := models.WebhookProcessed
		if results[i].effect.Ignored {
			status = models.WebhookIgnored
		}
		ids, statuses = append(ids, it.row.ID), append(statuses, string(status))
		outcomes, attempts = append(outcomes, truncate(results[i].effect.Outcome, 500)), append(attempts, int32(it.attemptNo()))
		times = append(times, at[i])
	}
	if len(ids) == 0 {
		return nil
	}
	sqlTx, err := jobs.SQLTx(tx)
	if err != nil {
		return err
	}
	res, err := sqlTx.ExecContext(ctx, `UPDATE webhook_events e SET status = u.status, outcome = u.outcome,
			attempts = u.attempts, last_error = NULL, processed_at = u.processed_at,
			subjects_indexed_at = coalesce(e.subjects_indexed_at, now())
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::timestamptz[]) AS u (id, status, outcome, attempts, processed_at)
		WHERE e.id = u.id`, ids, statuses, outcomes, attempts, times)
	if err != nil {
		return fmt.Errorf("webhooks: mark applied: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(ids)) {
		return fmt.Errorf("webhooks: mark applied: %d of %d events (%v)", n, len(ids), err)
	}
	if err := jobs.InsertDeferredTx(ctx, sqlTx, enqueued...); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	if err := live.AnnounceLater(ctx, sqlTx, announce...); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	return completeApplied(ctx, sqlTx, batch, results)
}

// completeApplied completes, in tx and in one statement per River client, the jobs
// of the events applied without an error, as completeInTx does for one. An item
// whose context has no River client (a test calling Work directly) is left to
// River, which completes it after Work returns as usual; one without a job of its
// own is the batch job's to complete.
func completeApplied(ctx context.Context, sqlTx *sql.Tx, batch []*applyItem, results []applied) error {
	var (
		clients []*jobs.Client
		ids     [][]int64
	)
	for i, it := range batch {
		if results[i].err != nil || it.job == nil {
			continue
		}
		client, err := river.ClientFromContextSafely[*sql.Tx](it.ctx)
		if err != nil {
			continue
		}
		k := slices.Index(clients, client)
		if k < 0 {
			clients, ids, k = append(clients, client), append(ids, nil), len(clients)
		}
		ids[k] = append(ids[k], it.job.ID)
	}
	for k, client := range clients {
		if err := jobs.CompleteManyTx(ctx, sqlTx, client, ids[k]); err != nil {
			return fmt.Errorf("webhooks: %w", err)
		}
	}
	return nil
}
