package alertrules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRepositoryRulesAreValid(t *testing.T) {
	t.Parallel()
	groups, err := Load(filepath.Join("..", Path))
	require.NoError(t, err)
	names, err := Metrics(groups)
	require.NoError(t, err)
	// The alerts OPS-3 asks for, each watching its metric.
	for _, want := range []string{
		"scoville_graphql_operations_total", "scoville_payments_total", "scoville_payment_alerts_total",
		"scoville_webhook_events_processed_total", "scoville_webhook_events_rejected_total",
		"scoville_auth_token_failures_total", "scoville_stripe_calls_total", "scoville_rate_limited_total",
		"scoville_outbox_deliveries_total", "scoville_outbox_endpoints_disabled_total", "scoville_outbox_oldest_pending_delivery_seconds",
	} {
		require.Contains(t, names, want)
	}
}

const good = `groups:
  - name: g
    rules:
      - alert: A
        expr: sum(rate(x_total[5m])) > 1
        for: 5m
        labels: {severity: page}
        annotations: {summary: "s {{ $value }}"}
`

func TestLoadRefusesMistakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, from, to, wantErr string
	}{
		{"typo in a function", "rate(", "rta(", "rta"},
		{"unbalanced parenthesis", "[5m]))", "[5m])", "unclosed"},
		{"bad range", "[5m]", "[5q]", "duration"},
		{"unknown field", "expr:", "expresion:", "expresion"},
		{"bad duration", "for: 5m", "for: 5 minutes", "5 minutes"},
		{"broken template", "{{ $value }}", "{{ $value ", "summary"},
		{"no severity", "{severity: page}", "{team: x}", "severity"},
		{"unknown severity", "severity: page", "severity: urgent", "severity"},
		{"no summary", "{summary: \"s {{ $value }}\"}", "{description: d}", "summary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Contains(t, good, tt.from, "fixture")
			_, err := Load(write(t, strings.Replace(good, tt.from, tt.to, 1)))
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}
	t.Run("duplicate alert", func(t *testing.T) {
		t.Parallel()
		rule := good[strings.Index(good, "      - alert"):]
		_, err := Load(write(t, good+rule))
		require.ErrorContains(t, err, "used twice")
	})
	t.Run("recording rule", func(t *testing.T) {
		t.Parallel()
		_, err := Load(write(t, good+"  - name: r\n    rules:\n      - record: a:b\n        expr: sum(x_total)\n"))
		require.ErrorContains(t, err, "alerts only")
	})
	t.Run("empty file", func(t *testing.T) {
		t.Parallel()
		_, err := Load(write(t, "groups: []\n"))
		require.ErrorContains(t, err, "no rules")
	})
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		_, err := Load(filepath.Join(t.TempDir(), "nope.yml"))
		require.Error(t, err)
	})
	t.Run("the fixture itself is fine", func(t *testing.T) {
		t.Parallel()
		groups, err := Load(write(t, good))
		require.NoError(t, err)
		names, err := Metrics(groups)
		require.NoError(t, err)
		require.Equal(t, []string{"x_total"}, names)
	})
}

func TestMetricsNeedsANamedMetric(t *testing.T) {
	t.Parallel()
	groups, err := Load(write(t, strings.Replace(good, "x_total[5m]", `{job="api"}[5m]`, 1)))
	require.NoError(t, err)
	_, err = Metrics(groups)
	require.ErrorContains(t, err, "names no metric")

	groups, err = Load(write(t, strings.Replace(good, "x_total[5m]", `{__name__="y_total"}[5m]`, 1)))
	require.NoError(t, err)
	names, err := Metrics(groups)
	require.NoError(t, err)
	require.Equal(t, []string{"y_total"}, names)
}

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}
