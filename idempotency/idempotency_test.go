package idempotency_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/idempotency"
)

type result struct {
	ID    string `json:"id"`
	Count int64  `json:"count"`
}

type input struct {
	PlanID string `json:"planId"`
}

func setup(t *testing.T) (*idempotency.Store, func(context.Context) (result, error), *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	fn := func(context.Context) (result, error) {
		n := calls.Add(1)
		time.Sleep(20 * time.Millisecond) // widen race windows
		return result{ID: "sub_1", Count: n}, nil
	}
	return idempotency.NewStore(dbtest.New(t)), fn, &calls
}

func TestReplayReturnsTheFirstResultWithoutASecondEffect(t *testing.T) {
	t.Parallel()
	s, fn, calls := setup(t)
	ctx := context.Background()
	scope := idempotency.Scope{Principal: "iss|alice", Operation: "createSubscription", Key: "k1"}

	first, replayed, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, fn)
	require.NoError(t, err)
	require.False(t, replayed)
	second, replayed, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, fn)
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, first, second)
	require.EqualValues(t, 1, calls.Load())

	_, _, err = idempotency.Run(ctx, s, scope, input{PlanID: "p2"}, fn)
	require.ErrorIs(t, err, idempotency.ErrKeyReused)
	require.EqualValues(t, 1, calls.Load())
}

func TestKeysAreScopedToCallerAndOperation(t *testing.T) {
	t.Parallel()
	s, fn, calls := setup(t)
	ctx := context.Background()
	for _, scope := range []idempotency.Scope{
		{Principal: "iss|alice", Operation: "pauseSubscription", Key: "same"},
		{Principal: "iss|bob", Operation: "pauseSubscription", Key: "same"},
		{Principal: "iss|alice", Operation: "resumeSubscription", Key: "same"},
	} {
		_, replayed, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, fn)
		require.NoError(t, err)
		require.False(t, replayed)
	}
	require.EqualValues(t, 3, calls.Load())
}

func TestConcurrentCallsWithOneKeyHaveOneEffect(t *testing.T) {
	t.Parallel()
	s, fn, calls := setup(t)
	scope := idempotency.Scope{Principal: "iss|alice", Operation: "createSubscription", Key: "race"}
	const n = 10
	results := make([]result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], _, errs[i] = idempotency.Run(context.Background(), s, scope, input{PlanID: "p1"}, fn)
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, calls.Load())
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, results[0], results[i])
	}
}

func TestAFailedRunReleasesTheKey(t *testing.T) {
	t.Parallel()
	s, fn, calls := setup(t)
	ctx := context.Background()
	scope := idempotency.Scope{Principal: "iss|alice", Operation: "cancelSubscription", Key: "k"}
	down := errors.New("provider unavailable")
	_, _, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, func(context.Context) (result, error) { return result{}, down })
	require.ErrorIs(t, err, down)

	got, replayed, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, fn)
	require.NoError(t, err)
	require.False(t, replayed, "the retry runs the effect")
	require.EqualValues(t, 1, got.Count)
	require.EqualValues(t, 1, calls.Load())
}

func TestACrashedRunIsTakenOverAfterItsLease(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	s := idempotency.NewStore(db).WithTimings(100*time.Millisecond, 0)
	ctx := context.Background()
	scope := idempotency.Scope{Principal: "iss|alice", Operation: "createSubscription", Key: "crash"}
	// A run that never finished: the row is IN_PROGRESS with a lease.
	crashCtx, crash := context.WithCancel(ctx)
	started := make(chan struct{})
	go func() {
		_, _, _ = idempotency.Run(crashCtx, s, scope, input{PlanID: "p1"}, func(ctx context.Context) (result, error) {
			close(started)
			<-ctx.Done()
			select {} // the process "dies" here: neither completes nor releases
		})
	}()
	<-started
	crash()

	_, _, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, func(context.Context) (result, error) { return result{ID: "x"}, nil })
	require.ErrorIs(t, err, idempotency.ErrInProgress, "inside the lease the duplicate must not run")

	time.Sleep(150 * time.Millisecond)
	got, replayed, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, func(context.Context) (result, error) { return result{ID: "taken-over"}, nil })
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, "taken-over", got.ID)
}

func TestExpiredKeysStartAfreshAndArePurged(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	s := idempotency.NewStore(db)
	ctx := context.Background()
	scope := idempotency.Scope{Principal: "iss|alice", Operation: "createPlan", Key: "old"}
	_, _, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, func(context.Context) (result, error) { return result{ID: "first"}, nil })
	require.NoError(t, err)
	var expires time.Time
	require.NoError(t, db.Raw("SELECT expires_at FROM idempotency_keys WHERE key = 'old'").Scan(&expires).Error)
	require.WithinDuration(t, time.Now().Add(24*time.Hour), expires, time.Minute, "kept 24 hours")

	require.NoError(t, db.Exec("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'").Error)
	got, replayed, err := idempotency.Run(ctx, s, scope, input{PlanID: "p2"}, func(context.Context) (result, error) { return result{ID: "second"}, nil })
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, "second", got.ID)

	require.NoError(t, db.Exec("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'").Error)
	n, err := s.Purge(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

func TestInvalidKeys(t *testing.T) {
	t.Parallel()
	s, fn, calls := setup(t)
	for _, key := range []string{"", string(make([]byte, 256))} {
		_, _, err := idempotency.Run(context.Background(), s, idempotency.Scope{Principal: "p", Operation: "o", Key: key}, nil, fn)
		require.ErrorIs(t, err, idempotency.ErrInvalidKey)
	}
	require.Zero(t, calls.Load())
}
