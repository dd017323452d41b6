package webhooks

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
)

// crossApplier updates one row of apply_lock per event, an event waiting first
// for another event's update when told to: two batches can so take the same two
// rows in opposite orders.
type crossApplier struct {
	row   map[string]string        // event -> the apply_lock row it updates
	after map[string]chan struct{} // event -> closed once that event's update ran
	wait  map[string]string        // event -> the event whose update it waits for
}

func (c *crossApplier) Prepare(context.Context, subscriptions.Event) (*subscriptions.Prepared, error) {
	return &subscriptions.Prepared{}, nil
}

func (c *crossApplier) Apply(ctx context.Context, tx *gorm.DB, ev subscriptions.Event, _ *subscriptions.Prepared) (subscriptions.Effect, error) {
	if other, ok := c.wait[ev.ProviderEventID]; ok {
		<-c.after[other]
	}
	err := tx.WithContext(ctx).Exec(`UPDATE apply_lock SET n = n + 1 WHERE id = ?`, c.row[ev.ProviderEventID]).Error
	if ch, ok := c.after[ev.ProviderEventID]; ok {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
	if err != nil {
		return subscriptions.Effect{}, err
	}
	return subscriptions.Effect{Outcome: "applied"}, nil
}

// Two committers whose batches hold events of different subscriptions that write
// the same rows in opposite orders deadlock; PostgreSQL cancels one statement, and
// only that event's savepoint is rolled back: it fails its attempt (River retries
// it), the three others commit, and the retry applies it once.
func TestCrossedBatchesLoseOnlyTheDeadlockedEvent(t *testing.T) {
	w, _, db, rows := applySetup(t, 4)
	owner := ownerOf(t, db)
	var role string
	require.NoError(t, db.Raw(`SELECT current_user`).Scan(&role).Error)
	require.NoError(t, owner.Exec(`CREATE TABLE apply_lock (id text PRIMARY KEY, n int NOT NULL)`).Error)
	require.NoError(t, owner.Exec(`INSERT INTO apply_lock VALUES ('r1', 0), ('r2', 0)`).Error)
	require.NoError(t, owner.Exec(`GRANT SELECT, UPDATE ON apply_lock TO `+role).Error)
	// Batch A: evt_0 (r1) then evt_1 (r2); batch B: evt_2 (r2) then evt_3 (r1). Each
	// second event waits until the other batch's first one holds its row.
	c := &crossApplier{
		row:   map[string]string{"evt_0": "r1", "evt_1": "r2", "evt_2": "r2", "evt_3": "r1"},
		after: map[string]chan struct{}{"evt_0": make(chan struct{}), "evt_2": make(chan struct{})},
		wait:  map[string]string{"evt_1": "evt_2", "evt_3": "evt_0"},
	}
	w.applier = c
	a := []*applyItem{itemFor(t, db, rows[0], "sub_a1"), itemFor(t, db, rows[1], "sub_a2")}
	b := []*applyItem{itemFor(t, db, rows[2], "sub_b1"), itemFor(t, db, rows[3], "sub_b2")}
	var resA, resB []applied
	done := make(chan struct{}, 2)
	go func() { resA = w.applyBatch(a); done <- struct{}{} }()
	go func() { resB = w.applyBatch(b); done <- struct{}{} }()
	<-done
	<-done
	failed := map[string]error{}
	for i, it := range append(a, b...) {
		if err := append(resA, resB...)[i].err; err != nil {
			failed[it.ev.ProviderEventID] = err
		}
	}
	require.Len(t, failed, 1, "one event lost the deadlock, the others applied: %v", failed)
	var loser string
	for id, err := range failed {
		loser = id
		require.True(t, strings.Contains(err.Error(), "deadlock") || strings.Contains(err.Error(), "40P01"), err.Error())
	}
	require.Contains(t, []string{"evt_1", "evt_3"}, loser, "the one that closed the cycle")
	st := statuses(t, db)
	for _, r := range rows {
		if r.ProviderEventID == loser {
			require.Equal(t, models.WebhookReceived, st[r.ProviderEventID], "left for River's retry")
		} else {
			require.Equal(t, models.WebhookProcessed, st[r.ProviderEventID])
		}
	}
	var n int64
	require.NoError(t, db.Raw(`SELECT sum(n) FROM apply_lock`).Scan(&n).Error)
	require.Equal(t, int64(3), n, "the loser's update went with its savepoint")

	// River's retry of the loser applies it, once.
	for _, r := range rows {
		if r.ProviderEventID == loser {
			res := w.applyBatch([]*applyItem{itemFor(t, db, r, "sub_retry")})
			require.NoError(t, res[0].err)
		}
	}
	require.NoError(t, db.Raw(`SELECT sum(n) FROM apply_lock`).Scan(&n).Error)
	require.Equal(t, int64(4), n)
	require.Equal(t, models.WebhookProcessed, statuses(t, db)[loser])
}
