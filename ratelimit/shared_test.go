package ratelimit

import (
	"database/sql"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/database/dbtest"
)

// sharedDB is a fresh migrated database as the server's role sees it.
func sharedDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := dbtest.New(t).DB()
	require.NoError(t, err)
	return db
}

// replicas are n limiters on one database, as n API processes are: each has its
// own in-process buckets, and the database's.
func replicas(t testing.TB, db *sql.DB, n int, cfg Config) []*Limiter {
	cfg.Shared = db
	out := make([]*Limiter, n)
	for i := range out {
		out[i] = New(cfg, prometheus.NewRegistry())
	}
	return out
}

func TestSharedAllowanceHoldsAcrossProcesses(t *testing.T) {
	t.Parallel()
	db := sharedDB(t)

	t.Run("mutations: the burst is the caller's, not each process's", func(t *testing.T) {
		t.Parallel()
		rs := replicas(t, db, 2, Config{Mutation: PerMinute(6)}) // burst 3, one token per 10 s
		alice := callerCtx("shared-alice", "192.0.2.1")
		for i := range 3 {
			require.Nil(t, rs[i%2].Take(alice, Charge{ScopeMutation, 1}), "request %d is within the burst", i+1)
		}
		for i := range 4 {
			ref := rs[i%2].Take(alice, Charge{ScopeMutation, 1})
			require.NotNil(t, ref, "process %d let a fourth mutation through", i%2)
			require.Equal(t, ScopeMutation, ref.Scope)
			require.InDelta(t, 10, ref.RetryAfterSeconds(), 1)
		}
		require.Equal(t, 2.0, testutil.ToFloat64(rs[0].refused.WithLabelValues("mutation")))
		require.Nil(t, rs[1].Take(callerCtx("shared-bob", "192.0.2.1"), Charge{ScopeMutation, 1}), "another caller has their own")
	})

	t.Run("payments, many at once from both processes", func(t *testing.T) {
		t.Parallel()
		rs := replicas(t, db, 2, Config{Payment: PerMinute(10), Mutation: PerMinute(1000)}) // payments: burst 5
		carol := callerCtx("shared-carol", "192.0.2.2")
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				if rs[i%2].Take(carol, Charge{ScopeMutation, 1}, Charge{ScopePayment, 1}) == nil {
					allowed.Add(1)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int64(5), allowed.Load(), "the payment burst, across both processes")
	})

	t.Run("a request refused by one shared bucket costs nothing in the other", func(t *testing.T) {
		t.Parallel()
		rs := replicas(t, db, 2, Config{Payment: PerMinute(2), Mutation: PerMinute(6)}) // payments: burst 1; mutations: 3
		dave := callerCtx("shared-dave", "192.0.2.3")
		require.Nil(t, rs[0].Take(dave, Charge{ScopeMutation, 1}, Charge{ScopePayment, 1}))
		ref := rs[1].Take(dave, Charge{ScopeMutation, 1}, Charge{ScopePayment, 1})
		require.NotNil(t, ref)
		require.Equal(t, ScopePayment, ref.Scope)
		require.InDelta(t, 30, ref.RetryAfterSeconds(), 1)
		// Two mutation tokens are left, on either process.
		require.Nil(t, rs[1].Take(dave, Charge{ScopeMutation, 1}))
		require.Nil(t, rs[0].Take(dave, Charge{ScopeMutation, 1}))
		require.NotNil(t, rs[1].Take(dave, Charge{ScopeMutation, 1}))
	})

	t.Run("queries stay per process", func(t *testing.T) {
		t.Parallel()
		rs := replicas(t, db, 2, Config{Query: PerMinute(2)}) // burst 1
		erin := callerCtx("shared-erin", "192.0.2.4")
		require.Nil(t, rs[0].Take(erin, Charge{ScopeQuery, 1}))
		require.Nil(t, rs[1].Take(erin, Charge{ScopeQuery, 1}))
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM rate_limit_buckets WHERE key = $1`, sharedKey(ScopeQuery, "principal https://idp.test shared-erin")).Scan(&n))
		require.Zero(t, n)
	})
}

// The table holds no identifier: the key is a hash of scope and caller.
func TestSharedBucketsHoldNoIdentifier(t *testing.T) {
	t.Parallel()
	db := sharedDB(t)
	rs := replicas(t, db, 1, Config{})
	require.Nil(t, rs[0].Take(callerCtx("frank-subject", "192.0.2.5"), Charge{ScopeMutation, 1}))
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM rate_limit_buckets`).Scan(&n))
	require.Equal(t, 1, n)
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM rate_limit_buckets WHERE position('frank'::bytea IN key) > 0`).Scan(&n))
	require.Zero(t, n)
}

// When the database cannot be asked, the in-process allowance still holds and the
// failure is counted.
func TestSharedAllowanceWithoutTheDatabase(t *testing.T) {
	t.Parallel()
	db := sharedDB(t)
	rs := replicas(t, db, 1, Config{Mutation: PerMinute(4)}) // burst 2
	require.NoError(t, db.Close())
	grace := callerCtx("shared-grace", "192.0.2.6")
	require.Nil(t, rs[0].Take(grace, Charge{ScopeMutation, 1}))
	require.Nil(t, rs[0].Take(grace, Charge{ScopeMutation, 1}))
	require.NotNil(t, rs[0].Take(grace, Charge{ScopeMutation, 1}))
	require.Equal(t, 2.0, testutil.ToFloat64(rs[0].shared.errors))
}

// BenchmarkSharedMutationCharge is the cost the shared allowance adds to each
// mutation: one statement on the database (figures in docs/scaling.md).
func BenchmarkSharedMutationCharge(b *testing.B) {
	db := sharedDB(b)
	for _, shared := range []bool{false, true} {
		b.Run(fmt.Sprintf("shared=%v", shared), func(b *testing.B) {
			never := Rule{PerMinute: math.MaxInt32, Burst: math.MaxInt32} // measure the charge, not refusals
			cfg := Config{Mutation: never, Payment: never}
			if shared {
				cfg.Shared = db
			}
			l := New(cfg, nil)
			var n atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := callerCtx(fmt.Sprintf("bench-%d", n.Add(1)), "192.0.2.7")
				for pb.Next() {
					if l.Take(ctx, Charge{ScopeMutation, 1}) != nil {
						b.Error("refused")
					}
				}
			})
		})
	}
}
