package ratelimit

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// buckets holds one token bucket per key for one rule, in least-recently-used order,
// so memory stays bounded: a bucket idle long enough to have refilled completely is
// the same as a fresh one and is dropped, and past maxKeys the least recently used
// bucket goes first.
type buckets struct {
	limit   rate.Limit
	burst   int
	idle    time.Duration // time for an empty bucket to refill completely
	maxKeys int

	mu    sync.Mutex
	order *list.List // of *bucket, most recently used at the front
	index map[string]*list.Element
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

func newBuckets(r Rule, maxKeys int) *buckets {
	perSecond := float64(r.PerMinute) / 60
	idle := time.Duration(float64(r.Burst) / perSecond * float64(time.Second))
	return &buckets{
		limit:   rate.Limit(perSecond),
		burst:   r.Burst,
		idle:    idle,
		maxKeys: maxKeys,
		order:   list.New(),
		index:   map[string]*list.Element{},
	}
}

// reserve takes n tokens for key at now. The caller must cancel the reservation when
// the request is refused by another bucket, so a refused request costs nothing.
func (b *buckets) reserve(key string, n int, now time.Time) *rate.Reservation {
	b.mu.Lock()
	defer b.mu.Unlock()
	var bk *bucket
	if el, ok := b.index[key]; ok {
		bk = el.Value.(*bucket)
		bk.last = now
		b.order.MoveToFront(el)
		b.evict(now, 0)
	} else {
		b.evict(now, 1)
		bk = &bucket{key: key, lim: rate.NewLimiter(b.limit, b.burst)}
		bk.last = now
		b.index[key] = b.order.PushFront(bk)
	}
	return bk.lim.ReserveN(now, n)
}

// evict drops buckets that have refilled completely, then the least recently used
// ones until room is left for need more. Called with mu held.
func (b *buckets) evict(now time.Time, need int) {
	for el := b.order.Back(); el != nil; el = b.order.Back() {
		bk := el.Value.(*bucket)
		if len(b.index)+need <= b.maxKeys && now.Sub(bk.last) <= b.idle {
			return
		}
		b.order.Remove(el)
		delete(b.index, bk.key)
	}
}

// size is the number of live buckets, for tests of the memory bound.
func (b *buckets) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.index)
}
