package idempotency_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/idempotency"
)

// Tombstones are kept for their retention, counted from the key's first use, and
// deleted after it: the table holds that window's keys, not every key ever used.
// Within the window a retired key is refused; past it (the documented cost) the key
// is no longer recognised.
func TestTombstonesArePurgedAfterTheirRetention(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
	const retention = 30 * 24 * time.Hour
	s := idempotency.NewStore(db).WithTombstoneRetention(retention)
	ctx := context.Background()
	var calls atomic.Int64
	fn := func(context.Context) (result, error) { return result{ID: "sub_1", Count: calls.Add(1)}, nil }
	old := idempotency.Scope{Principal: "iss|alice", Operation: "createSubscription", Key: "old"}
	recent := idempotency.Scope{Principal: "iss|alice", Operation: "createSubscription", Key: "recent"}
	for _, sc := range []idempotency.Scope{old, recent} {
		_, _, err := idempotency.Run(ctx, s, sc, input{PlanID: "p1"}, fn)
		require.NoError(t, err)
	}
	ageKeys(t, db, 25*time.Hour)
	n, err := s.Purge(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)

	// Both are refused while their tombstones are kept.
	gone, err := s.PurgeTombstones(ctx)
	require.NoError(t, err)
	require.Zero(t, gone, "nothing is past its retention yet")
	for _, sc := range []idempotency.Scope{old, recent} {
		_, _, err := idempotency.Run(ctx, s, sc, input{PlanID: "p1"}, fn)
		require.ErrorIs(t, err, idempotency.ErrKeyRetired)
	}

	// One key's first use falls out of the retention; the other's is just inside it.
	require.NoError(t, db.Exec(`UPDATE idempotency_tombstones SET first_used_at = now() - ?::interval`,
		(retention-time.Hour).String()).Error)
	require.NoError(t, db.Exec(`UPDATE idempotency_tombstones SET first_used_at = now() - ?::interval
		WHERE scope_hash = (SELECT scope_hash FROM idempotency_tombstones ORDER BY scope_hash LIMIT 1)`,
		(retention+time.Hour).String()).Error)
	gone, err = s.PurgeTombstones(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, gone)
	require.EqualValues(t, 1, count(t, db, "SELECT count(*) FROM idempotency_tombstones"), "the one within its retention stays")
	refused := 0
	for _, sc := range []idempotency.Scope{old, recent} {
		if _, _, err := idempotency.Run(ctx, s, sc, input{PlanID: "p1"}, fn); err != nil {
			require.ErrorIs(t, err, idempotency.ErrKeyRetired)
			refused++
		}
	}
	require.Equal(t, 1, refused, "the key whose tombstone stays is still refused")
	require.EqualValues(t, 3, calls.Load(), "the key past the tombstone retention runs as a new request")
}

// A tombstone retention at or below the keys' own is ignored: a retired key is
// refused from the moment its row goes.
func TestTombstoneRetentionNeverShorterThanTheKeys(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
	s := idempotency.NewStore(db).WithTombstoneRetention(time.Hour)
	ctx := context.Background()
	fn := func(context.Context) (result, error) { return result{ID: "sub_1"}, nil }
	sc := idempotency.Scope{Principal: "iss|alice", Operation: "createSubscription", Key: "k"}
	_, _, err := idempotency.Run(ctx, s, sc, input{PlanID: "p1"}, fn)
	require.NoError(t, err)
	ageKeys(t, db, 25*time.Hour)
	_, err = s.Purge(ctx)
	require.NoError(t, err)
	require.NoError(t, db.Exec(`UPDATE idempotency_tombstones SET first_used_at = now() - interval '2 days'`).Error)
	gone, err := s.PurgeTombstones(ctx)
	require.NoError(t, err)
	require.Zero(t, gone, "kept for the default retention")
}
