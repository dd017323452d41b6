package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// Benchmarks of the read path through the whole stack: HTTP on loopback, token
// verification, gqlgen and PostgreSQL. Figures are in docs/performance.md; `make bench` runs them.

func BenchmarkPlansAnonymous(b *testing.B) {
	benchGraphQL(b, false, `{"query":"{ plans { id name interval price { amount currency } } }"}`)
}

func BenchmarkMeWithToken(b *testing.B) {
	benchGraphQL(b, true, `{"query":"{ me { id email name } }"}`)
}

func benchGraphQL(b *testing.B, withToken bool, body string) {
	a := newTestApp(b, appOptions{env: map[string]string{"LOG_LEVEL": "error"}})
	a.seed()
	token := ""
	if withToken {
		token = a.token("bench")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
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
}
