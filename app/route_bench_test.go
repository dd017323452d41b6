package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/httpserver"
	"github.com/scoville/scoville/ratelimit"
	"github.com/scoville/scoville/resolvers"
)

// fixedVerifier answers every token with a copy of one principal, as the token
// cache does for a token it has seen.
type fixedVerifier struct{ p auth.Principal }

func (v fixedVerifier) Verify(context.Context, string) (*auth.Principal, error) {
	p := v.p
	return &p, nil
}

// BenchmarkGraphQLRoute measures what the public handler and the /graphql route
// cost one authenticated request before and after GraphQL: every middleware of
// the production chain (request id, client address, security headers, mux, CORS,
// deadline, limits, authentication, loaders), with a handler in place of gqlgen
// that reads the body and answers a small JSON document. allocs/op and B/op are
// the figures to compare (docs/incoming/h-mw.md).
//
//	go test ./app -run '^$' -bench BenchmarkGraphQLRoute -benchmem
func BenchmarkGraphQLRoute(b *testing.B) {
	logger := slog.New(slog.DiscardHandler)
	limiter := ratelimit.New(ratelimit.Config{
		Address: ratelimit.PerMinute(1 << 30), Query: ratelimit.PerMinute(1 << 30),
		InFlightPerCaller: 1 << 20, InFlightPerAddress: 1 << 20,
	}, nil)
	// An answer the size of make bench-read's: a customer with three subscriptions.
	sub := `{"id":"0b6f6a3e-5c1e-4a57-9d0e-6f7f2b1e9a10","status":"ACTIVE","plan":{"name":"Monthly hot box","interval":"MONTH","price":{"amount":2900,"currency":"usd"}}}`
	answer := []byte(`{"data":{"me":{"id":"6d1c1f7e-0f5e-4b8e-a3f0-1f2b3c4d5e6f","email":"buyer@example.com","subscriptions":[` +
		sub + "," + sub + "," + sub + `]}}}`)
	gql := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if _, ok := auth.PrincipalFrom(r.Context()); !ok {
			b.Fatal("no principal")
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	mux := http.NewServeMux()
	mux.Handle("/graphql", graphqlRoute(graphqlParts{
		logger: logger, metrics: httpserver.NewMetrics(prometheus.NewRegistry()), origins: []string{"https://shop.example"},
		timeout: 15 * time.Second, limiter: limiter,
		authenticate: auth.Middleware(fixedVerifier{auth.Principal{Issuer: "https://idp.example", Subject: "u1",
			Expiry: time.Now().Add(time.Hour)}}, logger, nil),
		loaders: (&resolvers.Resolver{}).Loaders, gql: gql,
	}))
	route := publicHandler(nil, mux)
	const body = `{"query":"{ me { id email subscriptions { id status plan { name interval price { amount currency } } } } }"}`
	token := "Bearer " + strings.Repeat("t", 900)
	// handler alone: the harness's own cost (request, recorder), to subtract.
	alone := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gql.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), &auth.Principal{Subject: "u1"})))
	})
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"chain", route}, {"handler alone", alone}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Authorization", token)
				r.Header.Set("Origin", "https://shop.example")
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
