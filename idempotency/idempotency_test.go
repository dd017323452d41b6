package idempotency_test

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/migrations"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/sealing"
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
	_, s := newStore(t)
	return s, fn, &calls
}

// newStore is a store on a fresh database with data keys installed, and that database.
func newStore(t *testing.T) (*gorm.DB, *idempotency.Store) {
	t.Helper()
	db := dbtest.NewSealed(t)
	return db, idempotency.NewStore(db)
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

// A first use refused before any effect (NothingDone) is forgotten, so the corrected
// request may use the key; a key whose earlier run failed otherwise keeps its first
// input, and a refusal on a takeover forgets nothing.
func TestARunThatDidNothingForgetsOnlyAFreshKey(t *testing.T) {
	t.Parallel()
	s, fn, calls := setup(t)
	ctx := context.Background()
	refused := errors.New("successUrl is not an allowed origin")
	nothing := func(context.Context) (result, error) { return result{}, idempotency.NothingDone{Err: refused} }

	fresh := idempotency.Scope{Principal: "iss|alice", Operation: "startCheckout", Key: "fresh"}
	_, _, err := idempotency.Run(ctx, s, fresh, input{PlanID: "bad-url"}, nothing)
	require.ErrorIs(t, err, refused)
	got, _, err := idempotency.Run(ctx, s, fresh, input{PlanID: "corrected"}, fn)
	require.NoError(t, err, "the corrected request may use the key")
	require.EqualValues(t, 1, got.Count)

	used := idempotency.Scope{Principal: "iss|alice", Operation: "startCheckout", Key: "used"}
	_, _, err = idempotency.Run(ctx, s, used, input{PlanID: "p1"}, func(context.Context) (result, error) {
		return result{}, errors.New("provider unavailable after the call")
	})
	require.Error(t, err)
	_, _, err = idempotency.Run(ctx, s, used, input{PlanID: "p1"}, nothing)
	require.ErrorIs(t, err, refused)
	_, _, err = idempotency.Run(ctx, s, used, input{PlanID: "other"}, fn)
	require.ErrorIs(t, err, idempotency.ErrKeyReused, "the key's first use, which may have reached the provider, is not forgotten")
	require.EqualValues(t, 1, calls.Load())
}

func TestACrashedRunIsTakenOverAfterItsLease(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
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

// ageKeys moves every stored key's first use back by d, as if that time had passed.
func ageKeys(t *testing.T, db *gorm.DB, d time.Duration) {
	t.Helper()
	require.NoError(t, db.Exec(`UPDATE idempotency_keys SET created_at = created_at - ?::interval, expires_at = expires_at - ?::interval`,
		d.String(), d.String()).Error)
}

func TestAKeyThatRanNeverRunsAgainAfterItsRetention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		purge bool
		input input
	}{
		{"aged, then purged, same input", true, input{PlanID: "p1"}},
		{"aged, then purged, another input", true, input{PlanID: "p2"}},
		{"aged, not yet purged, same input", false, input{PlanID: "p1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, s := newStore(t)
			ctx := context.Background()
			var calls atomic.Int64
			fn := func(context.Context) (result, error) { return result{ID: "sub_1", Count: calls.Add(1)}, nil }
			scope := idempotency.Scope{Principal: "iss|alice", Operation: "createSubscription", Key: "old"}
			_, _, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, fn)
			require.NoError(t, err)
			var expires time.Time
			require.NoError(t, db.Raw("SELECT expires_at FROM idempotency_keys WHERE key = 'old'").Scan(&expires).Error)
			require.WithinDuration(t, time.Now().Add(24*time.Hour), expires, time.Minute, "kept 24 hours")

			ageKeys(t, db, 25*time.Hour)
			if tc.purge {
				n, err := s.Purge(ctx)
				require.NoError(t, err)
				require.EqualValues(t, 1, n)
				require.Zero(t, count(t, db, "SELECT count(*) FROM idempotency_keys"), "the row is gone")
				require.EqualValues(t, 1, count(t, db, "SELECT count(*) FROM idempotency_tombstones"), "its tombstone stays")
			}
			got, replayed, err := idempotency.Run(ctx, s, scope, tc.input, fn)
			require.EqualValues(t, 1, calls.Load(), "the effect never runs a second time")
			if !tc.purge {
				require.NoError(t, err, "a result still held is replayed")
				require.True(t, replayed)
				require.Equal(t, "sub_1", got.ID)
				return
			}
			require.ErrorIs(t, err, idempotency.ErrKeyRetired)
			var ue *models.UserError
			require.ErrorAs(t, idempotency.AsUserError(err), &ue)
			require.Equal(t, models.UserErrorIdempotencyKeyReused, ue.Code)
			require.Zero(t, count(t, db, "SELECT count(*) FROM idempotency_keys"), "the refused call leaves no row behind")

			// The same key of another caller, or for another operation, is a new key.
			for _, other := range []idempotency.Scope{
				{Principal: "iss|bob", Operation: scope.Operation, Key: scope.Key},
				{Principal: scope.Principal, Operation: "pauseSubscription", Key: scope.Key},
			} {
				_, replayed, err := idempotency.Run(ctx, s, other, tc.input, fn)
				require.NoError(t, err)
				require.False(t, replayed)
			}
			require.EqualValues(t, 3, calls.Load())
		})
	}
}

func TestAFailedOrCrashedRunIsNotTakenOverOnceTheProviderWindowCloses(t *testing.T) {
	t.Parallel()
	for _, crashed := range []bool{false, true} {
		t.Run(map[bool]string{false: "failed run", true: "crashed run"}[crashed], func(t *testing.T) {
			t.Parallel()
			db, s := newStore(t)
			ctx := context.Background()
			scope := idempotency.Scope{Principal: "iss|alice", Operation: "refundPayment", Key: "k"}
			if crashed {
				// A run that died holding its lease: the row is IN_PROGRESS.
				require.NoError(t, db.Exec(`INSERT INTO idempotency_keys (scope, operation, key, request_hash, state, locked_until, expires_at)
					VALUES (?, ?, ?, ?, 'IN_PROGRESS', now() - interval '1 minute', now() + interval '24 hours')`,
					scope.Principal, scope.Operation, scope.Key, mustHash(t, input{PlanID: "p1"})).Error)
			} else {
				// The provider may have acted before the answer was lost.
				_, _, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, func(context.Context) (result, error) {
					return result{}, errors.New("timeout after the provider's answer")
				})
				require.Error(t, err)
				require.EqualValues(t, 1, count(t, db, "SELECT count(*) FROM idempotency_keys WHERE state = 'RELEASED'"),
					"the failed run's first use is remembered")
			}
			var calls atomic.Int64
			fn := func(context.Context) (result, error) { calls.Add(1); return result{ID: "re_1"}, nil }

			_, _, err := idempotency.Run(ctx, s, scope, input{PlanID: "p2"}, fn)
			require.ErrorIs(t, err, idempotency.ErrKeyReused, "the key stays bound to its first input")

			ageKeys(t, db, 24*time.Hour-30*time.Second) // inside the last lease of the window
			_, _, err = idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, fn)
			require.ErrorIs(t, err, idempotency.ErrKeyRetired, "a takeover that could outlive the provider's memory is refused")

			ageKeys(t, db, time.Hour)
			_, err = s.Purge(ctx)
			require.NoError(t, err)
			_, _, err = idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, fn)
			require.ErrorIs(t, err, idempotency.ErrKeyRetired)
			require.Zero(t, calls.Load())
		})
	}
}

func TestPurgeLeavesALiveRunAlone(t *testing.T) {
	t.Parallel()
	db, s := newStore(t)
	ctx := context.Background()
	require.NoError(t, db.Exec(`INSERT INTO idempotency_keys (scope, operation, key, request_hash, state, locked_until, expires_at)
		VALUES ('iss|alice', 'createSubscription', 'live', '\x00'::bytea, 'IN_PROGRESS', now() + interval '1 minute', now() - interval '1 second')`).Error)
	n, err := s.Purge(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.EqualValues(t, 1, count(t, db, "SELECT count(*) FROM idempotency_keys"))
}

func TestStoredResultsAreSealed(t *testing.T) {
	t.Parallel()
	db, s := newStore(t)
	ctx := context.Background()
	scope := idempotency.Scope{Principal: "iss|alice", Operation: "createSubscription", Key: "secret"}
	const secret = "pi_123_secret_canary"
	fn := func(context.Context) (result, error) { return result{ID: secret}, nil }
	_, _, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, fn)
	require.NoError(t, err)
	var raw string
	require.NoError(t, db.Raw("SELECT t::text FROM idempotency_keys t").Scan(&raw).Error)
	require.NotContains(t, raw, secret)
	require.NotContains(t, raw, hex.EncodeToString([]byte(secret)))
	got, replayed, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, fn)
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, secret, got.ID)

	// A result moved to another key's row does not open there.
	other := idempotency.Scope{Principal: "iss|bob", Operation: "createSubscription", Key: "secret"}
	_, _, err = idempotency.Run(ctx, s, other, input{PlanID: "p1"}, func(context.Context) (result, error) { return result{ID: "bob"}, nil })
	require.NoError(t, err)
	require.NoError(t, db.Exec(`UPDATE idempotency_keys SET response = (SELECT response FROM idempotency_keys WHERE scope = 'iss|alice')
		WHERE scope = 'iss|bob'`).Error)
	_, _, err = idempotency.Run(ctx, s, other, input{PlanID: "p1"}, fn)
	require.ErrorIs(t, err, sealing.ErrUnopenable)

	_, _, err = idempotency.Run(ctx, idempotency.NewStore(dbtest.New(t)), scope, input{PlanID: "p1"}, fn)
	require.ErrorContains(t, err, "sealing.Install", "a store without data keys refuses to run")
}

func mustHash(t *testing.T, in any) []byte {
	t.Helper()
	h, err := idempotency.HashInput(in)
	require.NoError(t, err)
	return h
}

func count(t *testing.T, db *gorm.DB, query string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Raw(query).Scan(&n).Error)
	return n
}

func TestInvalidKeys(t *testing.T) {
	t.Parallel()
	s, fn, calls := setup(t)
	for _, key := range []string{"", string(make([]byte, 256)), "k\x00"} {
		_, _, err := idempotency.Run(context.Background(), s, idempotency.Scope{Principal: "p", Operation: "o", Key: key}, nil, fn)
		require.ErrorIs(t, err, idempotency.ErrInvalidKey)
	}
	require.Zero(t, calls.Load())
}

func TestMigration00010RetiresTheKeysItFinds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := database.Open(ctx, dbtest.NewURL(t, ""), database.Pool{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sqlDB.Close() })
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS, goose.WithGoMigrations(migrations.Go()...))
	require.NoError(t, err)
	_, err = provider.UpTo(ctx, 8)
	require.NoError(t, err)

	// A result stored in the clear before 00010, and a run in progress.
	scope := idempotency.Scope{Principal: "https://idp.test|alice", Operation: "createSubscription", Key: "before-00010"}
	running := idempotency.Scope{Principal: "https://idp.test|bob", Operation: "refundPayment", Key: "running"}
	hash := mustHash(t, input{PlanID: "p1"})
	require.NoError(t, db.Exec(`INSERT INTO idempotency_keys (scope, operation, key, request_hash, state, response, expires_at)
		VALUES (?, ?, ?, ?, 'COMPLETED', '{"clientSecret":"pi_1_secret_x"}', now() + interval '1 day'),
		       (?, ?, ?, ?, 'IN_PROGRESS', NULL, now() + interval '1 day')`,
		scope.Principal, scope.Operation, scope.Key, hash, running.Principal, running.Operation, running.Key, hash).Error)
	_, err = provider.Up(ctx)
	require.NoError(t, err)
	require.Zero(t, count(t, db, "SELECT count(*) FROM idempotency_keys"), "no plaintext result is left")

	k, err := sealing.Parse(sealing.DevelopmentKeys)
	require.NoError(t, err)
	require.NoError(t, sealing.Install(db, k))
	s := idempotency.NewStore(db)
	for _, sc := range []idempotency.Scope{scope, running} {
		_, _, err = idempotency.Run(ctx, s, sc, input{PlanID: "p1"}, func(context.Context) (result, error) { return result{ID: "again"}, nil })
		require.ErrorIs(t, err, idempotency.ErrKeyRetired, "the migration's tombstone matches the store's: %s", sc.Key)
	}

	// And back down, and up again.
	_, err = provider.DownTo(ctx, 8)
	require.NoError(t, err)
	_, err = provider.Up(ctx)
	require.NoError(t, err)
}

func TestARetryRacingThePurgeOfItsKeyDoesNotRun(t *testing.T) {
	t.Parallel()
	db, s := newStore(t)
	ctx := context.Background()
	scope := idempotency.Scope{Principal: "iss|alice", Operation: "createSubscription", Key: "race-purge"}
	var calls atomic.Int64
	fn := func(context.Context) (result, error) { return result{ID: "sub_1", Count: calls.Add(1)}, nil }
	_, _, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, fn)
	require.NoError(t, err)
	ageKeys(t, db, 25*time.Hour)

	// The purge has swapped the row for its tombstone but not committed yet.
	tx := db.Begin()
	t.Cleanup(func() { tx.Rollback() })
	n, err := idempotency.NewStore(tx).Purge(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	// The retry's insert meets the row being deleted and waits for the purge.
	done := make(chan error, 1)
	go func() {
		_, _, err := idempotency.Run(ctx, s, scope, input{PlanID: "p1"}, fn)
		done <- err
	}()
	require.Eventually(t, func() bool {
		return count(t, db, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 1
	}, 10*time.Second, 10*time.Millisecond, "the retry waits on the purge's lock")
	require.NoError(t, tx.Commit().Error)

	require.ErrorIs(t, <-done, idempotency.ErrKeyRetired)
	require.EqualValues(t, 1, calls.Load(), "the retry never ran the effect again")
}
