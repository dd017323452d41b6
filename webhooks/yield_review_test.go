package webhooks

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/jobs"
)

// A full batch job (DefaultMaxBatch events) in a route saturated throughout: its
// attempt has jobs.Timeout, less the yield Work makes before it. Every preparation
// holds its slot for up to yieldMax while yielding, so applyPreparers events are
// prepared per yieldMax and the attempt ends before most are even prepared: they
// are handed out as failed attempts they never made (FAILED on the last attempt).
func TestReviewAFullBatchJobInASaturatedRouteIsNotCutOffByYields(t *testing.T) {
	w, _, _, rows := applySetup(t, DefaultMaxBatch)
	intake := &switchIntake{}
	intake.on.Store(true)
	w.intake = intake
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	job := &river.Job[EnqueueArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 3}, Args: EnqueueArgs{EventIDs: ids}}
	ctx, cancel := context.WithTimeout(context.Background(), jobs.Timeout-yieldMax)
	defer cancel()
	start := time.Now()
	left := w.applyStored(ctx, job)
	var cut int
	var cause error
	for _, l := range left {
		if l.err != nil {
			cut++
			cause = l.err
		}
	}
	t.Logf("after %s: %d of %d events left for a job of their own, %d with a failed attempt (%v)",
		time.Since(start).Round(time.Millisecond), len(left), len(ids), cut, cause)
	require.Empty(t, left, "a saturated route cut the batch job's attempt short")
}
