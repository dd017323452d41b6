package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/jobs"
)

type longArgs struct {
	Run time.Duration `json:"run"`
}

func (longArgs) Kind() string { return "test_long" }

// longWorker takes its job's Run to finish and allows itself an hour, as a
// reconciliation of a large account would.
type longWorker struct {
	river.WorkerDefaults[longArgs]
	started, finished atomic.Int64
}

func (w *longWorker) Timeout(*river.Job[longArgs]) time.Duration { return time.Hour }

func (w *longWorker) Work(ctx context.Context, job *river.Job[longArgs]) error {
	w.started.Add(1)
	select {
	case <-time.After(job.Args.Run):
		w.finished.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestLeased shows a long job is never run twice while it lives, however far past
// the rescue window, and that the job of a dead process is rescued after the rescue
// window, not after the job's own hour.
func TestLeased(t *testing.T) {
	t.Parallel()
	const rescueAfter = 2 * time.Second
	setup := func(t *testing.T) (*jobs.Client, *longWorker, func() int64) {
		db := dbtest.New(t)
		sqlDB, err := db.DB()
		require.NoError(t, err)
		w := &longWorker{}
		workers := river.NewWorkers()
		river.AddWorker(workers, jobs.Leased(river.Worker[longArgs](w), sqlDB, rescueAfter))
		c, err := jobs.NewClient(db, workers, jobs.Config{
			PollInterval: 20 * time.Millisecond, RescueStuckJobsAfter: rescueAfter, JobTimeout: time.Second,
		}, nil)
		require.NoError(t, err)
		completed := func() int64 {
			var n int64
			require.NoError(t, db.Raw(`SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&n).Error)
			return n
		}
		return c, w, completed
	}

	t.Run("a live job past the rescue window runs once", func(t *testing.T) {
		t.Parallel()
		c, w, completed := setup(t)
		_, err := c.Insert(context.Background(), longArgs{Run: 4 * rescueAfter}, nil)
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background()))
		t.Cleanup(func() { _ = jobs.Stop(c, 5*time.Second) })
		require.Eventually(t, func() bool { return completed() == 1 }, 60*time.Second, 50*time.Millisecond)
		require.Equal(t, int64(1), w.started.Load(), "renewed, the claim was never rescued")
	})

	t.Run("a dead process's job is rescued after the rescue window", func(t *testing.T) {
		t.Parallel()
		c, w, completed := setup(t)
		res, err := c.Insert(context.Background(), longArgs{Run: time.Millisecond}, nil)
		require.NoError(t, err)
		// As a process that died during the first attempt leaves it.
		err = c.Driver().GetExecutor().Exec(context.Background(),
			`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now() - interval '3 seconds', attempted_by = '{dead-client}' WHERE id = $1`,
			res.Job.ID)
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background()))
		t.Cleanup(func() { _ = jobs.Stop(c, 5*time.Second) })
		// River's rescuer looks every 30 s; the job's own hour does not hold it.
		require.Eventually(t, func() bool { return completed() == 1 }, 60*time.Second, 50*time.Millisecond)
		require.Equal(t, int64(1), w.finished.Load())
	})
}

type shortArgs struct{}

func (shortArgs) Kind() string { return "test_short" }

type shortWorker struct {
	river.WorkerDefaults[shortArgs]
	ran atomic.Int64
}

func (w *shortWorker) Work(context.Context, *river.Job[shortArgs]) error {
	w.ran.Add(1)
	return nil
}

// A job whose process died on its third attempt runs again as soon as it is
// rescued, not after the 81 s that River's backoff gives a third failure.
func TestRescuedJobRunsAtOnce(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	w := &shortWorker{}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	c, err := jobs.NewClient(db, workers, jobs.Config{PollInterval: 20 * time.Millisecond, RescueStuckJobsAfter: 2 * time.Second, JobTimeout: time.Second}, nil)
	require.NoError(t, err)
	res, err := c.Insert(context.Background(), shortArgs{}, nil)
	require.NoError(t, err)
	err = c.Driver().GetExecutor().Exec(context.Background(), `UPDATE river_job SET state = 'running', attempt = 3,
		attempted_at = now() - interval '3 seconds', attempted_by = '{dead-client}',
		errors = ARRAY['{"at":"2026-01-01T00:00:00Z","attempt":1,"error":"x","trace":""}'::jsonb,
		               '{"at":"2026-01-01T00:00:01Z","attempt":2,"error":"x","trace":""}'::jsonb]
		WHERE id = $1`, res.Job.ID)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { _ = jobs.Stop(c, 5*time.Second) })
	require.Eventually(t, func() bool { return w.ran.Load() == 1 }, 60*time.Second, 50*time.Millisecond)
}

func TestNewClientRefusesATimeoutAsLongAsTheRescueWindow(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	_, err := jobs.NewClient(db, river.NewWorkers(), jobs.Config{JobTimeout: 20 * time.Second, RescueStuckJobsAfter: 20 * time.Second}, nil)
	require.ErrorContains(t, err, "must be shorter than RescueStuckJobsAfter")
	_, err = jobs.NewClient(db, river.NewWorkers(), jobs.Config{JobTimeout: time.Minute}, nil)
	require.Error(t, err, "a timeout past the default window is refused too")
}
