package webhooks

import (
	"context"
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

// handedOut is the job a batch job gave an event it could not apply.
type handedOut struct {
	Tried       int
	MaxAttempts int
	ScheduledAt time.Time
	CreatedAt   time.Time
}

// handedOutJob reads the one ProcessArgs job of the event.
func handedOutJob(t *testing.T, db *gorm.DB, row models.WebhookEvent) handedOut {
	t.Helper()
	var h []handedOut
	require.NoError(t, db.Raw(`SELECT coalesce((args->>'tried')::int, 0) AS tried, max_attempts, scheduled_at, created_at
		FROM river_job WHERE kind = ? AND args->>'eventId' = ?`, ProcessArgs{}.Kind(), row.ID).Scan(&h).Error)
	require.Len(t, h, 1)
	return h[0]
}

// A batch job whose EventIDs name an event twice tries it once: one failed
// attempt counted and recorded, one job for the rest.
func TestReviewABatchJobNamingAnEventTwiceTriesItOnce(t *testing.T) {
	e, w, p, db, rows := batchJobSetup(t, 2)
	p.fail["evt_1"] = true
	require.NoError(t, runBatchJob(context.Background(), e, 1, rows[0], rows[1], rows[1], rows[0]))
	require.Equal(t, map[string]int{"evt_0": 1}, probes(t, db))
	require.Equal(t, []string{"evt_1"}, eventJobs(t, db), "one job for the event, not one per mention")
	require.Equal(t, 1.0, testutil.ToFloat64(w.metrics.processed.WithLabelValues("invoice.paid", "retry")), "one failed attempt")
}

// An event that fails on every attempt, first in its batch job and then in the job
// it was handed: MaxAttempts attempts in all, its attempts column says so, it ends
// FAILED, and the metric counts each failed attempt once.
func TestReviewAnEventFailingEveryAttemptIsTriedMaxAttemptsInAll(t *testing.T) {
	e, w, p, db, rows := batchJobSetup(t, 1)
	p.fail["evt_0"] = true
	const maxAttempts = 4
	require.NoError(t, e.Work(context.Background(), &river.Job[EnqueueArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: maxAttempts},
		Args: EnqueueArgs{EventIDs: []string{rows[0].ID}}}))
	h := handedOutJob(t, db, rows[0])
	require.Equal(t, 1, h.Tried)
	for a := 1; a <= h.MaxAttempts; a++ {
		err := w.Work(context.Background(), &river.Job[ProcessArgs]{JobRow: &rivertype.JobRow{ID: 2, Attempt: a, MaxAttempts: h.MaxAttempts},
			Args: ProcessArgs{EventID: rows[0].ID, Tried: h.Tried}})
		require.Error(t, err)
	}
	require.Equal(t, maxAttempts, h.Tried+h.MaxAttempts)
	var ev models.WebhookEvent
	require.NoError(t, db.Omit("payload").Take(&ev, "id = ?", rows[0].ID).Error)
	require.Equal(t, models.WebhookFailed, ev.Status)
	require.Equal(t, maxAttempts, ev.Attempts)
	require.Equal(t, float64(maxAttempts-1), testutil.ToFloat64(w.metrics.processed.WithLabelValues("invoice.paid", "retry")))
	require.Equal(t, 1.0, testutil.ToFloat64(w.metrics.processed.WithLabelValues("invoice.paid", "failed")))
	require.Empty(t, probes(t, db))
}

// An event whose try in its batch job failed waits River's backoff before its next
// attempt, as it would have after a failed attempt of its own job, and each later
// attempt waits the backoff of the event's attempt, not of its job's: the time an
// event keeps being retried (Stripe down) is what JOB_MAX_ATTEMPTS promises.
func TestReviewAHandedOutEventWaitsTheBackoffOfItsOwnAttempts(t *testing.T) {
	e, w, p, db, rows := batchJobSetup(t, 1)
	p.fail["evt_0"] = true
	require.NoError(t, runBatchJob(context.Background(), e, 1, rows...))
	h := handedOutJob(t, db, rows[0])
	require.True(t, h.ScheduledAt.After(h.CreatedAt), "the second attempt waits the first one's backoff")

	// Its job's first failure is the event's second: River's backoff for two
	// errors is attempt⁴ = 16 s give or take its jitter, not the 1 s of one.
	// River asks with the errors of the attempts before this one: none.
	job := &river.Job[ProcessArgs]{JobRow: &rivertype.JobRow{ID: 2, Attempt: 1, MaxAttempts: h.MaxAttempts},
		Args: ProcessArgs{EventID: rows[0].ID, Tried: h.Tried}}
	next := w.NextRetry(job)
	require.False(t, next.IsZero())
	require.True(t, next.After(time.Now().Add(8*time.Second)), "the backoff of the event's second attempt, got %s", time.Until(next))
}

// A Prepare that panics costs only its event: handed out with its try counted, the
// others applied.
func TestReviewAPanicInPrepareCostsOnlyItsEvent(t *testing.T) {
	e, w, _, db, rows := batchJobSetup(t, 3)
	w.applier = panickyPrepare{Applier: w.applier, id: "evt_1"}
	require.NoError(t, runBatchJob(context.Background(), e, 1, rows...))
	require.Equal(t, map[string]int{"evt_0": 1, "evt_2": 1}, probes(t, db))
	require.Equal(t, []string{"evt_1"}, eventJobs(t, db))
	require.Equal(t, 1, handedOutJob(t, db, rows[1]).Tried)
	var ev models.WebhookEvent
	require.NoError(t, db.Omit("payload").Take(&ev, "id = ?", rows[1].ID).Error)
	require.Equal(t, models.WebhookReceived, ev.Status)
	require.Contains(t, *ev.LastError, "panic while preparing")
}

// panickyPrepare panics in Prepare for one event.
type panickyPrepare struct {
	Applier
	id string
}

func (p panickyPrepare) Prepare(ctx context.Context, ev subscriptions.Event) (*subscriptions.Prepared, error) {
	if ev.ProviderEventID == p.id {
		panic("prepare bug")
	}
	return p.Applier.Prepare(ctx, ev)
}

// Two runs of one batch job at once (a rescue racing the attempt it rescued, on
// another replica): each event is applied once, and none is handed a job.
func TestReviewTwoRunsOfOneBatchJobApplyEachEventOnce(t *testing.T) {
	e, _, _, db, rows := batchJobSetup(t, 6)
	var wg sync.WaitGroup
	for a := range 2 {
		wg.Go(func() { assert.NoError(t, runBatchJob(context.Background(), e, a+1, rows...)) })
	}
	wg.Wait()
	want := map[string]int{}
	for _, r := range rows {
		want[r.ProviderEventID] = 1
	}
	require.Equal(t, want, probes(t, db))
	require.Empty(t, eventJobs(t, db))
}

// A batch job whose events were deleted, or FAILED already, leaves them as they
// are: no job, no attempt, no count.
func TestReviewABatchJobLeavesDeletedAndFailedEventsAlone(t *testing.T) {
	e, w, _, db, rows := batchJobSetup(t, 3)
	owner := ownerOf(t, db)
	require.NoError(t, owner.Exec(`DELETE FROM webhook_events WHERE id = ?`, rows[0].ID).Error)
	require.NoError(t, owner.Exec(`UPDATE webhook_events SET status = ?, attempts = 3 WHERE id = ?`, models.WebhookFailed, rows[1].ID).Error)
	require.NoError(t, runBatchJob(context.Background(), e, 1, rows...))
	require.Equal(t, map[string]int{"evt_2": 1}, probes(t, db))
	require.Empty(t, eventJobs(t, db))
	var ev models.WebhookEvent
	require.NoError(t, db.Omit("payload").Take(&ev, "id = ?", rows[1].ID).Error)
	require.Equal(t, models.WebhookFailed, ev.Status)
	require.Equal(t, 3, ev.Attempts)
	require.Zero(t, testutil.ToFloat64(w.metrics.processed.WithLabelValues("invoice.paid", "retry")))
	require.Zero(t, testutil.ToFloat64(w.metrics.processed.WithLabelValues("invoice.paid", "failed")))
}

// subscriptionEvents stores n invoice events of subscription sub_1 through a
// batcher, in seq order, and leaves no job: the test runs the batch job.
func subscriptionEvents(t *testing.T, db *gorm.DB, queue *jobs.Client, n int) []models.WebhookEvent {
	t.Helper()
	rb := newBatcher(db, queue, 1, DefaultMaxBatch)
	t.Cleanup(rb.close)
	var rows []models.WebhookEvent
	for i := range n {
		id := fmt.Sprintf("evt_%03d", i)
		obj := webhooktest.Object{"id": "in_" + id, "object": "invoice", "subscription": "sub_1"}
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
	return rows
}

// A batch job listing more events of one subscription than a batch holds, last
// first: they are applied in seq order, one batch after another, each once.
func TestReviewABatchJobAppliesManyEventsOfOneSubscriptionInSeqOrder(t *testing.T) {
	_, p, db, _ := applySetup(t, 0)
	queue, err := jobs.NewInserter(db, 0, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	const n = 3*maxApplyBatch + 4
	rows := subscriptionEvents(t, db, queue, n)
	watch := &keyWatch{Applier: p, active: map[string]int{}, order: map[string][]string{}}
	w := NewWorker(db, watch, NewMetrics(prometheus.NewRegistry(), nil), slog.New(slog.DiscardHandler), nil)
	e := NewEnqueueWorker(db, queue, w.metrics, nil).ApplyWith(w)
	reversed := slices.Clone(rows)
	slices.Reverse(reversed)
	require.NoError(t, runBatchJob(context.Background(), e, 1, reversed...))
	require.Len(t, probes(t, db), n)
	require.Empty(t, eventJobs(t, db))
	seqOf := map[string]int64{}
	for _, r := range rows {
		seqOf[r.ProviderEventID] = r.Seq
	}
	var seqs []int64
	for _, id := range watch.order["sub_1"] {
		seqs = append(seqs, seqOf[id])
	}
	require.Len(t, seqs, n)
	require.True(t, slices.IsSorted(seqs), "applied in seq order, got %v", seqs)
}

// The last attempt of a batch job that tried an event for the last time but could
// not commit what it owed (another event's job refused): the events it leaves are
// FAILED, and each FAILED event is counted once.
func TestReviewABatchJobsLastAttemptCountsEachFailedEventOnce(t *testing.T) {
	e, w, p, db, rows := batchJobSetup(t, 2)
	p.fail["evt_0"] = true
	var once sync.Once
	p.preparing = func() {
		once.Do(func() {
			assert.NoError(t, db.Exec(`UPDATE webhook_events SET outcome = 'rewritten' WHERE provider_event_id = 'evt_1'`).Error)
		})
	}
	restore := failJobs(t, db)
	defer restore()
	require.Error(t, e.Work(context.Background(), &river.Job[EnqueueArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 1},
		Args: EnqueueArgs{EventIDs: []string{rows[0].ID, rows[1].ID}}}))
	for id, s := range statuses(t, db) {
		require.Equal(t, models.WebhookFailed, s, id)
	}
	require.Equal(t, 2.0, testutil.ToFloat64(w.metrics.processed.WithLabelValues("invoice.paid", "failed")), "two events FAILED")
}

// The batch job's attempt ends while its first batch is being applied and the rest
// of its events (the same subscription's, so not in another batch at once) wait in
// the queue: the batch is waited for and commits, the waiting events are withdrawn
// and each handed a job, their wait counted as the attempt it would have been for
// jobs of their own (TestABatchJobOutOfTimeInTheQueueCountsTheAttempt), and the
// batch job completes.
func TestReviewABatchJobEndingMidBatchWaitsForItsBatchAndHandsOutTheRest(t *testing.T) {
	_, p, db, _ := applySetup(t, 0)
	queue, err := jobs.NewInserter(db, 0, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	const n = maxApplyBatch + 5
	rows := subscriptionEvents(t, db, queue, n)
	gate := make(chan struct{})
	p.gate["evt_000"], p.begun = gate, make(chan string, n)
	w := NewWorker(db, p, NewMetrics(prometheus.NewRegistry(), nil), slog.New(slog.DiscardHandler), nil)
	e := NewEnqueueWorker(db, queue, w.metrics, nil).ApplyWith(w)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runBatchJob(ctx, e, 1, rows...) }()
	require.Equal(t, "evt_000", <-p.begun)
	cancel()
	close(gate)
	require.NoError(t, <-done)

	applied := probes(t, db)
	require.Len(t, applied, maxApplyBatch, "the batch taken before the end commits")
	var left []string
	for _, r := range rows {
		if applied[r.ProviderEventID] == 0 {
			left = append(left, r.ProviderEventID)
			h := handedOutJob(t, db, r)
			require.Equal(t, 1, h.Tried, r.ProviderEventID)
			require.Equal(t, 2, h.MaxAttempts, r.ProviderEventID) // the batch job's 3 less the one spent
		}
	}
	require.Equal(t, left, eventJobs(t, db))
	require.Len(t, left, n-maxApplyBatch)
	require.EqualValues(t, n-maxApplyBatch, testutil.ToFloat64(w.metrics.processed.WithLabelValues("invoice.paid", "retry")))
	w.queue.mu.Lock()
	defer w.queue.mu.Unlock()
	require.Empty(t, w.queue.pending, "nothing left queued")
	require.Empty(t, w.queue.busy)
}

// Many changes of one subscription delivered newest first, so that their seqs run
// opposite to their times, applied by one batch job through the real applier: the
// newest change is the state that stays, every event is done, none needs a job.
func TestReviewABatchJobOfManyChangesOfOneSubscriptionLeavesTheNewest(t *testing.T) {
	db := testDB(t)
	subscriptionID := sameSecondFixture(t, db)
	queue, err := jobs.NewInserter(db, 0, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	rb := newBatcher(db, queue, 1, DefaultMaxBatch)
	t.Cleanup(rb.close)
	const n = 2*maxApplyBatch + 3
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var ids []string
	for i := n - 1; i >= 0; i-- {
		created := base.Add(time.Duration(i) * time.Second)
		sub := webhooktest.Subscription{ID: "sub_same", Customer: "cus_same", Price: "price_same", Amount: 2400, Currency: "usd",
			PeriodStart: base.AddDate(0, 0, -3), PeriodEnd: base.AddDate(0, 1, -3), Status: "active"}
		if i == n-1 {
			sub.Status = "past_due"
		}
		id := fmt.Sprintf("evt_upd_%03d", i)
		var ev envelope
		ev.ID, ev.Object, ev.Type, ev.APIVersion, ev.Created = id, "event", "customer.subscription.updated", APIVersion, created.Unix()
		ev.Data.Object.ID = "sub_same"
		_, err := rb.store(context.Background(), ev, webhooktest.Event(id, "customer.subscription.updated", created, sub.Object(), nil))
		require.NoError(t, err)
		var rowID string
		require.NoError(t, db.Raw(`SELECT id FROM webhook_events WHERE provider_event_id = ?`, id).Scan(&rowID).Error)
		ids = append(ids, rowID)
	}
	require.NoError(t, ownerOf(t, db).Exec(`DELETE FROM river_job`).Error)
	logger := slog.New(slog.DiscardHandler)
	w := NewWorker(db, subscriptions.NewSyncer(db, nil, queue, subscriptions.NewSyncMetrics(prometheus.NewRegistry()), logger),
		NewMetrics(prometheus.NewRegistry(), nil), logger, nil)
	e := NewEnqueueWorker(db, queue, w.metrics, nil).ApplyWith(w)
	require.NoError(t, e.Work(context.Background(), &river.Job[EnqueueArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 3},
		Args: EnqueueArgs{EventIDs: ids}}))

	var status string
	require.NoError(t, db.Raw(`SELECT status FROM subscriptions WHERE id = ?`, subscriptionID).Scan(&status).Error)
	require.Equal(t, string(models.SubscriptionPastDue), status, "the newest change stays")
	for id, s := range statuses(t, db) {
		require.Contains(t, []models.WebhookEventStatus{models.WebhookProcessed, models.WebhookIgnored}, s, id)
	}
	require.Empty(t, eventJobs(t, db))
}
