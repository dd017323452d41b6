//go:build benchpprof

package main

import (
	"net/http"
	_ "net/http/pprof" // the profiles, on http.DefaultServeMux (which nothing else here serves)
	"os"
	"time"

	"github.com/scoville/scoville/config"
)

// Built only with -tags benchpprof (scripts/bench-burst.sh with BURST_PROFILE=1):
// Go's profiles on SCOVILLE_PPROF_ADDR, which must be a loopback address. No
// release build contains this file.
func init() {
	env, err := config.LoadBenchTools(os.Getenv)
	if err != nil {
		panic(err.Error())
	}
	addr := env.PprofAddr
	if addr == "" {
		return
	}
	go func() {
		srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}
		_ = srv.ListenAndServe()
	}()
}
