//go:build !benchpprof

package main

import (
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var sink []byte

// samplesIn is how many allocations the heap profile records under a function
// whose name contains fn.
func samplesIn(fn string) int64 {
	n, _ := runtime.MemProfile(nil, true)
	records := make([]runtime.MemProfileRecord, n+64)
	n, _ = runtime.MemProfile(records, true)
	var samples int64
	for _, r := range records[:n] {
		for _, pc := range r.Stack() {
			if f := runtime.FuncForPC(pc); f != nil && strings.Contains(f.Name(), fn) {
				samples += r.AllocObjects
				break
			}
		}
	}
	return samples
}

// Not parallel: it changes the process's profiling rate.
func TestReleaseBuildRecordsNoHeapProfile(t *testing.T) {
	rate := runtime.MemProfileRate
	profileHeap() // first: the test's own allocations from here on are not sampled
	t.Cleanup(func() { runtime.MemProfileRate = rate })

	// Each allocation is larger than the default sampling interval: with heap
	// profiling on, nearly every one is recorded.
	const allocations = 64
	for range allocations {
		sink = make([]byte, 1<<20)
	}
	for range 3 { // a record is published some collections after the allocation
		runtime.GC()
	}

	// The runtime records one more allocation on each processor after the rate
	// changes, then none.
	require.LessOrEqual(t, samplesIn("TestReleaseBuildRecordsNoHeapProfile"), int64(runtime.GOMAXPROCS(0)),
		"allocations were recorded for a heap profile")
}
