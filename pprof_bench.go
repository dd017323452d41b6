//go:build benchpprof

package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof" // the profiles, on http.DefaultServeMux (which nothing else here serves)
	"os"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/scoville/scoville/config"
)

// profileHeap leaves the runtime's heap profiling as it is (its default, or
// GODEBUG=memprofilerate): this build serves the profiles.
func profileHeap() {}

// Built only with -tags benchpprof (scripts/bench-burst.sh with BURST_PROFILE=1,
// scripts/bench-read.sh with BENCH_PROFILE=1): Go's profiles on SCOVILLE_PPROF_ADDR,
// which must be a loopback address, and /debug/memclasses. No release build
// contains this file.
func init() {
	env, err := config.LoadBenchTools(os.Getenv)
	if err != nil {
		panic(err.Error())
	}
	addr := env.PprofAddr
	if addr == "" {
		return
	}
	http.HandleFunc("/debug/memclasses", memClasses)
	go func() {
		srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}
		_ = srv.ListenAndServe()
	}()
}

// memClasses writes, one "name value" a line, where the runtime's memory is
// (runtime/metrics' /memory/classes/), the heap goal and live heap, and the number
// of goroutines: cheap enough to sample several times a second.
func memClasses(w http.ResponseWriter, _ *http.Request) {
	var samples []metrics.Sample
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") || d.Name == "/gc/heap/goal:bytes" ||
			d.Name == "/gc/heap/live:bytes" || d.Name == "/sched/goroutines:goroutines" ||
			d.Name == "/gc/cycles/total:gc-cycles" || d.Name == "/gc/heap/allocs:bytes" {
			samples = append(samples, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(samples)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			fmt.Fprintf(w, "%s %d\n", s.Name, s.Value.Uint64())
		}
	}
}
