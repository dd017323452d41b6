package e2e

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

// Benchmarks of the read path through the whole stack: HTTP on loopback, token
// verification, gqlgen and PostgreSQL. Figures are in docs/performance.md; `make bench` runs them.

func BenchmarkPlansAnonymous(b *testing.B) {
	benchGraphQL(b, false, `{"query":"{ plans { id name interval price { amount currency } } }"}`)
}

func BenchmarkMeWithToken(b *testing.B) {
	benchGraphQL(b, true, `{"query":"{ me { id email name } }"}`)
}

// BenchmarkMeSubscriptions is make bench-read's query: a customer with three
// subscriptions, each on its own plan. cpu-ns/op is the whole process's CPU (client
// and server) per request.
func BenchmarkMeSubscriptions(b *testing.B) {
	a := newTestApp(b, appOptions{env: map[string]string{"LOG_LEVEL": "error"}})
	f := a.fixture("price_bench1", "cus_bench", "sub_bench1")
	for _, price := range []string{"price_bench2", "price_bench3"} {
		plan := a.otherPlan(price, 3100)
		require.NoError(b, a.db.Create(&models.Subscription{ID: uuid.NewString(), CustomerID: f.customerID, PlanID: plan,
			Status: models.SubscriptionActive, ShippingAddress: models.Address{Name: "Buyer", Line1: "1 Pepper St", City: "Austin",
				PostalCode: "78701", Country: "US"}}).Error)
	}
	a.issuerSubject(f.customerID, "bench")
	token := a.token("bench")
	const query = `{ me { id email subscriptions { id status plan { name interval price { amount currency } } } } }`
	res := a.gql(token, query, nil)
	require.Empty(b, res.Errors, res.Raw)
	require.Len(b, res.Data["me"].(map[string]any)["subscriptions"], 3)
	runGraphQL(b, a, token, `{"query":"`+query+`"}`)
}

func benchGraphQL(b *testing.B, withToken bool, body string) {
	a := newTestApp(b, appOptions{env: map[string]string{"LOG_LEVEL": "error"}})
	a.seed()
	token := ""
	if withToken {
		token = a.token("bench")
	}
	runGraphQL(b, a, token, body)
}

// processCPU is the CPU time this process has used, every thread included.
func processCPU() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

func runGraphQL(b *testing.B, a *testApp, token, body string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/graphql", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	})
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
}
