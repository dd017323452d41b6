package outbox

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

// Redelivering a delivery whose job waits for its next retry brings that job
// forward: one job, due now, however often it is asked (a second job would run a
// second retry chain against the receiver).
func TestRedeliverOfAPendingDeliveryBringsItsJobForward(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 500)
	ep, _ := e.endpoint(r.srv.URL, AllEvents)
	e.publish(uuid.NewString())
	d := e.deliveries(ep)[0]
	const jobsOf = `SELECT count(*) FROM river_job WHERE kind = 'outbox_deliver' AND args->>'deliveryId' = ?
		AND state NOT IN ('completed', 'discarded', 'cancelled')`
	const dueNow = jobsOf + ` AND state = 'available' AND scheduled_at <= now()`
	require.NoError(t, e.db.Exec(`UPDATE river_job SET state = 'retryable', attempt = 3, scheduled_at = now() + interval '10 hours'
		WHERE args->>'deliveryId' = ?`, d.ID).Error)
	for range 3 {
		_, err := e.svc.Redeliver(context.Background(), staff, models.RedeliverWebhookInput{DeliveryID: d.ID, Reason: "the 3PL is back"})
		require.NoError(t, err)
	}
	var n, due int64
	require.NoError(t, e.db.Raw(jobsOf, d.ID).Scan(&n).Error)
	require.NoError(t, e.db.Raw(dueNow, d.ID).Scan(&due).Error)
	require.EqualValues(t, 1, n, "one job per delivery")
	require.EqualValues(t, 1, due, "the waiting job is due now")
}
