package webhooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/sealing"
	"github.com/scoville/scoville/tracing"
)

// Group commit. Under load most of an acknowledgement's cost is per transaction
// (round trips, a commit, River's per-call work), not per event. Verified deliveries
// therefore wait in a queue, and a few committers each write whatever is waiting in
// one transaction: one INSERT of all the events, one insert of the jobs of those that
// are new, one COMMIT. Every delivery is answered only after its batch committed.
// Nothing waits on purpose: a lone delivery is written at once, and batches form by
// themselves while the committers are busy.
const (
	// DefaultCommitters is how many batches may be written at once. Two keep the
	// database busy while the other batch is in flight; more only makes batches
	// smaller and transactions more numerous.
	DefaultCommitters = 2
	// DefaultMaxBatch caps a batch, which bounds one transaction's size and the
	// latency of the deliveries in it.
	DefaultMaxBatch = 100
	// batchTimeout bounds one batch's transaction. The batch belongs to several
	// requests, so no single request's context may cancel it.
	batchTimeout = 10 * time.Second
	// DefaultRemembered is how many stored event ids the route remembers, so that a
	// repeat delivery of one is answered without a database round trip. The set
	// grows as ids arrive: an idle or read-only process holds none.
	DefaultRemembered = 1 << 16
)

// eventsTable is where deliveries are stored (models.WebhookEvent's table).
const eventsTable = "webhook_events"

// ErrClosed answers deliveries that arrive after the route was closed: the sender
// (Stripe) is told to come back, and nothing is stored.
var ErrClosed = errors.New("webhooks: route closed")

// delivery is one verified event waiting for its batch.
type delivery struct {
	ev   envelope
	body []byte
	done chan outcome // buffered: the committer never waits for the request
	span trace.Span   // the request's; the batch's span links to it
}

// arrived is a delivery with its rank of arrival in its batch, from 1.
type arrived struct {
	*delivery
	arrival int32
}

// outcome is what became of a delivery: stored for the first time (inserted), a
// repeat of an event already stored, or not stored at all (err).
type outcome struct {
	inserted bool
	err      error
}

// batcher is the group commit: the queue of deliveries and its committers. A
// committer is started when a delivery arrives and fewer than committers are
// running, and ends when the queue is empty, so an idle route holds no goroutine.
type batcher struct {
	db         *gorm.DB
	queue      *jobs.Client
	committers int
	maxBatch   int

	mu      sync.Mutex
	pending []*delivery
	running int
	closed  bool
	stored  remembered // ids this process saw committed
	wg      sync.WaitGroup

	// saturatedAt is when a delivery last found every committer busy (Unix ns):
	// the route is then the bottleneck, and workers yield to it (Worker.Work).
	saturatedAt atomic.Int64
}

func newBatcher(db *gorm.DB, queue *jobs.Client, committers, maxBatch int) *batcher {
	return &batcher{db: db, queue: queue, committers: max(committers, 1), maxBatch: max(maxBatch, 1),
		stored: newRemembered(DefaultRemembered)}
}

// remembered is a bounded set of provider event ids known to be committed, the
// oldest forgotten first. Stripe delivers many events more than once (retries,
// and sometimes twice at once); a repeat of an event this process stored, or saw
// stored, needs no write: the row exists and rows of webhook_events are never
// deleted. A forgotten or never-seen id just takes the database path.
type remembered struct {
	ids      map[string]struct{}
	ring     []string // insertion order, for eviction; grows to capacity as ids arrive
	capacity int
	next     int
}

func newRemembered(capacity int) remembered {
	return remembered{ids: make(map[string]struct{}), capacity: max(capacity, 1)}
}

func (r *remembered) has(id string) bool {
	_, ok := r.ids[id]
	return ok
}

func (r *remembered) add(id string) {
	if r.has(id) {
		return
	}
	r.ids[id] = struct{}{}
	if len(r.ring) < r.capacity {
		r.ring = append(r.ring, id)
		return
	}
	delete(r.ids, r.ring[r.next])
	r.ring[r.next] = id
	r.next = (r.next + 1) % r.capacity
}

// store queues one delivery and waits for its batch. It reports whether the event
// was new; an error means it was not stored by this delivery (and when the batch
// failed, not at all). A repeat of an event already known committed is answered at
// once. When ctx ends first, a delivery still queued is withdrawn; one already
// being written is committed or not without anyone to tell, and Stripe's
// redelivery finds it either way.
func (b *batcher) store(ctx context.Context, ev envelope, body []byte) (bool, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false, ErrClosed
	}
	if b.stored.has(ev.ID) {
		b.mu.Unlock()
		return false, nil
	}
	d := &delivery{ev: ev, body: body, done: make(chan outcome, 1), span: trace.SpanFromContext(ctx)}
	b.pending = append(b.pending, d)
	if b.running < b.committers {
		b.running++
		b.wg.Add(1)
		go b.commitLoop()
	} else {
		b.saturatedAt.Store(time.Now().UnixNano())
	}
	b.mu.Unlock()

	select {
	case o := <-d.done:
		return o.inserted, o.err
	case <-ctx.Done():
		b.mu.Lock()
		if i := slices.Index(b.pending, d); i >= 0 {
			b.pending = slices.Delete(b.pending, i, i+1)
		}
		b.mu.Unlock()
		return false, ctx.Err()
	}
}

// close stops taking deliveries and waits until every queued one is written and
// answered. Later deliveries get ErrClosed.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}

// commitLoop writes batches until the queue is empty.
func (b *batcher) commitLoop() {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		n := min(len(b.pending), b.maxBatch)
		if n == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		batch := make([]*delivery, n)
		copy(batch, b.pending)
		b.pending = append(b.pending[:0], b.pending[n:]...)
		b.mu.Unlock()

		inserted, err := b.writeSafely(batch)
		if err == nil {
			// Every event of a committed batch is stored: inserted by it, or found
			// committed by another (ON CONFLICT waits for the other's commit).
			b.mu.Lock()
			for _, d := range batch {
				b.stored.add(d.ev.ID)
			}
			b.mu.Unlock()
		}
		b.answer(batch, inserted, err)
	}
}

// writeSafely is write with a panic turned into the batch's error. A panic in a
// request's own goroutine would cost that request; here it would cost the process
// and leave every waiting delivery unanswered.
func (b *batcher) writeSafely(batch []*delivery) (inserted map[string]bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			inserted, err = nil, fmt.Errorf("webhooks: batch write panicked: %v", p)
		}
	}()
	return b.write(batch)
}

// write stores a batch in one transaction and returns the provider ids of the events
// it inserted. Either every new event and its job commit, or nothing does.
//
// Repeats of one event inside the batch are written once. The rows go in ordered by
// provider id, so two batches racing for the same events wait for each other in the
// same order instead of deadlocking; the later one finds them stored (ON CONFLICT)
// once the earlier commits, and adds no job.
//
// The sequence numbers (seq, which orders events of the same second) still follow
// arrival: the batch draws one number per event and hands them out, smallest
// first, in the order the deliveries joined the queue, whatever order the rows go
// in. The first delivery of a repeated event is its arrival.
func (b *batcher) write(batch []*delivery) (map[string]bool, error) {
	seen := make(map[string]struct{}, len(batch))
	distinct := make([]arrived, 0, len(batch))
	for _, d := range batch {
		if _, dup := seen[d.ev.ID]; !dup {
			seen[d.ev.ID] = struct{}{}
			distinct = append(distinct, arrived{d, int32(len(distinct) + 1)})
		}
	}
	slices.SortFunc(distinct, func(x, y arrived) int { return strings.Compare(x.ev.ID, y.ev.ID) })

	n := len(distinct)
	var (
		rowIDs, ids, types, versions = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		livemodes                    = make([]bool, n)
		objectIDs                    = make([]*string, n)
		created                      = make([]time.Time, n)
		payloads                     = make([][]byte, n)
		arrivals                     = make([]int32, n)
	)
	for i, d := range distinct {
		ids[i], types[i], versions[i], livemodes[i], arrivals[i] = d.ev.ID, d.ev.Type, d.ev.APIVersion, d.ev.Livemode, d.arrival
		if d.ev.Data.Object.ID != "" {
			objectIDs[i] = &d.ev.Data.Object.ID
		}
		created[i] = time.Unix(d.ev.Created, 0).UTC()
		// The payload is sealed at rest, bound to its row: the row id is chosen here so
		// that the sealed bytes name the row they are stored in (models.WebhookEvent
		// opens them). A repeat's id and seal are simply not used. Time-ordered ids
		// (version 7) go in at the right edge of the primary key's index instead of
		// at a random page, which after each checkpoint is a full page in the WAL.
		rowID, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		rowIDs[i] = rowID.String()
		sealed, err := sealing.SealColumn(b.db, eventsTable, "payload", rowIDs[i], d.body)
		if err != nil {
			return nil, err
		}
		payloads[i] = sealed
	}

	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	requests := make([]trace.Span, len(distinct))
	spans := make(map[string]trace.Span, len(distinct)) // by provider event id
	for i, d := range distinct {
		requests[i], spans[d.ev.ID] = d.span, d.span
	}
	ctx, endSpan := tracing.StartLinked(ctx, "webhooks.store_batch", requests)
	defer endSpan()
	inserted := make(map[string]bool, n)
	err := b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		sqlTx, err := jobs.SQLTx(tx)
		if err != nil {
			return err
		}
		// seq in arrival order: the innermost query sorts the rows by arrival rank,
		// the one around it draws a number of seq's identity sequence for each row in
		// that order (a volatile function keeps it from being merged into the outer
		// query, and numbers drawn by one statement only grow), and the outer ORDER
		// BY pos puts the rows back in id order for the insert. Two sorts of a batch
		// cost the database less than gathering the numbers into an array first.
		rows, err := sqlTx.QueryContext(ctx, `INSERT INTO webhook_events
				(id, seq, provider_event_id, type, api_version, livemode, object_id, event_created, payload)
			OVERRIDING SYSTEM VALUE
			SELECT a.id::uuid, a.seq, a.provider_event_id, a.type, a.api_version, a.livemode, a.object_id, a.event_created, a.payload
			FROM (
				SELECT e.*, nextval('webhook_events_seq_seq'::regclass) AS seq
				FROM (
					SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::timestamptz[], $8::bytea[], $9::int[])
						WITH ORDINALITY AS u (id, provider_event_id, type, api_version, livemode, object_id, event_created, payload, arrival, pos)
					ORDER BY u.arrival
				) AS e
			) AS a
			ORDER BY a.pos
			ON CONFLICT (provider_event_id) DO NOTHING
			RETURNING id, provider_event_id`,
			rowIDs, ids, types, versions, livemodes, objectIDs, created, payloads, arrivals)
		if err != nil {
			return err
		}
		defer rows.Close()
		newIDs := make([]string, 0, n)
		var causes map[string]string // row id -> the storing request's traceparent
		for rows.Next() {
			var id, providerID string
			if err := rows.Scan(&id, &providerID); err != nil {
				return err
			}
			inserted[providerID] = true
			newIDs = append(newIDs, id)
			if tp := tracing.TraceParent(spans[providerID]); tp != "" {
				if causes == nil {
					causes = map[string]string{}
				}
				causes[id] = tp
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(newIDs) == 0 {
			return nil
		}
		// One job for the batch (EnqueueArgs), which hands each event its own later.
		// The fast variant skips reading the job row back: nothing here needs it.
		count, err := b.queue.InsertManyFastTx(ctx, sqlTx, []river.InsertManyParams{{Args: EnqueueArgs{EventIDs: newIDs, Causes: causes}}})
		if err != nil {
			return err
		}
		if count != 1 {
			return fmt.Errorf("webhooks: %d jobs inserted for one batch", count)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return inserted, nil
}

// answer tells every delivery of the batch its outcome. Of several deliveries of one
// new event, the first is the one that stored it; the others are repeats.
func (b *batcher) answer(batch []*delivery, inserted map[string]bool, err error) {
	for _, d := range batch {
		if err != nil {
			d.done <- outcome{err: err}
			continue
		}
		first := inserted[d.ev.ID]
		if first {
			delete(inserted, d.ev.ID)
		}
		d.done <- outcome{inserted: first}
	}
}

// sinceSaturated is how long ago a delivery last had to wait for a busy committer;
// a route that never waited reports a very long time.
func (b *batcher) sinceSaturated() time.Duration {
	at := b.saturatedAt.Load()
	if at == 0 {
		return time.Duration(1<<63 - 1)
	}
	return time.Since(time.Unix(0, at))
}
