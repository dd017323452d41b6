package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// batchJobSetup is applySetup's worker behind a batch job worker that applies with
// it, over n stored events; the route's own batch jobs are gone, so that the test
// decides which batch job runs.
func batchJobSetup(t *testing.T, n int) (*EnqueueWorker, *Worker, *probeApplier, *gorm.DB, []models.WebhookEvent) {
	t.Helper()
	w, p, db, rows := applySetup(t, n)
	require.NoError(t, ownerOf(t, db).Exec(`DELETE FROM river_job`).Error)
	queue, err := jobs.NewInserter(db, 0, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return NewEnqueueWorker(db, queue, w.metrics, nil).ApplyWith(w), w, p, db, rows
}

// runBatchJob works a batch job of the events, at attempt.
func runBatchJob(ctx context.Context, e *EnqueueWorker, attempt int, rows ...models.WebhookEvent) error {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return e.Work(ctx, &river.Job[EnqueueArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: attempt, MaxAttempts: 3},
		Args: EnqueueArgs{EventIDs: ids}})
}

// eventJobs lists the provider ids of the events that have a ProcessArgs job.
func eventJobs(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	var ids []string
	require.NoError(t, db.Raw(`SELECT e.provider_event_id FROM river_job j JOIN webhook_events e ON e.id::text = j.args->>'eventId'
		WHERE j.kind = ? ORDER BY 1`, ProcessArgs{}.Kind()).Scan(&ids).Error)
	return ids
}

// runEventJob works an event's own job, as River would.
func runEventJob(t *testing.T, w *Worker, row models.WebhookEvent, attempt int, replay bool) {
	t.Helper()
	require.NoError(t, w.Work(context.Background(), &river.Job[ProcessArgs]{
		JobRow: &rivertype.JobRow{ID: 2, Attempt: attempt, MaxAttempts: 3}, Args: ProcessArgs{EventID: row.ID, Replay: replay}}))
}

// A batch job applies its events itself, each once, and gives none of them a job:
// no job per event to insert, fetch and complete.
func TestABatchJobAppliesItsEventsWithoutAJobEach(t *testing.T) {
	e, _, _, db, rows := batchJobSetup(t, 4)
	require.NoError(t, runBatchJob(context.Background(), e, 1, rows...))
	require.Equal(t, map[string]int{"evt_0": 1, "evt_1": 1, "evt_2": 1, "evt_3": 1}, probes(t, db))
	for id, s := range statuses(t, db) {
		require.Equal(t, models.WebhookProcessed, s, id)
	}
	require.Empty(t, eventJobs(t, db), "no event needed a job of its own")
	var attempts []int
	require.NoError(t, db.Raw(`SELECT attempts FROM webhook_events`).Scan(&attempts).Error)
	for _, a := range attempts {
		require.Equal(t, 1, a, "the batch job's attempt is the event's")
	}

	// A second run (a retry, a rescue) finds every event done.
	require.NoError(t, runBatchJob(context.Background(), e, 2, rows...))
	require.Equal(t, map[string]int{"evt_0": 1, "evt_1": 1, "evt_2": 1, "evt_3": 1}, probes(t, db))
	require.Empty(t, eventJobs(t, db))
}

// One event that fails among good ones: the others are applied by the batch job,
// the failed one alone gets its own job (rolled back to its savepoint, still
// RECEIVED), which then applies it once by River's retries.
func TestABatchJobHandsOnlyItsFailedEventsToJobsOfTheirOwn(t *testing.T) {
	e, w, p, db, rows := batchJobSetup(t, 5)
	p.fail["evt_2"], p.panics["evt_4"] = true, true
	require.NoError(t, runBatchJob(context.Background(), e, 1, rows...))
	require.Equal(t, map[string]int{"evt_0": 1, "evt_1": 1, "evt_3": 1}, probes(t, db))
	require.Equal(t, []string{"evt_2", "evt_4"}, eventJobs(t, db), "a job for each event not applied, none for the others")
	require.Equal(t, models.WebhookReceived, statuses(t, db)["evt_2"])
	require.Equal(t, models.WebhookReceived, statuses(t, db)["evt_4"])
	// The batch job's try was the event's first attempt: recorded as its own job
	// records one, and its job makes the rest of the attempts, not more.
	var failed []struct {
		ProviderEventID string
		Attempts        int
		LastError       string
		Tried           int
		MaxAttempts     int
	}
	require.NoError(t, db.Raw(`SELECT e.provider_event_id, e.attempts, e.last_error, (j.args->>'tried')::int AS tried, j.max_attempts
		FROM webhook_events e JOIN river_job j ON j.args->>'eventId' = e.id::text ORDER BY 1`).Scan(&failed).Error)
	require.Len(t, failed, 2)
	require.Contains(t, failed[0].LastError, "refused by the test")
	require.Contains(t, failed[1].LastError, "panic while applying: applier bug")
	for _, f := range failed {
		require.Equal(t, 1, f.Attempts, f.ProviderEventID)
		require.Equal(t, 1, f.Tried, f.ProviderEventID)
		require.Equal(t, 2, f.MaxAttempts, "%s: three attempts in all, one made", f.ProviderEventID)
	}

	delete(p.fail, "evt_2")
	delete(p.panics, "evt_4")
	for _, r := range rows {
		// Every event's, to show the others are not applied again.
		require.NoError(t, w.Work(context.Background(), &river.Job[ProcessArgs]{
			JobRow: &rivertype.JobRow{ID: 2, Attempt: 1, MaxAttempts: 2}, Args: ProcessArgs{EventID: r.ID, Tried: 1}}))
	}
	require.Equal(t, map[string]int{"evt_0": 1, "evt_1": 1, "evt_2": 1, "evt_3": 1, "evt_4": 1}, probes(t, db))
	for id, s := range statuses(t, db) {
		require.Equal(t, models.WebhookProcessed, s, id)
	}
	var attempts int
	require.NoError(t, db.Raw(`SELECT attempts FROM webhook_events WHERE provider_event_id = 'evt_2'`).Scan(&attempts).Error)
	require.Equal(t, 2, attempts, "the batch job's attempt, then its own job's")
}

// A batch job whose events were applied and committed but which could not finish
// (the jobs it hands out refused, as a crash right after the apply commit would
// leave it): the retried batch job finds those events done, and applies only the
// one left, once.
func TestARetriedBatchJobFindsItsAppliedEventsDone(t *testing.T) {
	e, _, p, db, rows := batchJobSetup(t, 4)
	p.fail["evt_1"] = true
	restore := failJobs(t, db)
	require.Error(t, runBatchJob(context.Background(), e, 1, rows...), "evt_1's job was refused")
	restore()
	require.Equal(t, map[string]int{"evt_0": 1, "evt_2": 1, "evt_3": 1}, probes(t, db), "the applied events committed before the failure")
	require.Empty(t, eventJobs(t, db))

	delete(p.fail, "evt_1")
	require.NoError(t, runBatchJob(context.Background(), e, 2, rows...))
	require.Equal(t, map[string]int{"evt_0": 1, "evt_1": 1, "evt_2": 1, "evt_3": 1}, probes(t, db), "each once")
	require.Empty(t, eventJobs(t, db))
	var evt1 models.WebhookEvent
	require.NoError(t, db.Omit("payload").Take(&evt1, "provider_event_id = 'evt_1'").Error)
	require.Equal(t, 2, evt1.Attempts, "applied by the second attempt")
}

// A batch whose connection dies before its commit commits nothing: every event of
// it gets its own job, and each is then applied once.
func TestABatchJobCutInTheMiddleHandsEveryEventOut(t *testing.T) {
	e, w, p, db, rows := batchJobSetup(t, 3)
	p.kill["evt_1"] = true
	require.NoError(t, runBatchJob(context.Background(), e, 1, rows...))
	require.Empty(t, probes(t, db), "nothing of the cut batch committed")
	require.Equal(t, []string{"evt_0", "evt_1", "evt_2"}, eventJobs(t, db))

	delete(p.kill, "evt_1")
	for _, r := range rows {
		runEventJob(t, w, r, 1, false)
	}
	require.Equal(t, map[string]int{"evt_0": 1, "evt_1": 1, "evt_2": 1}, probes(t, db))
}

// An event rewritten (an erasure scrubbing it) after the batch job read it and
// before its batch locked it is not applied from the copy read first: its own job
// reads it again and applies that.
func TestABatchJobDoesNotApplyAnEventRewrittenUnderIt(t *testing.T) {
	e, w, p, db, rows := batchJobSetup(t, 3)
	var once sync.Once
	p.preparing = func() {
		once.Do(func() {
			assert.NoError(t, db.Exec(`UPDATE webhook_events SET outcome = 'rewritten' WHERE provider_event_id = 'evt_1'`).Error)
		})
	}
	require.NoError(t, runBatchJob(context.Background(), e, 1, rows...))
	require.Equal(t, map[string]int{"evt_0": 1, "evt_2": 1}, probes(t, db))
	require.Equal(t, []string{"evt_1"}, eventJobs(t, db), "the rewritten event is left to its own job")
	var tried, maxAttempts int
	require.NoError(t, db.Raw(`SELECT coalesce((args->>'tried')::int, 0), max_attempts FROM river_job`).Row().Scan(&tried, &maxAttempts))
	require.Equal(t, 0, tried, "not applied from a stale copy is no failed attempt")
	require.Equal(t, jobs.DefaultMaxAttempts, maxAttempts)

	runEventJob(t, w, rows[1], 1, false)
	require.Equal(t, map[string]int{"evt_0": 1, "evt_1": 1, "evt_2": 1}, probes(t, db))
}

// An attempt whose time ran out before its events were applied hands each of them
// to its own job and finishes: none is lost, none applied.
func TestABatchJobOutOfTimeHandsItsEventsOut(t *testing.T) {
	e, _, _, db, rows := batchJobSetup(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, runBatchJob(ctx, e, 1, rows...))
	require.Empty(t, probes(t, db))
	require.Equal(t, []string{"evt_0", "evt_1", "evt_2"}, eventJobs(t, db))
}

// An event applied by its batch job can be replayed by support like any other: the
// replay job applies it again, once.
func TestAnEventAppliedByItsBatchJobReplays(t *testing.T) {
	e, w, _, db, rows := batchJobSetup(t, 1)
	require.NoError(t, runBatchJob(context.Background(), e, 1, rows...))
	replayer := NewReplayer(db, e.queue, slog.New(slog.DiscardHandler))
	_, err := replayer.Replay(context.Background(), support, rows[0].ID, "resend the notice")
	require.NoError(t, err)
	require.Equal(t, []string{"evt_0"}, eventJobs(t, db))
	runEventJob(t, w, rows[0], 1, true)
	runEventJob(t, w, rows[0], 1, true)
	require.Equal(t, map[string]int{"evt_0": 2}, probes(t, db), "applied by the batch job, then once by the replay")
	var ev models.WebhookEvent
	require.NoError(t, db.Omit("payload").Take(&ev, "id = ?", rows[0].ID).Error)
	require.Equal(t, models.WebhookProcessed, ev.Status)
	require.Equal(t, "replayed: applied", *ev.Outcome)
}

// keyWatch wraps an applier and records, per ordering key, the events in the order
// applied and the most applied at once.
type keyWatch struct {
	Applier
	mu     sync.Mutex
	active map[string]int
	most   int
	order  map[string][]string
}

func (k *keyWatch) Apply(ctx context.Context, tx *gorm.DB, ev subscriptions.Event, p *subscriptions.Prepared) (subscriptions.Effect, error) {
	var sub struct {
		Subscription string `json:"subscription"`
	}
	_ = json.Unmarshal(ev.Object, &sub)
	k.mu.Lock()
	k.active[sub.Subscription]++
	k.most = max(k.most, k.active[sub.Subscription])
	k.order[sub.Subscription] = append(k.order[sub.Subscription], ev.ProviderEventID)
	k.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // room for another committer to overlap
	defer func() {
		k.mu.Lock()
		k.active[sub.Subscription]--
		k.mu.Unlock()
	}()
	return k.Applier.Apply(ctx, tx, ev, p)
}

// Two batch jobs at once, each listing events of the same two subscriptions out of
// seq order: each event is applied once, a subscription's events of one batch in
// seq order, and never two of one subscription at once.
func TestBatchJobsOfOneSubscriptionApplyInOrderOneAtATime(t *testing.T) {
	_, p, db, _ := applySetup(t, 0)
	queue, err := jobs.NewInserter(db, 0, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	rb := newBatcher(db, queue, 1, DefaultMaxBatch)
	t.Cleanup(rb.close)
	var rows []models.WebhookEvent
	for i := range 8 {
		id := fmt.Sprintf("evt_%d", i)
		obj := webhooktest.Object{"id": "in_" + id, "object": "invoice", "subscription": fmt.Sprintf("sub_%d", i%2)}
		body := webhooktest.Event(id, "invoice.paid", time.Unix(1_700_000_000, 0), obj, nil)
		var ev envelope
		ev.ID, ev.Object, ev.Type, ev.APIVersion, ev.Created = id, "event", "invoice.paid", APIVersion, 1_700_000_000
		ev.Data.Object.ID = "in_" + id
		_, err := rb.store(context.Background(), ev, body)
		require.NoError(t, err)
		var row models.WebhookEvent
		require.NoError(t, db.Omit("payload").Take(&row, "provider_event_id = ?", id).Error)
		rows = append(rows, row)
	}
	require.NoError(t, ownerOf(t, db).Exec(`DELETE FROM river_job`).Error)
	watch := &keyWatch{Applier: p, active: map[string]int{}, order: map[string][]string{}}
	w := NewWorker(db, watch, NewMetrics(prometheus.NewRegistry(), nil), slog.New(slog.DiscardHandler), nil)
	e := NewEnqueueWorker(db, queue, w.metrics, nil).ApplyWith(w)

	// Batch one has the later events of each subscription, listed last first;
	// batch two the earlier ones, likewise.
	one := []models.WebhookEvent{rows[7], rows[6], rows[5], rows[4]}
	two := []models.WebhookEvent{rows[3], rows[2], rows[1], rows[0]}
	var wg sync.WaitGroup
	for _, batch := range [][]models.WebhookEvent{one, two} {
		wg.Go(func() { assert.NoError(t, runBatchJob(context.Background(), e, 1, batch...)) })
	}
	wg.Wait()
	want := map[string]int{}
	for _, r := range rows {
		want[r.ProviderEventID] = 1
	}
	require.Equal(t, want, probes(t, db), "each event once")
	require.Empty(t, eventJobs(t, db))
	require.Equal(t, 1, watch.most, "never two events of one subscription at once")
	for sub, order := range watch.order {
		seqOf := map[string]int64{}
		for _, r := range rows {
			seqOf[r.ProviderEventID] = r.Seq
		}
		for _, batch := range [][]models.WebhookEvent{one, two} {
			var inBatch []int64
			for _, id := range order {
				if slices.ContainsFunc(batch, func(r models.WebhookEvent) bool { return r.ProviderEventID == id }) {
					inBatch = append(inBatch, seqOf[id])
				}
			}
			require.True(t, slices.IsSorted(inBatch), "%s: a batch's events in seq order, got seqs %v", sub, inBatch)
		}
	}
}

// When the batch job's try was the last attempt an event may have (attempts of one
// allowed), the event is FAILED with its error, as its own job's last attempt
// leaves it, and gets no job; the others are applied.
func TestABatchJobsLastAttemptFailsTheEvent(t *testing.T) {
	e, w, p, db, rows := batchJobSetup(t, 2)
	p.fail["evt_1"] = true
	ids := []string{rows[0].ID, rows[1].ID}
	require.NoError(t, e.Work(context.Background(), &river.Job[EnqueueArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 1},
		Args: EnqueueArgs{EventIDs: ids}}))
	require.Equal(t, map[string]int{"evt_0": 1}, probes(t, db))
	require.Empty(t, eventJobs(t, db))
	var ev models.WebhookEvent
	require.NoError(t, db.Omit("payload").Take(&ev, "id = ?", rows[1].ID).Error)
	require.Equal(t, models.WebhookFailed, ev.Status)
	require.Equal(t, 1, ev.Attempts)
	require.Contains(t, *ev.LastError, "refused by the test")
	require.Equal(t, 1.0, testutil.ToFloat64(w.metrics.processed.WithLabelValues("invoice.paid", "failed")))
	require.Zero(t, testutil.ToFloat64(w.metrics.processed.WithLabelValues("invoice.paid", "retry")))
}

// An attempt whose time runs out while its events wait for a batch (the committers
// busy) hands them out as failed attempts, as their own jobs' attempts would have
// failed waiting: recorded, tried, and no more attempts in all.
func TestABatchJobOutOfTimeInTheQueueCountsTheAttempt(t *testing.T) {
	e, w, p, db, rows := batchJobSetup(t, applyCommitters+2)
	p.begun = make(chan string, 8)
	var held sync.WaitGroup
	defer held.Wait() // after the gates close
	for _, r := range rows[:applyCommitters] {
		gate := make(chan struct{})
		p.gate[r.ProviderEventID] = gate
		defer close(gate)
		it := itemFor(t, db, r, "")
		held.Go(func() { w.apply(it) })
		<-p.begun // each committer holds one
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.preparing = cancel // the attempt ends once its events are prepared
	require.NoError(t, runBatchJob(ctx, e, 1, rows[applyCommitters:]...))
	var handed []struct {
		Attempts    int
		Tried       int
		MaxAttempts int
	}
	require.NoError(t, db.Raw(`SELECT e.attempts, (j.args->>'tried')::int AS tried, j.max_attempts
		FROM webhook_events e JOIN river_job j ON j.args->>'eventId' = e.id::text`).Scan(&handed).Error)
	require.Len(t, handed, 2, "both queued events handed out")
	for _, h := range handed {
		require.Equal(t, struct{ Attempts, Tried, MaxAttempts int }{1, 1, 2}, struct{ Attempts, Tried, MaxAttempts int }(h))
	}
}
