package webhooks

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
)

// fakeApplier counts the effects it applies; while panics is set, Apply panics as a
// bug in an applier would.
type fakeApplier struct {
	panics  atomic.Bool
	applied atomic.Int32
}

func (f *fakeApplier) Prepare(context.Context, subscriptions.Event) (*subscriptions.Prepared, error) {
	return &subscriptions.Prepared{}, nil
}

func (f *fakeApplier) Apply(context.Context, *gorm.DB, subscriptions.Event, *subscriptions.Prepared) (subscriptions.Effect, error) {
	if f.panics.Load() {
		panic("applier bug")
	}
	f.applied.Add(1)
	return subscriptions.Effect{Outcome: "applied"}, nil
}

// storedEvent stores one event through the batcher and returns its row.
func storedEvent(t *testing.T, b *batcher, providerID string) models.WebhookEvent {
	t.Helper()
	_, err := b.store(mustEvent(t, providerID))
	require.NoError(t, err)
	var row models.WebhookEvent
	require.NoError(t, b.db.Omit("payload").Take(&row, "provider_event_id = ?", providerID).Error)
	return row
}

var support = &auth.Principal{Issuer: "https://idp.test", Subject: "agent-1", Roles: []auth.Role{auth.RoleCustomer, auth.RoleSupport}}

// A poison event (its applier panics on every attempt) is no dead end: after the
// last attempt it is FAILED with the panic as its error, counted as failed; once the
// bug is fixed, support replays it and it applies once.
func TestWorkerPoisonEventEndsFailedAndReplaysOnce(t *testing.T) {
	b, db := newTestBatcher(t, 1)
	row := storedEvent(t, b, "evt_poison")
	applier := &fakeApplier{}
	applier.panics.Store(true)
	metrics := NewMetrics(prometheus.NewRegistry(), nil)
	w := NewWorker(db, applier, metrics, slog.New(slog.DiscardHandler), nil)
	run := func(attempt int, replay bool) error {
		return w.Work(context.Background(), &river.Job[ProcessArgs]{
			JobRow: &rivertype.JobRow{ID: 1, Attempt: attempt, MaxAttempts: 3},
			Args:   ProcessArgs{EventID: row.ID, Replay: replay},
		})
	}

	require.ErrorContains(t, run(1, false), "panic while applying: applier bug", "an attempt that panics fails, for River to retry")
	var ev models.WebhookEvent
	require.NoError(t, db.Omit("payload").Take(&ev, "id = ?", row.ID).Error)
	require.Equal(t, models.WebhookReceived, ev.Status, "not the last attempt: still waiting for the retry")

	require.Error(t, run(3, false))
	require.NoError(t, db.Omit("payload").Take(&ev, "id = ?", row.ID).Error)
	require.Equal(t, models.WebhookFailed, ev.Status, "after the last attempt the event is FAILED, not silently RECEIVED")
	require.NotNil(t, ev.LastError)
	require.Contains(t, *ev.LastError, "panic while applying")
	require.Equal(t, 1.0, testutil.ToFloat64(metrics.processed.WithLabelValues("invoice.paid", "failed")))

	applier.panics.Store(false)
	replayer := NewReplayer(db, b.queue, slog.New(slog.DiscardHandler))
	_, err := replayer.Replay(context.Background(), support, row.ID, "applier fixed in 1.2.3")
	require.NoError(t, err)
	var audited int64
	require.NoError(t, db.Raw(`SELECT count(*) FROM audit_log WHERE action = ? AND target_id = ? AND reason = ?`,
		ActionReplay, row.ID, "applier fixed in 1.2.3").Scan(&audited).Error)
	require.EqualValues(t, 1, audited, "the replay is audited with its reason")

	require.NoError(t, run(1, true))
	require.NoError(t, run(1, true), "a second run of the replay job changes nothing")
	require.EqualValues(t, 1, applier.applied.Load(), "the replay applies the event once")
	require.NoError(t, db.Omit("payload").Take(&ev, "id = ?", row.ID).Error)
	require.Equal(t, models.WebhookProcessed, ev.Status)
}

// An event RECEIVED whose jobs are all finished (discarded by River after a crash on
// the last attempt, say) is stuck: support may replay it. One with a job still to run
// is refused, so a replay never races the job that will apply it.
func TestReplayOfAReceivedEventDependsOnItsJobs(t *testing.T) {
	b, db := newTestBatcher(t, 1)
	row := storedEvent(t, b, "evt_stuck")
	replayer := NewReplayer(db, b.queue, slog.New(slog.DiscardHandler))

	_, err := replayer.Replay(context.Background(), support, row.ID, "looks stuck")
	var ue *models.UserError
	require.ErrorAs(t, err, &ue, "the batch job that gives it its job is still to run")
	require.Equal(t, models.UserErrorInvalidState, ue.Code)

	require.NoError(t, db.Exec(`UPDATE river_job SET state = 'discarded', finalized_at = now()`).Error)
	_, err = replayer.Replay(context.Background(), support, row.ID, "stuck after a crash")
	require.NoError(t, err)
	var live int64
	require.NoError(t, db.Raw(`SELECT count(*) FROM river_job WHERE kind = ? AND state = 'available' AND args->>'eventId' = ?`,
		ProcessArgs{}.Kind(), row.ID).Scan(&live).Error)
	require.EqualValues(t, 1, live, "the replay gave it a job")

	_, err = replayer.Replay(context.Background(), support, row.ID, "again")
	require.ErrorAs(t, err, &ue, "now it has a job to run again")
	require.Equal(t, models.UserErrorInvalidState, ue.Code)
}
