//go:build !benchpprof

package main

// memProfileRate is 0 in release builds: they record no heap profile.
const memProfileRate = 0
