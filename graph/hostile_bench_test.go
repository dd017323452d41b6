package graph

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time this process has used (every thread, the collector's
// included): on a shared machine it measures the work better than the wall clock.
func cpuTime() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// BenchmarkHostileDocuments is the server's time to answer each shape of the corpus,
// anonymous, over POST, with the query cache unable to help (a refused document is
// never cached). Figures: docs/incoming/h-parse.md.
func BenchmarkHostileDocuments(b *testing.B) {
	h := NewHandler(HandlerConfig{Resolvers: testRoot{}, Logger: slog.New(slog.DiscardHandler)})
	for _, d := range hostileDocuments() {
		body, err := json.Marshal(map[string]any{"query": d.query, "variables": d.vars})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			cpu := cpuTime()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code == http.StatusOK {
					b.Fatalf("not refused: %.200s", rec.Body.String())
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
