package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
)

// probeApplier writes a probe row per Apply in the applying transaction, then fails,
// panics or breaks the connection for the events it is told to.
type probeApplier struct {
	mu     sync.Mutex
	order  []string // provider ids, in the order Apply was called
	fail   map[string]bool
	panics map[string]bool
	kill   map[string]bool          // terminates the transaction's connection, as a crash would
	gate   map[string]chan struct{} // Apply of that event waits until it is closed
	begun  chan string              // nil, or told each event whose Apply began
	// followUps, when set, enqueues a followUpArgs job per Apply, as an applier's
	// notices and outgoing messages do (jobs.InsertTx).
	followUps jobs.Inserter
	// preparing, when set, runs in each Prepare (set before the workers start).
	preparing func()
}

// followUpArgs is the job a probe's Apply enqueues, on a queue nobody works.
type followUpArgs struct {
	EventID string `json:"eventId"`
}

func (followUpArgs) Kind() string { return "apply_probe_follow_up" }

func (followUpArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: "apply_probe"} }

func (p *probeApplier) Prepare(context.Context, subscriptions.Event) (*subscriptions.Prepared, error) {
	if p.preparing != nil {
		p.preparing()
	}
	return &subscriptions.Prepared{}, nil
}

func (p *probeApplier) Apply(ctx context.Context, tx *gorm.DB, ev subscriptions.Event, _ *subscriptions.Prepared) (subscriptions.Effect, error) {
	p.mu.Lock()
	p.order = append(p.order, ev.ProviderEventID)
	fail, panics, kill := p.fail[ev.ProviderEventID], p.panics[ev.ProviderEventID], p.kill[ev.ProviderEventID]
	gate, begun, followUps := p.gate[ev.ProviderEventID], p.begun, p.followUps
	p.mu.Unlock()
	if begun != nil {
		begun <- ev.ProviderEventID
	}
	if gate != nil {
		<-gate
	}
	if err := tx.WithContext(ctx).Exec(`INSERT INTO apply_probe (event_id) VALUES (?)`, ev.ProviderEventID).Error; err != nil {
		return subscriptions.Effect{}, err
	}
	if followUps != nil {
		sqlTx, err := jobs.SQLTx(tx)
		if err != nil {
			return subscriptions.Effect{}, err
		}
		if err := jobs.InsertTx(ctx, followUps, sqlTx, followUpArgs{EventID: ev.ProviderEventID}, nil); err != nil {
			return subscriptions.Effect{}, err
		}
	}
	switch {
	case fail:
		return subscriptions.Effect{}, errors.New("refused by the test")
	case panics:
		panic("applier bug")
	case kill:
		_ = tx.WithContext(ctx).Exec(`SELECT pg_terminate_backend(pg_backend_pid())`).Error
		return subscriptions.Effect{}, errors.New("connection gone")
	}
	return subscriptions.Effect{Outcome: "applied"}, nil
}

// applySetup is a worker over a probe applier on a fresh database with n stored
// events (evt_0 … evt_n-1, stored in that order), and the probe table.
func applySetup(t *testing.T, n int) (*Worker, *probeApplier, *gorm.DB, []models.WebhookEvent) {
	t.Helper()
	b, db := newTestBatcher(t, 1)
	owner := ownerOf(t, db)
	var role string
	require.NoError(t, db.Raw(`SELECT current_user`).Scan(&role).Error)
	require.NoError(t, owner.Exec(`CREATE TABLE apply_probe (event_id text NOT NULL)`).Error)
	require.NoError(t, owner.Exec(`GRANT SELECT, INSERT ON apply_probe TO `+role).Error)
	rows := make([]models.WebhookEvent, n)
	for i := range rows {
		rows[i] = storedEvent(t, b, fmt.Sprintf("evt_%d", i))
	}
	p := &probeApplier{fail: map[string]bool{}, panics: map[string]bool{}, kill: map[string]bool{}, gate: map[string]chan struct{}{}}
	w := NewWorker(db, p, NewMetrics(prometheus.NewRegistry(), nil), slog.New(slog.DiscardHandler), nil)
	return w, p, db, rows
}

// itemFor reads a stored event as Work does and returns it ready for a batch.
func itemFor(t *testing.T, db *gorm.DB, row models.WebhookEvent, key string) *applyItem {
	t.Helper()
	var read versionedEvent
	require.NoError(t, db.Select("*, xmin::text AS row_version").Take(&read, "id = ?", row.ID).Error)
	return &applyItem{
		ctx:      context.Background(),
		job:      &river.Job[ProcessArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 3}, Args: ProcessArgs{EventID: row.ID}},
		row:      &read.WebhookEvent,
		version:  read.RowVersion,
		ev:       subscriptions.Event{ID: read.ID, ProviderEventID: read.ProviderEventID, Type: read.Type, Seq: read.Seq},
		prepared: &subscriptions.Prepared{},
		key:      key,
	}
}

// probes counts the probe rows of each event, and statuses reads each event's status.
func probes(t *testing.T, db *gorm.DB) map[string]int {
	t.Helper()
	var rows []struct {
		EventID string
		N       int
	}
	require.NoError(t, db.Raw(`SELECT event_id, count(*) AS n FROM apply_probe GROUP BY event_id`).Scan(&rows).Error)
	out := map[string]int{}
	for _, r := range rows {
		out[r.EventID] = r.N
	}
	return out
}

func statuses(t *testing.T, db *gorm.DB) map[string]models.WebhookEventStatus {
	t.Helper()
	var rows []models.WebhookEvent
	require.NoError(t, db.Omit("payload").Find(&rows).Error)
	out := map[string]models.WebhookEventStatus{}
	for _, r := range rows {
		out[r.ProviderEventID] = r.Status
	}
	return out
}

// In one batch, an event that fails and one that panics are rolled back alone (their
// probe rows gone, still RECEIVED for River's retry, each with its own error); the
// others commit with their status. A retry applies each failed one once.
func TestABatchRollsBackOnlyTheEventsThatFail(t *testing.T) {
	w, p, db, rows := applySetup(t, 5)
	p.fail["evt_1"], p.panics["evt_3"] = true, true
	batch := make([]*applyItem, len(rows))
	for i, r := range rows {
		batch[i] = itemFor(t, db, r, "sub_1")
	}

	results := w.applyBatch(batch)
	got := map[string]error{}
	for i, it := range batch {
		got[it.ev.ProviderEventID] = results[i].err
	}
	require.NoError(t, got["evt_0"])
	require.ErrorContains(t, got["evt_1"], "refused by the test")
	require.NoError(t, got["evt_2"])
	require.ErrorContains(t, got["evt_3"], "panic while applying: applier bug")
	require.NoError(t, got["evt_4"])
	require.Equal(t, map[string]int{"evt_0": 1, "evt_2": 1, "evt_4": 1}, probes(t, db),
		"the failed events' writes are rolled back, the others' kept")
	require.Equal(t, map[string]models.WebhookEventStatus{
		"evt_0": models.WebhookProcessed, "evt_1": models.WebhookReceived, "evt_2": models.WebhookProcessed,
		"evt_3": models.WebhookReceived, "evt_4": models.WebhookProcessed,
	}, statuses(t, db))
	var txs int64
	require.NoError(t, db.Raw(`SELECT count(DISTINCT xmin::text) FROM webhook_events WHERE status = ?`, models.WebhookProcessed).Scan(&txs).Error)
	require.EqualValues(t, 1, txs, "the applied events are marked by one statement of the batch's transaction, outside the savepoints")

	// River's retries, through Work: each failed event applies once, the others not again.
	delete(p.fail, "evt_1")
	delete(p.panics, "evt_3")
	for _, r := range rows {
		require.NoError(t, w.Work(context.Background(), &river.Job[ProcessArgs]{
			JobRow: &rivertype.JobRow{ID: 2, Attempt: 2, MaxAttempts: 3}, Args: ProcessArgs{EventID: r.ID}}))
	}
	require.Equal(t, map[string]int{"evt_0": 1, "evt_1": 1, "evt_2": 1, "evt_3": 1, "evt_4": 1}, probes(t, db))
	for id, s := range statuses(t, db) {
		require.Equal(t, models.WebhookProcessed, s, id)
	}
}

// A batch whose connection dies in the middle (as when the process or the database
// crashes before the commit) commits nothing, not even the events applied before
// the break: every one of its events is still RECEIVED, and River's retries then
// apply each once.
func TestABatchCutInTheMiddleLosesAndDoublesNothing(t *testing.T) {
	w, p, db, rows := applySetup(t, 4)
	p.kill["evt_2"] = true
	batch := make([]*applyItem, len(rows))
	for i, r := range rows {
		batch[i] = itemFor(t, db, r, "sub_1")
	}

	for i, res := range w.applyBatch(batch) {
		require.Error(t, res.err, "event %s: nothing of a batch that did not commit is reported applied", batch[i].ev.ProviderEventID)
	}
	require.Empty(t, probes(t, db), "nothing of the cut batch committed")
	for id, s := range statuses(t, db) {
		require.Equal(t, models.WebhookReceived, s, id)
	}

	delete(p.kill, "evt_2")
	for _, r := range rows {
		require.NoError(t, w.Work(context.Background(), &river.Job[ProcessArgs]{
			JobRow: &rivertype.JobRow{ID: 2, Attempt: 2, MaxAttempts: 3}, Args: ProcessArgs{EventID: r.ID}}))
	}
	require.Equal(t, map[string]int{"evt_0": 1, "evt_1": 1, "evt_2": 1, "evt_3": 1}, probes(t, db))
}

// Events of one ordering key are applied in seq order whatever order their jobs
// reached the batch in, and two jobs of one event in one batch (a replay beside the
// original) apply it once.
func TestABatchAppliesInSeqOrderAndEachEventOnce(t *testing.T) {
	w, p, db, rows := applySetup(t, 4)
	// Jobs in reverse arrival order, two keys interleaved, evt_1's job twice.
	batch := []*applyItem{
		itemFor(t, db, rows[3], "sub_b"), itemFor(t, db, rows[1], "sub_a"), itemFor(t, db, rows[2], "sub_b"),
		itemFor(t, db, rows[1], "sub_a"), itemFor(t, db, rows[0], "sub_a"),
	}
	results := w.applyBatch(batch)
	done := 0
	for i, res := range results {
		if errors.Is(res.err, errDone) {
			done++
			continue
		}
		require.NoError(t, res.err, batch[i].ev.ProviderEventID)
	}
	require.Equal(t, 1, done, "the second job of evt_1 finds it done")
	require.Equal(t, []string{"evt_0", "evt_1", "evt_2", "evt_3"}, p.order, "each key's events in seq order, each once")
	require.Equal(t, map[string]int{"evt_0": 1, "evt_1": 1, "evt_2": 1, "evt_3": 1}, probes(t, db))
}

// While a batch applies an event of one subscription, another committer applies
// other subscriptions' events (no queueing behind it), but never a later event of
// the same subscription: that one waits for the batch, and is applied after it.
func TestCommittersApplyDisjointSubscriptionsAtOnce(t *testing.T) {
	w, p, db, rows := applySetup(t, 3)
	p.begun = make(chan string, 10)
	hold := make(chan struct{})
	p.gate["evt_0"] = hold
	results := make(chan string, 3)
	submit := func(row models.WebhookEvent, key string) {
		it := itemFor(t, db, row, key)
		go func() {
			res := w.apply(it)
			results <- fmt.Sprintf("%s: %v", it.ev.ProviderEventID, res.err)
		}()
	}

	submit(rows[0], "sub_a")
	require.Equal(t, "evt_0", <-p.begun, "the first event is being applied, and held there")
	submit(rows[1], "sub_a")
	for queued := false; !queued; {
		select {
		case id := <-p.begun:
			t.Fatalf("%s is applied while its subscription's earlier event is held", id)
		case <-time.After(time.Millisecond):
		}
		w.queue.mu.Lock()
		queued = len(w.queue.pending) == 1
		w.queue.mu.Unlock()
	}
	submit(rows[2], "sub_b")
	require.Equal(t, "evt_2", <-p.begun, "another subscription's event does not wait for the held batch")
	require.Equal(t, "evt_2: <nil>", <-results)
	w.queue.mu.Lock()
	waiting := len(w.queue.pending)
	w.queue.mu.Unlock()
	require.Equal(t, 1, waiting, "the same subscription's later event still waits in the queue, not in another batch")

	close(hold)
	require.Equal(t, "evt_0: <nil>", <-results)
	require.Equal(t, "evt_1", <-p.begun, "then it is applied")
	require.Equal(t, "evt_1: <nil>", <-results)
	require.Equal(t, []string{"evt_0", "evt_2", "evt_1"}, p.order)
	require.Equal(t, map[string]int{"evt_0": 1, "evt_1": 1, "evt_2": 1}, probes(t, db))
}

// However many workers wait for their batches, at most applyReaders of them read
// their events at once: the connections they hold stay bounded as the workers grow.
func TestWorkersReadAtMostApplyReadersEventsAtOnce(t *testing.T) {
	const workers = 4 * applyReaders
	w, _, db, rows := applySetup(t, workers)
	var reading overlap
	readsEvent := func(tx *gorm.DB) bool {
		_, ok := tx.Statement.Dest.(*versionedEvent)
		return ok
	}
	cb := db.Callback().Query()
	require.NoError(t, cb.Before("gorm:query").Register("test:reading", func(tx *gorm.DB) {
		if readsEvent(tx) {
			reading.enter()
			time.Sleep(5 * time.Millisecond) // reads overlap when nothing bounds them
		}
	}))
	require.NoError(t, cb.After("gorm:query").Register("test:read", func(tx *gorm.DB) {
		if readsEvent(tx) {
			reading.leave()
		}
	}))
	workAll(t, w, rows)
	require.Equal(t, workers, len(probes(t, db)), "every event applied")
	require.LessOrEqual(t, reading.most.Load(), int32(applyReaders))
	require.Positive(t, reading.most.Load())
}

// overlap counts what runs at once and keeps the most seen.
type overlap struct{ now, most atomic.Int32 }

func (o *overlap) enter() {
	n := o.now.Add(1)
	for m := o.most.Load(); n > m && !o.most.CompareAndSwap(m, n); m = o.most.Load() {
	}
}

func (o *overlap) leave() { o.now.Add(-1) }

// workAll works every row's event at once, each on a worker of its own.
func workAll(t *testing.T, w *Worker, rows []models.WebhookEvent) {
	t.Helper()
	var wg sync.WaitGroup
	for _, r := range rows {
		wg.Go(func() {
			job := &river.Job[ProcessArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 3}, Args: ProcessArgs{EventID: r.ID}}
			assert.NoError(t, w.Work(context.Background(), job))
		})
	}
	wg.Wait()
}

// However many workers there are, at most applyPreparers of them prepare their
// events at once: what Prepare looks up, or reads from Stripe, stays bounded as the
// workers grow.
func TestWorkersPrepareAtMostApplyPreparersEventsAtOnce(t *testing.T) {
	const workers = 4 * applyPreparers
	w, p, db, rows := applySetup(t, workers)
	var preparing overlap
	p.preparing = func() {
		preparing.enter()
		time.Sleep(20 * time.Millisecond) // preparations overlap when nothing bounds them
		preparing.leave()
	}
	workAll(t, w, rows)
	require.Equal(t, workers, len(probes(t, db)), "every event applied")
	require.LessOrEqual(t, preparing.most.Load(), int32(applyPreparers))
	require.Positive(t, preparing.most.Load())
}

// A committer holds each batch back while the route is saturated, however the
// events came (an event job, a batch job): the route's acknowledgements come first.
func TestCommittersYieldToASaturatedRouteBeforeEachBatch(t *testing.T) {
	w, _, db, rows := applySetup(t, 1)
	intake := &scriptedIntake{n: 3}
	w.intake = intake
	res := w.apply(itemFor(t, db, rows[0], "sub_1"))
	require.NoError(t, res.err)
	require.Equal(t, map[string]int{"evt_0": 1}, probes(t, db))
	intake.mu.Lock()
	defer intake.mu.Unlock()
	require.GreaterOrEqual(t, intake.asked, 4, "three saturated answers waited out before the batch, then free")
}

// Each preparation waits while the route is saturated: a batch job prepares all
// its events after the one yield before its batch.
func TestPreparationsYieldToASaturatedRoute(t *testing.T) {
	w, p, _, _ := applySetup(t, 0)
	intake := &scriptedIntake{n: 2}
	w.intake = intake
	prepared := false
	p.preparing = func() {
		intake.mu.Lock()
		defer intake.mu.Unlock()
		prepared = intake.asked >= 3
	}
	_, err := w.prepare(context.Background(), subscriptions.Event{})
	require.NoError(t, err)
	require.True(t, prepared, "prepared only once the route was free")
}
