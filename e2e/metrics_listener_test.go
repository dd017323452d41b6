package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/logging"
	"github.com/scoville/scoville/logging/logtest"
)

// TestServeSaysWhereMetricsAre: started without METRICS_ADDR, the server says at start
// where /metrics is: nowhere in production (WARN), on HTTP_ADDR in development (INFO).
func TestServeSaysWhereMetricsAre(t *testing.T) {
	t.Parallel()
	for _, production := range []bool{true, false} {
		issuer := startIssuer(t)
		env := map[string]string{
			"APP_ENV": "development", "HTTP_ADDR": "127.0.0.1:0", "RUN_WORKERS": "false",
			"DATABASE_URL": dbtest.NewURL(t, ""), "MIGRATE_ON_START": "true",
			"OIDC_ISSUER_URL": issuer.IssuerURL(), "OIDC_AUDIENCE": testAudience,
			"STRIPE_API_BASE": stripeMockURL(t), "STRIPE_SECRET_KEY": "sk_test_123",
			"DATA_ENCRYPTION_KEYS": freshDataKeys(t),
		}
		cfg, err := config.Load(func(k string) string { return env[k] })
		require.NoError(t, err)
		if production {
			cfg.Env = config.Production // wired as production is, past config validation
		}
		logs := &logtest.Buffer{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Serve(ctx, cfg, logging.New(logs, nil)) }()
		require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"msg":"listening"`) }, 30*time.Second, 10*time.Millisecond,
			"the server started: %s", logs.String())
		cancel()
		require.NoError(t, <-done)

		out := logs.String()
		if production {
			require.Contains(t, out, `"level":"WARN","msg":"METRICS_ADDR is not set: /metrics is not served (production serves it only on METRICS_ADDR)"`)
		} else {
			require.Contains(t, out, `"level":"INFO","msg":"METRICS_ADDR is not set: /metrics is served on HTTP_ADDR (development only)"`)
		}
	}
}
