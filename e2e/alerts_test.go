package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/alertrules"
)

// registeredMetrics lists the names of every metric on reg, labelled vectors with no
// series yet included (a scrape would miss those).
func registeredMetrics(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		require.NotNil(t, m, "descriptor %s", d)
		names[m[1]] = true
	}
	return names
}

// TestAlertRulesWatchMetricsTheServerExports catches an alert on a misspelt or
// removed metric, which Prometheus would evaluate to nothing, forever silent.
func TestAlertRulesWatchMetricsTheServerExports(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	registered := registeredMetrics(t, a.app.Registry())

	groups, err := alertrules.Load(filepath.Join("..", alertrules.Path))
	require.NoError(t, err)
	used, err := alertrules.Metrics(groups)
	require.NoError(t, err)
	require.NotEmpty(t, used)
	for _, name := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && registered[b] {
				base = b
			}
		}
		require.True(t, registered[base], "%s uses metric %s, which the server does not register", alertrules.Path, name)
	}
}

// TestMetricsEndpointShowsOperations runs a query and a refused token through the
// real server and reads them back from /metrics.
func TestMetricsEndpointShowsOperations(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})

	res := a.gql(a.token("metrics-admin", "admin"), `mutation($in: CreatePlanInput!) { createPlan(input: $in) { plan { id } userErrors { code } } }`,
		map[string]any{"in": map[string]any{
			"name": "Metrics box", "description": "d", "interval": "MONTH", "amount": 1500, "currency": "USD", "idempotencyKey": "metrics-plan-1",
		}})
	require.Empty(t, res.Errors, res.Raw)
	res = a.gql(a.token("metrics-user"), `{ plans { id } }`, nil)
	require.Empty(t, res.Errors, res.Raw)
	res = a.gql("", `{ me { id } }`, nil)
	require.Contains(t, res.codes(), "UNAUTHENTICATED")
	res = a.gql("", `{ nosuchfield_chosen_by_client }`, nil)
	require.NotEmpty(t, res.Errors)

	status, body := a.get("/metrics")
	require.Equal(t, 200, status)
	for _, want := range []string{
		`scoville_graphql_operations_total{code="OK",operation="plans",type="query"} 1`,
		`scoville_graphql_operations_total{code="UNAUTHENTICATED",operation="me",type="query"} 1`,
		`scoville_graphql_operations_total{code="GRAPHQL_VALIDATION_FAILED",operation="unknown",type="unknown"} 1`,
		`scoville_graphql_operation_duration_seconds_count{operation="plans",type="query"} 1`,
		`scoville_graphql_operations_total{code="OK",operation="createPlan",type="mutation"} 1`,
		`scoville_stripe_calls_total{op="CreateProduct",outcome="ok"} 1`,
		`scoville_stripe_requests_total{endpoint="/v1/products",method="POST",status="2xx"}`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "nosuchfield_chosen_by_client")
}
