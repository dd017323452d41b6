package ratelimit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Shared allowances. The in-process buckets hold per process, so N API replicas
// would let a caller make N times the mutations and payment operations the
// configuration allows. The per-caller ScopeMutation and ScopePayment allowances
// are therefore also kept in PostgreSQL, in rate_limit_buckets: one token bucket
// per caller and scope, charged by one statement that refills, checks and takes
// the tokens of every bucket of a request atomically per bucket. The in-process
// buckets stay the first, free line (and the only one for reads); the database
// is asked only about operations they let through.
//
// A request refused by one shared bucket gets back what the others took, so a
// refused request costs nothing there either. When the database cannot be asked
// the request is let through (the in-process buckets still hold per process) and
// scoville_rate_limit_shared_errors_total counts it.

// sharedScopes are the per-caller allowances kept in the database.
var sharedScopes = map[Scope]bool{ScopeMutation: true, ScopePayment: true}

// sharedPurgeEvery is how often a process deletes buckets that have refilled.
const sharedPurgeEvery = time.Minute

type shared struct {
	db        *sql.DB
	rules     map[Scope]Rule
	errors    prometheus.Counter
	lastPurge atomic.Int64 // unix nanoseconds
}

func newShared(db *sql.DB, rules map[Scope]Rule) *shared {
	return &shared{db: db, rules: rules, errors: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "scoville_rate_limit_shared_errors_total",
		Help: "Operations let through because the shared (database) rate limit could not be checked.",
	})}
}

// sharedKey is the bucket's key: a hash of scope and caller, so the table holds no
// identifier.
func sharedKey(scope Scope, caller string) []byte {
	sum := sha256.Sum256([]byte("scoville/ratelimit/v1\x00" + string(scope) + "\x00" + caller))
	return sum[:16]
}

// takeStmt refills each bucket for the time since it was last charged, and takes
// n tokens from each that has them, in key order (concurrent requests lock rows in
// the same order). It returns the keys charged. A new bucket starts full.
const takeStmt = `
INSERT INTO rate_limit_buckets AS b (key, tokens, rate, burst, updated_at)
SELECT w.k, w.burst - w.n, w.rate, w.burst, now()
FROM unnest($1::bytea[], $2::float8[], $3::float8[], $4::float8[]) AS w(k, n, rate, burst)
ORDER BY w.k
ON CONFLICT (key) DO UPDATE SET
    tokens = LEAST(EXCLUDED.burst, b.tokens + EXCLUDED.rate * GREATEST(0, EXTRACT(EPOCH FROM EXCLUDED.updated_at - b.updated_at))::float8)
        - (EXCLUDED.burst - EXCLUDED.tokens),
    rate = EXCLUDED.rate, burst = EXCLUDED.burst, updated_at = GREATEST(b.updated_at, EXCLUDED.updated_at)
WHERE LEAST(EXCLUDED.burst, b.tokens + EXCLUDED.rate * GREATEST(0, EXTRACT(EPOCH FROM EXCLUDED.updated_at - b.updated_at))::float8)
    >= EXCLUDED.burst - EXCLUDED.tokens
RETURNING b.key`

// refundStmt gives back what takeStmt took from the buckets of a refused request.
const refundStmt = `
UPDATE rate_limit_buckets AS b SET tokens = LEAST(b.burst, b.tokens + w.n)
FROM unnest($1::bytea[], $2::float8[]) AS w(k, n) WHERE b.key = w.k`

// waitStmt is how many seconds each bucket needs before it holds n tokens.
const waitStmt = `
SELECT coalesce(max((w.n - LEAST(b.burst, b.tokens + b.rate * GREATEST(0, EXTRACT(EPOCH FROM now() - b.updated_at))::float8)) / b.rate), 0)
FROM unnest($1::bytea[], $2::float8[]) AS w(k, n) JOIN rate_limit_buckets b ON b.key = w.k`

// purgeStmt deletes buckets idle long enough to have refilled completely.
const purgeStmt = `DELETE FROM rate_limit_buckets WHERE updated_at < now() - make_interval(secs => burst / rate)`

type sharedCharge struct {
	key   []byte
	scope Scope
	n     float64
	rule  Rule
}

// take charges caller's shared buckets; nil lets the request through.
func (s *shared) take(ctx context.Context, caller string, charges []Charge) *Refusal {
	var all []sharedCharge
	for _, c := range charges {
		if !sharedScopes[c.Scope] || c.N <= 0 {
			continue
		}
		r := s.rules[c.Scope]
		if c.N > r.Burst {
			// More at once than the bucket holds (the in-process bucket refuses it first).
			return &Refusal{Scope: c.Scope, RetryAfter: time.Minute}
		}
		all = append(all, sharedCharge{key: sharedKey(c.Scope, caller), scope: c.Scope, n: float64(c.N), rule: r})
	}
	if len(all) == 0 {
		return nil
	}
	s.maybePurge()
	keys, ns := make([][]byte, len(all)), make([]float64, len(all))
	rates, bursts := make([]float64, len(all)), make([]float64, len(all))
	for i, c := range all {
		keys[i], ns[i] = c.key, c.n
		rates[i], bursts[i] = float64(c.rule.PerMinute)/60, float64(c.rule.Burst)
	}
	rows, err := s.db.QueryContext(ctx, takeStmt, keys, ns, rates, bursts)
	if err != nil {
		s.errors.Inc()
		return nil
	}
	taken := map[string]bool{}
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			break
		}
		taken[string(k)] = true
	}
	if err := rows.Close(); err != nil || rows.Err() != nil {
		s.errors.Inc()
		return nil
	}
	if len(taken) == len(all) {
		return nil
	}
	var back, short [][]byte
	var backN, shortN []float64
	var scope Scope
	for _, c := range all {
		if taken[string(c.key)] {
			back, backN = append(back, c.key), append(backN, c.n)
		} else {
			short, shortN = append(short, c.key), append(shortN, c.n)
			if scope == "" || c.scope == ScopePayment {
				scope = c.scope
			}
		}
	}
	if len(back) > 0 {
		if _, err := s.db.ExecContext(ctx, refundStmt, back, backN); err != nil {
			s.errors.Inc()
		}
	}
	wait := time.Second
	var secs float64
	if err := s.db.QueryRowContext(ctx, waitStmt, short, shortN).Scan(&secs); err == nil && secs > 0 && !math.IsInf(secs, 0) {
		wait = time.Duration(math.Ceil(secs*1000)) * time.Millisecond
	}
	return &Refusal{Scope: scope, RetryAfter: wait}
}

// maybePurge deletes refilled buckets, at most once per sharedPurgeEvery per
// process, in the background.
func (s *shared) maybePurge() {
	now := time.Now().UnixNano()
	last := s.lastPurge.Load()
	if now-last < int64(sharedPurgeEvery) || !s.lastPurge.CompareAndSwap(last, now) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = s.db.ExecContext(ctx, purgeStmt) // a failed purge waits for the next one
	}()
}
