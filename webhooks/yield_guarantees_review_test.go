package webhooks

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/subscriptions"
)

// switchIntake is saturated while on is set.
type switchIntake struct{ on atomic.Bool }

func (s *switchIntake) Saturated(time.Duration) bool { return s.on.Load() }

// An item whose job ends while its committer yields is withdrawn at once, not
// stranded; the yielding committer then finds the queue empty and stops, so the
// count of running committers returns to zero and a later item starts its own.
func TestReviewYieldingCommitterWithdrawnItemNeitherStrandsNorLeaks(t *testing.T) {
	w, _, db, rows := applySetup(t, 2)
	intake := &switchIntake{}
	intake.on.Store(true)
	w.intake = intake

	ctx, cancel := context.WithCancel(context.Background())
	it := itemFor(t, db, rows[0], "sub_1")
	it.ctx = ctx
	got := make(chan applied, 1)
	go func() { got <- w.apply(it) }()
	time.Sleep(100 * time.Millisecond) // the committer is yielding
	start := time.Now()
	cancel()
	select {
	case res := <-got:
		require.ErrorIs(t, res.err, context.Canceled)
		require.Less(t, time.Since(start), 500*time.Millisecond, "withdrawn at once, not after the yield")
	case <-time.After(yieldMax + time.Second):
		t.Fatal("item stranded while its committer yielded")
	}
	require.Empty(t, probes(t, db), "a withdrawn item is not applied")

	// The committer ends after its yield (at most yieldMax), finding nothing.
	intake.on.Store(false)
	require.Eventually(t, func() bool {
		w.queue.mu.Lock()
		defer w.queue.mu.Unlock()
		return w.queue.running == 0 && len(w.queue.pending) == 0
	}, yieldMax+time.Second, 10*time.Millisecond)

	// A later item is applied by a committer of its own.
	res := w.apply(itemFor(t, db, rows[1], "sub_1"))
	require.NoError(t, res.err)
	require.Equal(t, map[string]int{"evt_1": 1}, probes(t, db))
}

// A preparation yielding in a saturated route stops at once when its context ends,
// and gives its slot back.
func TestReviewCancelledPreparationStopsYieldingAtOnce(t *testing.T) {
	w, _, _, _ := applySetup(t, 0)
	intake := &switchIntake{}
	intake.on.Store(true)
	w.intake = intake
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, _ = w.prepare(ctx, subscriptions.Event{})
	require.Less(t, time.Since(start), 500*time.Millisecond, "the yield ends with the context, not after yieldMax")
	require.Zero(t, len(w.prep), "the slot is given back")
}

// More preparations than applyPreparers, all yielding while the route stays
// saturated, with a committer yielding too: each yield is bounded by yieldMax,
// so everything finishes (no deadlock between slots, readers and committers).
func TestReviewSaturatedRouteBoundsPreparationsAndCommitters(t *testing.T) {
	w, _, db, rows := applySetup(t, 1)
	intake := &switchIntake{}
	intake.on.Store(true)
	w.intake = intake
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for range applyPreparers + 1 {
			wg.Go(func() {
				_, err := w.prepare(context.Background(), subscriptions.Event{})
				require.NoError(t, err)
			})
		}
		wg.Go(func() {
			var into versionedEvent
			require.NoError(t, w.read(context.Background(), &into, rows[0].ID))
		})
		wg.Go(func() { require.NoError(t, w.apply(itemFor(t, db, rows[0], "sub_1")).err) })
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(3*yieldMax + 2*time.Second):
		t.Fatal("preparations, readers or committers stuck in a saturated route")
	}
	require.Equal(t, map[string]int{"evt_0": 1}, probes(t, db))
}
