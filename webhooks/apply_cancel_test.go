package webhooks

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

// A job whose context ends (River's timeout, a shutdown) while its event waits in
// the queue gets its context's error and its event is never applied by that
// attempt; one whose event is already being applied waits for the batch and gets
// its outcome: the event applied once, the job's attempt reporting it applied.
func TestACancelledJobIsWithdrawnOrWaitsForItsBatch(t *testing.T) {
	w, p, db, rows := applySetup(t, 2)
	p.begun = make(chan string, 4)
	hold := make(chan struct{})
	p.gate["evt_0"] = hold

	ctx0, cancel0 := context.WithCancel(context.Background())
	it0 := itemFor(t, db, rows[0], "sub_a")
	it0.ctx = ctx0
	res0 := make(chan applied, 1)
	go func() { res0 <- w.apply(it0) }()
	require.Equal(t, "evt_0", <-p.begun)

	ctx1, cancel1 := context.WithCancel(context.Background())
	it1 := itemFor(t, db, rows[1], "sub_a") // waits behind evt_0's batch
	it1.ctx = ctx1
	res1 := make(chan applied, 1)
	go func() { res1 <- w.apply(it1) }()
	require.Eventually(t, func() bool {
		w.queue.mu.Lock()
		defer w.queue.mu.Unlock()
		return len(w.queue.pending) == 1
	}, 10*time.Second, time.Millisecond)

	cancel1()
	require.ErrorIs(t, (<-res1).err, context.Canceled, "withdrawn from the queue")
	cancel0() // evt_0 is being applied: its job waits for the batch
	close(hold)
	require.NoError(t, (<-res0).err, "the job of an event being applied gets its batch's outcome")

	require.Equal(t, map[string]int{"evt_0": 1}, probes(t, db))
	st := statuses(t, db)
	require.Equal(t, models.WebhookProcessed, st["evt_0"])
	require.Equal(t, models.WebhookReceived, st["evt_1"], "left for the job's retry")
	w.queue.mu.Lock()
	defer w.queue.mu.Unlock()
	require.Empty(t, w.queue.pending)
	require.Empty(t, w.queue.busy)
}
