package outbox

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/jobs"
)

// TestAFactCommittedBeforeACrashIsDeliveredByTheNextProcess commits a fact while
// no worker runs (the process dies right after the commit, before any delivery),
// then starts the queue as the next process does, on the same database: the
// message is delivered once, signed, because its job committed with the fact.
func TestAFactCommittedBeforeACrashIsDeliveredByTheNextProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	ep, secret := e.endpoint(r.srv.URL+"/in", EventPaymentSucceeded)
	e.publish(uuid.NewString())
	require.Empty(t, r.requests(), "nothing is sent before a worker runs")

	workers := river.NewWorkers()
	river.AddWorker(workers, river.Worker[DeliverArgs](e.worker(r)))
	client, err := jobs.NewClient(e.db, workers, jobs.Config{PollInterval: 20 * time.Millisecond}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { _ = jobs.Stop(client, 5*time.Second) })

	require.Eventually(t, func() bool { return e.deliveries(ep)[0].Status == statusDelivered }, 30*time.Second, 20*time.Millisecond)
	reqs := r.requests()
	require.Len(t, reqs, 1)
	require.Equal(t, e.deliveries(ep)[0].MessageID, reqs[0].header.Get("webhook-id"))
	require.True(t, verify(t, secret, reqs[0].header, reqs[0].body))
}
