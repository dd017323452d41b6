package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkNormalQueryUnderAttack measures the latency of a plain `{ plans { id } }`
// from one client, alone and then while four connections send the hostile shape named
// by HOSTILE_SHAPE (default: duplicate fields) as fast as they are answered, over
// real TCP to the handler as production builds it (without the rate limits, which
// would only help). It reports p50 and p99 of each phase; it asserts nothing about
// time. Figures: docs/incoming/h-parse.md.
//
//	go test ./graph -run '^$' -bench BenchmarkNormalQueryUnderAttack -benchtime 2000x
func BenchmarkNormalQueryUnderAttack(b *testing.B) {
	shape := os.Getenv("HOSTILE_SHAPE")
	if shape == "" {
		shape = "duplicate fields"
	}
	var attack []byte
	for _, d := range hostileDocuments() {
		if d.name == shape {
			attack, _ = json.Marshal(map[string]any{"query": d.query, "variables": d.vars})
		}
	}
	if attack == nil {
		b.Fatalf("no shape %q", shape)
	}
	srv := httptest.NewServer(NewHandler(HandlerConfig{Resolvers: testRoot{}, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	normal := []byte(`{"query":"{ plans { id } }"}`)
	send := func(c *http.Client, body []byte) int {
		resp, err := c.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	measure := func(n int) (p50, p99 time.Duration) {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		for range 20 { // warm the connection and the query cache
			send(c, normal)
		}
		lat := make([]time.Duration, n)
		for i := range lat {
			start := time.Now()
			if code := send(c, normal); code != http.StatusOK {
				b.Fatalf("normal query: %d", code)
			}
			lat[i] = time.Since(start)
		}
		slices.Sort(lat)
		return lat[n/2], lat[n*99/100]
	}
	n := max(b.N, 100)
	b.ResetTimer()
	idle50, idle99 := measure(n)

	var stop atomic.Bool
	var attacks atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for !stop.Load() {
				if code := send(c, attack); code == http.StatusOK {
					b.Errorf("attack answered 200")
					return
				}
				attacks.Add(1)
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // let the attack reach its pace
	start := time.Now()
	load50, load99 := measure(n)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(idle50.Microseconds()), "idle-p50-µs")
	b.ReportMetric(float64(idle99.Microseconds()), "idle-p99-µs")
	b.ReportMetric(float64(load50.Microseconds()), "attack-p50-µs")
	b.ReportMetric(float64(load99.Microseconds()), "attack-p99-µs")
	b.ReportMetric(float64(attacks.Load())/elapsed.Seconds(), "attacks/s")
}
