package e2e

import (
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/scoville/scoville/app"
)

// liveBenchSockets is how many sockets BenchmarkLiveSockets holds open.
const liveBenchSockets = 1000

// BenchmarkLiveSockets holds liveBenchSockets sockets, each following the same
// subscription, and commits one change per iteration: it reports the memory per
// socket (client and server, both in this process) and the latency from commit to
// each client (p50, p99). `make bench` runs it.
func BenchmarkLiveSockets(b *testing.B) { benchLive(b, liveBenchSockets) }

// TestLiveBenchmarkRuns runs the benchmark's code once, on a few sockets, so that
// it keeps working between benchmark runs.
func TestLiveBenchmarkRuns(t *testing.T) {
	t.Parallel()
	var failed bool
	res := testing.Benchmark(func(b *testing.B) {
		benchLive(b, 5)
		failed = b.Failed()
	})
	if failed || res.N == 0 {
		t.Fatal("the live benchmark failed")
	}
}

func benchLive(b *testing.B, sockets int) {
	a := newTestApp(b, appOptions{env: map[string]string{"LOG_LEVEL": "error", "CORS_ALLOWED_ORIGINS": liveOrigin},
		options: []app.Option{app.WithLiveLimits(app.LiveLimits{
			MaxSocketsPerAddress: sockets + 1, MaxSocketsPerPrincipal: sockets + 1,
			MaxOperationsPerPrincipal: sockets + 1, MaxOperationsPerAddress: sockets + 1,
		})}})
	f := a.fixture("price_live_bench", "cus_live_bench", "sub_live_bench")
	a.issuerSubject(f.customerID, "live-bench")
	token := a.token("live-bench")
	const q = `subscription ($id: ID) { subscriptionUpdated(id: $id) { id status } }`

	type received struct {
		status string
		at     time.Time
	}
	got := make(chan received, sockets)
	done := make(chan struct{})
	b.Cleanup(func() { close(done) })
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range sockets {
		c, _, err := dialLive(b, wsURL(a.srv.URL), nil)
		if err != nil {
			b.Fatal(err)
		}
		c.send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
		if m := c.next(); m.Type != "connection_ack" {
			b.Fatalf("connection_init: %s %s", m.Type, m.Payload)
		}
		c.subscribe("1", q, map[string]any{"id": f.subscriptionID})
		c.push("1")
		go func() {
			for {
				_, raw, err := c.conn.Read(context.Background())
				if err != nil {
					return
				}
				at := time.Now()
				var m liveMessage
				if json.Unmarshal(raw, &m) != nil {
					return
				}
				switch m.Type {
				case "ping":
					_ = c.conn.Write(context.Background(), websocket.MessageText, []byte(`{"type":"pong"}`))
				case "next":
					var p livePush
					if json.Unmarshal(m.Payload, &p) == nil && p.Data.SubscriptionUpdated != nil {
						select {
						case got <- received{p.Data.SubscriptionUpdated.Status, at}:
						case <-done:
							return
						}
					}
				}
			}
		}()
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Reported after the loop: ResetTimer drops the metrics reported before it.
	heapPerSocket := float64(after.HeapInuse-min(after.HeapInuse, before.HeapInuse)) / float64(sockets)

	var latencies []time.Duration
	status := "ACTIVE"
	b.ResetTimer()
	for range b.N {
		if status == "ACTIVE" {
			status = "PAST_DUE"
		} else {
			status = "ACTIVE"
		}
		if err := announceStatus(a.db, f.subscriptionID, status); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		for n := 0; n < sockets; {
			select {
			case r := <-got:
				if r.status == status {
					latencies = append(latencies, r.at.Sub(committed))
					n++
				}
			case <-time.After(liveWait):
				b.Fatalf("%d of %d sockets received the change", n, sockets)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(heapPerSocket, "heap-bytes/socket")
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}
