//go:build benchpprof

package main

import (
	"net"
	"net/http"
	_ "net/http/pprof" // the profiles, on http.DefaultServeMux (which nothing else here serves)
	"os"
	"time"
)

// Built only with -tags benchpprof (scripts/bench-burst.sh with BURST_PROFILE=1):
// Go's profiles on SCOVILLE_PPROF_ADDR, which must be a loopback address. No
// release build contains this file.
func init() {
	addr := os.Getenv("SCOVILLE_PPROF_ADDR")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		panic("SCOVILLE_PPROF_ADDR must be a loopback address with a port")
	}
	go func() {
		srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}
		_ = srv.ListenAndServe()
	}()
}
