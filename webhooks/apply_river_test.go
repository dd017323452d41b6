package webhooks

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
)

// retryNow retries a failed job at once.
type retryNow struct{}

func (retryNow) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

// Through a real River client, whose jobs are completed inside the batch
// (together, outside the savepoints, after the events are marked applied): in the
// batch of the queued events, the event that fails has its savepoint rolled back,
// so River retries its job, which then applies it once; the others' jobs are
// completed once, at their first attempt, by the batch's own statement, and each event is
// applied once. The jobs the applier enqueues are inserted by the batch too, after
// the savepoints: once per event applied, none for the attempt rolled back.
func TestABatchUnderRiverCompletesOnlyTheJobsOfAppliedEvents(t *testing.T) {
	_, db := riverBatch(t, func(p *probeApplier, db *gorm.DB) {
		p.fail["evt_5"] = true
		q, err := jobs.NewInserter(db, 0, nil)
		require.NoError(t, err)
		p.followUps = q
	}, func(p *probeApplier, _ *gorm.DB) { p.fail["evt_5"] = false })
	requireRetried(t, db, []string{"evt_5"})
	committed := []string{"evt_4", "evt_6", "evt_7"}
	require.Equal(t, int64(1), distinctVersions(t, db, committed...), "the others committed together")
	// A row written in a savepoint carries the savepoint's own id: one completion
	// per event would leave each job row with another version than its event's.
	var versions int64
	require.NoError(t, db.Raw(`SELECT count(DISTINCT v) FROM (
			SELECT xmin::text AS v FROM webhook_events WHERE provider_event_id IN ?
			UNION ALL
			SELECT j.xmin::text FROM river_job j JOIN webhook_events e ON e.id::text = j.args->>'eventId'
			WHERE e.provider_event_id IN ?) AS written`, committed, committed).Scan(&versions).Error)
	require.Equal(t, int64(1), versions, "the jobs were completed by the statement that marked their events applied, outside the savepoints")

	var followUps []struct {
		EventID string
		N       int
		Written int
	}
	require.NoError(t, db.Raw(`SELECT j.args->>'eventId' AS event_id, count(*) AS n,
			count(*) FILTER (WHERE j.xmin = e.xmin) AS written
		FROM river_job j JOIN webhook_events e ON e.provider_event_id = j.args->>'eventId'
		WHERE j.kind = ? GROUP BY 1 ORDER BY 1`, followUpArgs{}.Kind()).Scan(&followUps).Error)
	require.Len(t, followUps, 8, "a follow-up per event")
	for _, f := range followUps {
		require.Equal(t, 1, f.N, "%s: one follow-up, none of the attempt rolled back", f.EventID)
		if slices.Contains(committed, f.EventID) {
			require.Equal(t, 1, f.Written, "%s: inserted with the batch's own writes, outside the savepoints", f.EventID)
		}
	}
}

// A batch whose commit fails after every event's job was completed in it: the
// completions go with the commit, River retries every job of the batch, and each
// event is applied once.
func TestABatchUnderRiverWhoseCommitFailsRetriesEveryJob(t *testing.T) {
	_, db := riverBatch(t, func(_ *probeApplier, db *gorm.DB) {
		// A deferred check fails the commit of the transaction that applies evt_6.
		owner := ownerOf(t, db)
		require.NoError(t, owner.Exec(`CREATE TABLE probe_allowed (event_id text PRIMARY KEY)`).Error)
		require.NoError(t, owner.Exec(`INSERT INTO probe_allowed SELECT 'evt_' || i FROM generate_series(0, 7) AS i WHERE i <> 6`).Error)
		require.NoError(t, owner.Exec(`ALTER TABLE apply_probe ADD CONSTRAINT allowed FOREIGN KEY (event_id)
			REFERENCES probe_allowed DEFERRABLE INITIALLY DEFERRED`).Error)
	}, func(_ *probeApplier, db *gorm.DB) {
		require.NoError(t, ownerOf(t, db).Exec(`INSERT INTO probe_allowed VALUES ('evt_6')`).Error)
	})
	var queued []string // the batch: the events queued behind the held committers
	for i := applyCommitters; i < 8; i++ {
		queued = append(queued, fmt.Sprintf("evt_%d", i))
	}
	requireRetried(t, db, queued)
}

// riverBatch stores eight events and works them with a real River client: the
// first held in Apply, one per committer, while the others (from evt_4 on at
// least) queue behind them; then it lets them go, so that the queued ones are
// applied as one batch. arm runs before,
// disarm once a job has failed an attempt. It waits until every job is completed
// and every event applied once.
func riverBatch(t *testing.T, arm, disarm func(*probeApplier, *gorm.DB)) (*probeApplier, *gorm.DB) {
	t.Helper()
	w, p, db, rows := applySetup(t, 8)
	// The route's own jobs would hand out the events; here each event gets its job directly.
	require.NoError(t, ownerOf(t, db).Exec(`DELETE FROM river_job`).Error)
	p.begun = make(chan string, 32)
	var holds []chan struct{}
	for _, r := range rows[:applyCommitters] {
		h := make(chan struct{})
		holds = append(holds, h)
		p.gate[r.ProviderEventID] = h
	}
	arm(p, db)

	// Held batches must not run out of time on a slow machine: the test decides
	// when they end, not a deadline.
	w.batchTimeout = 2 * time.Minute
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client, err := jobs.NewClient(db, workers, jobs.Config{PollInterval: 20 * time.Millisecond, RetryPolicy: retryNow{},
		JobTimeout: 2 * time.Minute, RescueStuckJobsAfter: 4 * time.Minute}, w.logger)
	require.NoError(t, err)
	ctx := context.Background()
	insert := func(rows []models.WebhookEvent) {
		for _, r := range rows {
			_, err := client.Insert(ctx, ProcessArgs{EventID: r.ID}, nil)
			require.NoError(t, err)
		}
	}
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { _ = jobs.Stop(client, 10*time.Second) })
	release := sync.OnceFunc(func() {
		for _, h := range holds {
			close(h)
		}
	})
	t.Cleanup(release) // before Stop: a failed test must not leave Apply held

	// One at a time, each begun before the next is inserted, so that each is the
	// lone event of its committer's batch (two arriving together would share one).
	for _, r := range rows[:applyCommitters] {
		insert([]models.WebhookEvent{r})
		select {
		case id := <-p.begun:
			require.Equal(t, r.ProviderEventID, id)
		case <-time.After(time.Minute):
			t.Fatalf("%s was not begun", r.ProviderEventID)
		}
	}
	insert(rows[applyCommitters:])
	require.Eventually(t, func() bool {
		w.queue.mu.Lock()
		defer w.queue.mu.Unlock()
		return len(w.queue.pending) == len(rows)-applyCommitters
	}, time.Minute, 5*time.Millisecond, "the later events queue behind the held committers")
	release()
	require.Eventually(t, func() bool {
		var n int64
		require.NoError(t, db.Raw(`SELECT count(*) FROM river_job WHERE errors IS NOT NULL`).Scan(&n).Error)
		return n > 0
	}, time.Minute, 10*time.Millisecond, "an attempt failed")
	p.mu.Lock()
	disarm(p, db)
	p.mu.Unlock()

	require.Eventually(t, func() bool {
		var n int64
		require.NoError(t, db.Raw(`SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&n).Error)
		return n == int64(len(rows))
	}, time.Minute, 10*time.Millisecond)
	want := map[string]int{}
	for _, r := range rows {
		want[r.ProviderEventID] = 1
	}
	require.Equal(t, want, probes(t, db), "each event applied once")
	for id, s := range statuses(t, db) {
		require.Equal(t, models.WebhookProcessed, s, id)
	}
	return p, db
}

// requireRetried checks that the jobs of the events retried ran again after
// failed attempts, and every other job was completed at its first attempt.
func requireRetried(t *testing.T, db *gorm.DB, retried []string) {
	t.Helper()
	var attempts []struct {
		ID      string
		Attempt int
		Errors  int
	}
	require.NoError(t, db.Raw(`SELECT e.provider_event_id AS id, j.attempt, coalesce(array_length(j.errors, 1), 0) AS errors
		FROM river_job j JOIN webhook_events e ON e.id::text = j.args->>'eventId' ORDER BY 1`).Scan(&attempts).Error)
	require.Len(t, attempts, 8)
	for _, a := range attempts {
		if slices.Contains(retried, a.ID) {
			require.GreaterOrEqual(t, a.Attempt, 2, "%s: its job ran again", a.ID)
			require.Equal(t, a.Attempt-1, a.Errors, "%s: every attempt but the last failed", a.ID)
			continue
		}
		require.Equal(t, 1, a.Attempt, "%s: its job was completed in the batch, once", a.ID)
		require.Zero(t, a.Errors, a.ID)
	}
}

// distinctVersions counts the transactions that last wrote the events.
func distinctVersions(t *testing.T, db *gorm.DB, ids ...string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Raw(`SELECT count(DISTINCT xmin::text) FROM webhook_events WHERE provider_event_id IN ?`, ids).Scan(&n).Error)
	return n
}
