//go:build !benchpprof

package main

import "runtime"

// profileHeap turns heap profiling off: a release build serves no profile (only
// the benchpprof build does), so the records would take memory for nothing.
func profileHeap() { runtime.MemProfileRate = 0 }
