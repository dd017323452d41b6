package graph

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/models"
)

// stubRoot answers Query.plans with one plan; every other resolver is a nil
// interface, so calling it panics and the recover function turns it into INTERNAL.
// It exercises the real executor, directives, error presenter and extensions without
// a database.
type stubRoot struct{ ResolverRoot }

func (stubRoot) Query() QueryResolver { return stubQuery{} }

type stubQuery struct{ QueryResolver }

func (stubQuery) Plans(context.Context) ([]*models.Plan, error) {
	return []*models.Plan{{
		ID: "00000000-0000-0000-0000-000000000001", Product: models.Product{Name: "Box"},
		Interval: models.BillingInterval("MONTH"), Amount: 1500, Currency: "EUR", Active: true,
	}}, nil
}

// newStubServer is the GraphQL handler as production builds it, over stubRoot.
func newStubServer(t testing.TB, extra ...any) http.Handler {
	t.Helper()
	cfg := HandlerConfig{Resolvers: stubRoot{}, Logger: slog.New(slog.DiscardHandler)}
	for _, e := range extra {
		if m, ok := e.(*Metrics); ok {
			cfg.Extensions = append(cfg.Extensions, m)
		}
	}
	return NewHandler(cfg)
}

func post(t testing.TB, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestMetricsCountOperationsByRootField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want map[[3]string]float64 // {type, operation, code} -> count
	}{
		{"ok query", `{"query":"query AnyNameAtAll { plans { id name } }"}`,
			map[[3]string]float64{{"query", "plans", CodeOK}: 1}},
		{"aliases count under the field's name", `{"query":"{ a: plans { id } b: plans { id } }"}`,
			map[[3]string]float64{{"query", "plans", CodeOK}: 2}},
		{"unauthenticated", `{"query":"{ me { id } }"}`,
			map[[3]string]float64{{"query", "me", "UNAUTHENTICATED"}: 1}},
		{"an error in one field leaves the other ok", `{"query":"{ plans { id } me { id } }"}`,
			map[[3]string]float64{{"query", "plans", CodeOK}: 1, {"query", "me", "UNAUTHENTICATED"}: 1}},
		{"fields in fragments", `{"query":"query { ...F } fragment F on Query { plans { id } }"}`,
			map[[3]string]float64{{"query", "plans", CodeOK}: 1}},
		{"parse error", `{"query":"{ plans { id "}`,
			map[[3]string]float64{{OperationUnknown, OperationUnknown, "GRAPHQL_PARSE_FAILED"}: 1}},
		{"invented fields never become labels", `{"query":"{ attackerChosenName123 }"}`,
			map[[3]string]float64{{OperationUnknown, OperationUnknown, "GRAPHQL_VALIDATION_FAILED"}: 1}},
		{"invented operation name", `{"query":"query A { plans { id } }","operationName":"Nope"}`,
			map[[3]string]float64{{OperationUnknown, OperationUnknown, "GRAPHQL_VALIDATION_FAILED"}: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			h := newStubServer(t, m)
			post(t, h, tt.body)

			for labels, want := range tt.want {
				require.Equal(t, want, testutil.ToFloat64(m.operations.WithLabelValues(labels[0], labels[1], labels[2])), "%v", labels)
			}
			require.Equal(t, len(tt.want), testutil.CollectAndCount(m.operations), "no other series")
			require.Equal(t, len(tt.want), testutil.CollectAndCount(m.duration), "one latency series per operation")
		})
	}
}

func TestMetricsCountPanicsAsInternal(t *testing.T) {
	t.Parallel()
	m := NewMetrics(nil)
	h := newStubServer(t, m)
	// Query.auditLog's resolver is the nil stub: once @hasRole(ADMIN) lets the admin
	// through, it panics and the recover function answers INTERNAL.
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewBufferString(`{"query":"{ auditLog { edges { cursor } } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req = req.WithContext(auth.WithPrincipal(req.Context(), &auth.Principal{
		Issuer: "https://issuer.test", Subject: "admin-1", Roles: []auth.Role{auth.RoleCustomer, auth.RoleSupport, auth.RoleAdmin},
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Contains(t, rec.Body.String(), `"INTERNAL"`)
	require.Equal(t, 1.0, testutil.ToFloat64(m.operations.WithLabelValues("query", "auditLog", models.CodeInternal)))
}

func TestMetricsLabelsAreBounded(t *testing.T) {
	t.Parallel()
	m := NewMetrics(nil)
	h := newStubServer(t, m)
	for i := range 50 {
		post(t, h, `{"query":"query Op`+string(rune('A'+i%26))+` { field`+string(rune('a'+i%26))+` }"}`)
		post(t, h, `{"query":"query Op`+string(rune('A'+i%26))+` { plans { id } }","operationName":"Op`+string(rune('A'+i%26))+`"}`)
	}
	require.Equal(t, 2, testutil.CollectAndCount(m.operations), "50 invented names fold into unknown; operation names are ignored")
}

func TestErrorCodeLabel(t *testing.T) {
	t.Parallel()
	require.Equal(t, "INTERNAL", errorCode(map[string]any{"code": "INTERNAL"}))
	require.Equal(t, codeUnspecified, errorCode(nil))
	require.Equal(t, codeUnspecified, errorCode(map[string]any{"code": 3}))
	require.Equal(t, codeOther, errorCode(map[string]any{"code": "free text from somewhere"}))
}

// cancelingQuery's plans resolver is a client that hangs up while the database is
// read: the request's context is canceled and the read fails with it.
type cancelingQuery struct {
	QueryResolver
	hangUp context.CancelFunc
}

func (q cancelingQuery) Plans(ctx context.Context) ([]*models.Plan, error) {
	q.hangUp()
	<-ctx.Done()
	return nil, fmt.Errorf("catalog: plans: %w", ctx.Err())
}

type cancelingRoot struct {
	ResolverRoot
	q cancelingQuery
}

func (r cancelingRoot) Query() QueryResolver { return r.q }

// A client that goes away mid-request is no server error: its operation is counted
// as CANCELED, never INTERNAL, and nothing is logged at ERROR (nor at WARN).
func TestMetricsCountAClientThatWentAwayAsCanceled(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	m := NewMetrics(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := NewHandler(HandlerConfig{
		Resolvers:  cancelingRoot{q: cancelingQuery{hangUp: cancel}},
		Logger:     slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Extensions: []graphql.HandlerExtension{m},
	})
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/graphql", bytes.NewBufferString(`{"query":"{ plans { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(httptest.NewRecorder(), req)

	require.Equal(t, 1.0, testutil.ToFloat64(m.operations.WithLabelValues("query", "plans", CodeCanceled)))
	require.Zero(t, testutil.ToFloat64(m.operations.WithLabelValues("query", "plans", models.CodeInternal)))
	require.NotContains(t, logs.String(), `"level":"ERROR"`)
	require.NotContains(t, logs.String(), `"level":"WARN"`)
}
