package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scoville/scoville/clientip"
	"github.com/scoville/scoville/ratelimit"
)

// BenchmarkNormalQueryUnderAttack measures the latency of a plain `{ plans { id } }`
// from shoppers (one address per request, in turn), alone and then while four connections from another
// address send the hostile shape named by HOSTILE_SHAPE (default: duplicate fields)
// as fast as they are answered, over real TCP to the handler as production builds
// it. With LOAD_LIMITS=1 the production rate and in-flight limits stand in front
// (default allowances), and the attacked phase starts once the attacker's burst is
// spent. It reports p50 and p99 of each phase; it asserts nothing about time.
// Figures: docs/incoming/h-parse.md.
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
	var h http.Handler = NewHandler(HandlerConfig{Resolvers: testRoot{}, Logger: slog.New(slog.DiscardHandler)})
	limits := os.Getenv("LOAD_LIMITS") == "1"
	if limits {
		l := ratelimit.New(ratelimit.Config{}, nil)
		h = l.PerAddress(ratelimit.ScopeAddress, l.InFlight(h))
	}
	// Each client names its address, as the clientip middleware would find it.
	h = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			addr := netip.MustParseAddr(r.Header.Get("X-Test-Addr"))
			next.ServeHTTP(w, r.WithContext(clientip.With(r.Context(), addr)))
		})
	}(h)
	srv := httptest.NewServer(h)
	defer srv.Close()
	normal := []byte(`{"query":"{ plans { id } }"}`)
	send := func(c *http.Client, addr string, body []byte) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Test-Addr", addr)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	measure := func(n int) (p50, p99 time.Duration) {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		// The normal traffic is many shoppers: one address per request, in turn.
		addr := func(i int) string { return fmt.Sprintf("192.0.2.%d", 1+i%250) }
		for i := range 20 { // warm the connection and the query cache
			send(c, addr(i), normal)
		}
		lat := make([]time.Duration, n)
		for i := range lat {
			start := time.Now()
			if code := send(c, addr(i), normal); code != http.StatusOK {
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
	var attacks, refused atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for !stop.Load() {
				switch send(c, "198.51.100.1", attack) {
				case http.StatusOK:
					b.Errorf("attack answered 200")
					return
				case http.StatusTooManyRequests:
					refused.Add(1)
				default:
					attacks.Add(1)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // let the attack reach its pace
	for limits && refused.Load() == 0 {
		time.Sleep(50 * time.Millisecond) // until the attacker's burst is spent
	}
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
	b.ReportMetric(float64(refused.Load()), "attacks-refused-429")
}
