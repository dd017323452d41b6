package app

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Not parallel: it reads the process's heap goal.
func TestSettleHeapDropsStartupBuffersFromTheHeapGoal(t *testing.T) {
	const size = 64 << 20
	// As goose does while the server starts: a large buffer in use during a
	// collection, then kept in a pool.
	var pool sync.Pool
	buf := make([]byte, size)
	runtime.GC()
	pool.Put(&buf)
	before := heapGoal()
	require.Greater(t, before, uint64(2*size), "the collection while starting counted the buffer as live")

	settleHeap()

	after := heapGoal()
	require.Less(t, after, before-size, "the pooled buffer still sets the heap goal: before %d, after %d", before, after)
	runtime.KeepAlive(&pool)
}
