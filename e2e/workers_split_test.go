package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"maps"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// With RUN_WORKERS=false the server answers and enqueues but applies nothing; a
// `scoville work` process on the same database applies what it enqueued. Both are
// run through the real command, as an operator would start them.
func TestServerWithoutWorkersAndASeparateWorkProcess(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t, "")
	issuer := startIssuer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	env := map[string]string{
		"APP_ENV": "development", "DATABASE_URL": dbURL, "MIGRATE_ON_START": "true",
		"OIDC_ISSUER_URL": issuer.IssuerURL(), "OIDC_AUDIENCE": testAudience,
		"STRIPE_API_BASE": stripeMockURL(t), "STRIPE_SECRET_KEY": "sk_test_123",
		"STRIPE_WEBHOOK_SECRET": testWebhookSecret, "JOB_POLL_INTERVAL": "20ms",
		"DATA_ENCRYPTION_KEYS": testDataKeys(t, dbURL), "HTTP_ADDR": addr, "LOG_LEVEL": "warn",
	}
	start := func(args string, extra map[string]string) (stop func() int) {
		ctx, cancel := context.WithCancel(context.Background())
		out, err := os.CreateTemp(t.TempDir(), args)
		require.NoError(t, err)
		code := make(chan int, 1)
		procEnv := maps.Clone(env)
		maps.Copy(procEnv, extra)
		go func() { code <- scoville(t, ctx, []string{args}, procEnv, out) }()
		var once sync.Once
		result := -1
		return func() int {
			once.Do(func() {
				cancel()
				select {
				case result = <-code:
				case <-time.After(30 * time.Second):
					log, _ := os.ReadFile(out.Name())
					t.Errorf("scoville %s did not stop; its log:\n%s", args, log)
				}
			})
			return result
		}
	}
	stopServer := start("serve", map[string]string{"RUN_WORKERS": "false"})
	defer stopServer()

	db, err := sql.Open("pgx", dbURL)
	require.NoError(t, err)
	defer db.Close()
	status := func() string {
		var s string
		_ = db.QueryRow(`SELECT status FROM webhook_events WHERE provider_event_id = 'evt_split'`).Scan(&s)
		return s
	}

	body := webhooktest.Event("evt_split", "customer.created", time.Now(), webhooktest.Object{"id": "cus_split", "object": "customer"}, nil)
	require.Eventually(t, func() bool {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/stripe", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Stripe-Signature", webhooktest.Sign(body, testWebhookSecret, time.Now()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false // still starting
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond)
	// Stored with its job, and not applied: many polls pass with nobody working.
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, "RECEIVED", status())

	stopWorker := start("work", nil)
	require.Eventually(t, func() bool { return status() == "IGNORED" }, 30*time.Second, 20*time.Millisecond,
		"the work process applies what the server enqueued")
	require.Equal(t, 0, stopWorker(), "work stops cleanly")
	require.Equal(t, 0, stopServer(), "serve stops cleanly")
}
