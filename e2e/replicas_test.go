package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// replicaBurstEnv sets how many events the replica test sends while it kills one
// API replica (the figure is 10,000; the default keeps `make test` short on
// a small machine with race-built processes).
const (
	replicaBurstEnv     = "SCOVILLE_REPLICA_BURST"
	defaultReplicaBurst = 600
)

// reconcileEvery is the work processes' RECONCILE_INTERVAL in the replica test.
const reconcileEvery = time.Second

// cluster is several scoville processes on one database (the fault suite's rig),
// in front of one fake Stripe: API replicas (serve with RUN_WORKERS=false) and
// work processes, run through the real command as an operator starts them.
type cluster struct {
	*faultRig
	stripe *stripefake.Server
	extra  map[string]string // on top of the rig's configuration
	client *http.Client
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	r := newFaultRig(t)
	fake := newFakeStripe(t)
	r.app.seedAt(fake.URL)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(client.CloseIdleConnections)
	return &cluster{faultRig: r, stripe: fake, client: client, extra: map[string]string{
		"STRIPE_API_BASE": fake.URL, "OIDC_ISSUER_URL": r.app.issuer.IssuerURL(), "LOG_LEVEL": "warn",
		"ALLOWED_REDIRECT_ORIGINS": "https://shop.example", "JOB_POLL_INTERVAL": "20ms",
		"RECONCILE_INTERVAL": reconcileEvery.String(), "RATE_LIMIT_MUTATIONS_PER_MINUTE": "1000000",
		"RATE_LIMIT_PAYMENTS_PER_MINUTE": "1000000", "RATE_LIMIT_QUERIES_PER_MINUTE": "1000000",
	}}
}

// api starts an API replica, ready, and returns it with its base URL.
func (c *cluster) api() (*faultProc, string) {
	env := maps.Clone(c.extra)
	env["RUN_WORKERS"] = "false"
	p := c.start("serve", env)
	return p, "http://" + p.addr
}

// worker starts a work process and returns it with its metrics URL once it answers.
func (c *cluster) worker() (*faultProc, string) {
	env := maps.Clone(c.extra)
	env["METRICS_ADDR"] = freeAddr(c.t)
	p := c.start("work", env)
	url := "http://" + env["METRICS_ADDR"] + "/metrics"
	require.Eventually(c.t, func() bool {
		resp, err := c.client.Get(url)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 50*time.Millisecond, "scoville work never served its metrics; its log:\n%s", p.logText())
	return p, url
}

// deliverTo posts a Stripe delivery, signed now, to one replica; ok is an
// acknowledgement (200). A replica that is gone is an error, not a failed test.
func (c *cluster) deliverTo(base string, body []byte) (ok bool, err error) {
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/stripe", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", webhooktest.Sign(body, testWebhookSecret, time.Now()))
	resp, err := c.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK, nil
}

// gqlAt runs a GraphQL request at one replica.
func (c *cluster) gqlAt(base, token, query string, vars map[string]any) gqlResponse {
	c.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(c.t, err)
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.client.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	out := gqlResponse{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	require.NoError(c.t, json.Unmarshal(raw, &out), "body: %.300s", raw)
	return out
}

// atOnce runs each fn on its own goroutine, all released together, and waits.
func atOnce(fns ...func()) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for _, fn := range fns {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn()
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// metricSum adds up every series of a counter on a /metrics page whose labels
// contain match ("" matches all).
func metricSum(t *testing.T, client *http.Client, url, name, match string) float64 {
	t.Helper()
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.e+]+)$`)
	sum := 0.0
	for _, m := range line.FindAllStringSubmatch(string(page), -1) {
		if strings.Contains(m[1], match) {
			v, err := strconv.ParseFloat(m[2], 64)
			require.NoError(t, err)
			sum += v
		}
	}
	return sum
}

// TestSeveralReplicasOnOneDatabase runs two API replicas (serve, RUN_WORKERS=false)
// and one work process on one database, as an operator scales out, and attacks
// what they share: the same Stripe event delivered to both replicas at once, the
// same idempotency key sent to both at once, a replica killed with SIGKILL in the
// middle of a burst of deliveries that the sender retries as Stripe does, and a
// second work process, so that two compete to lead the periodic reconciliation.
func TestSeveralReplicasOnOneDatabase(t *testing.T) {
	t.Parallel()
	burstSize := defaultReplicaBurst
	if v := os.Getenv(replicaBurstEnv); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, replicaBurstEnv)
		require.Positive(t, n, replicaBurstEnv)
		burstSize = n
	}
	c := newCluster(t)
	replicaA, apiA := c.api()
	replicaB, apiB := c.api()
	_, metrics1 := c.worker()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)

	t.Run("an event delivered to both replicas at once is stored and applied once", func(t *testing.T) {
		f := c.app.fixture("price_dup", "cus_dup", "sub_dup")
		const rounds = 10
		for k := range rounds {
			body := webhooktest.Event(fmt.Sprintf("evt_dup_%d", k), "invoice.paid", t0,
				paidInvoice(f, fmt.Sprintf("in_dup_%d", k), t0.AddDate(0, k, 0)).Object(), nil)
			var okA, okB bool
			var errA, errB error
			atOnce(func() { okA, errA = c.deliverTo(apiA, body) }, func() { okB, errB = c.deliverTo(apiB, body) })
			require.NoError(t, errA)
			require.NoError(t, errB)
			require.True(t, okA && okB, "both replicas acknowledge the delivery")
		}
		require.Eventually(t, func() bool {
			return c.app.count(`SELECT count(*) FROM webhook_events WHERE provider_event_id LIKE 'evt_dup_%' AND status = 'PROCESSED'`) == rounds
		}, time.Minute, 20*time.Millisecond, "jobs:\n%s", c.app.dumpJobs())
		require.Equal(t, int64(rounds), c.app.count(`SELECT count(*) FROM webhook_events WHERE provider_event_id LIKE 'evt_dup_%'`))
		require.Equal(t, int64(rounds), c.app.count(batchJobEntries+` WHERE e.provider_event_id LIKE 'evt_dup_%'`), "each event in one batch job")
		require.Zero(t, c.app.count(eventJobs+` WHERE e.provider_event_id LIKE 'evt_dup_%'`), "applied by their batch jobs: no job of their own")
		require.Equal(t, int64(rounds), c.app.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id LIKE 'in_dup_%'`))
		require.Equal(t, int64(rounds), c.app.count(`SELECT count(*) FROM shipments WHERE stripe_invoice_id LIKE 'in_dup_%'`))
		require.Equal(t, int64(rounds), c.app.count(`SELECT count(*) FROM notifications n JOIN payments p ON p.id = n.payment_id
			WHERE p.stripe_invoice_id LIKE 'in_dup_%'`))
		require.Equal(t, int64(0), c.app.count(`SELECT count(*) FROM webhook_events WHERE provider_event_id LIKE 'evt_dup_%' AND attempts <> 1`))
	})

	t.Run("an idempotency key sent to both replicas at once has one effect at Stripe", func(t *testing.T) {
		tok := c.app.token("replica-buyer")
		const rounds = 5
		q := `mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input) { subscription { id } userErrors { code } } }`
		for k := range rounds {
			vars := map[string]any{"input": map[string]any{"planId": hotMonthly, "shippingAddress": address("Berlin"),
				"idempotencyKey": fmt.Sprintf("replica-key-%d", k)}}
			// Stripe answers the first call slowly, so the other replica's request
			// arrives while this one is in progress, whichever goes first.
			c.stripe.FailNext(stripefake.Fault{Delay: 300 * time.Millisecond})
			var ra, rb gqlResponse
			atOnce(func() { ra = c.gqlAt(apiA, tok, q, vars) }, func() { rb = c.gqlAt(apiB, tok, q, vars) })
			id := func(r gqlResponse) string {
				require.Empty(t, r.Errors, r.Raw)
				p := r.Data["createSubscription"].(map[string]any)
				require.Empty(t, userErrorCodes(p), r.Raw)
				return p["subscription"].(map[string]any)["id"].(string)
			}
			require.Equal(t, id(ra), id(rb), "both replicas answer with the one subscription")
		}
		require.Equal(t, rounds, c.stripe.Count(http.MethodPost, "/v1/subscriptions"), "one create at Stripe per key")
		require.Equal(t, 1, c.stripe.Count(http.MethodPost, "/v1/customers"), "one Stripe customer for the buyer")
		require.Equal(t, int64(rounds), c.app.count(`SELECT count(*) FROM subscriptions s JOIN customers c ON c.id = s.customer_id
			WHERE c.subject = 'replica-buyer'`))
	})

	t.Run("a replica killed in the middle of a burst loses nothing and doubles nothing", func(t *testing.T) {
		const subscriptions = 20
		fixtures := make([]shopFixture, subscriptions)
		for i := range fixtures {
			fixtures[i] = c.app.fixture(fmt.Sprintf("price_burst_%d", i), fmt.Sprintf("cus_burst_%d", i), fmt.Sprintf("sub_burst_%d", i))
		}
		bodies := make([][]byte, burstSize)
		for i := range bodies {
			f := fixtures[i%subscriptions]
			bodies[i] = webhooktest.Event(fmt.Sprintf("evt_burst_%d", i), "invoice.paid", t0,
				paidInvoice(f, fmt.Sprintf("in_burst_%d", i), t0.AddDate(0, i/subscriptions, 0)).Object(), nil)
		}
		// The sender is Stripe behind a load balancer that has not noticed the death:
		// each delivery goes to the replicas in turn, and one not acknowledged (an
		// error, a dropped connection, any status but 200) is sent again until it is.
		b := &burst{bodies: bodies, third: make(chan struct{})}
		var turn, attempts atomic.Int64
		targets := func() []string {
			attempts.Add(1)
			return []string{[]string{replicaA.addr, replicaB.addr}[turn.Add(1)%2]}
		}
		killed := make(chan int64, 1)
		go func() {
			<-b.third
			replicaA.signal(syscall.SIGKILL)
			killed <- b.acked.Load()
		}()
		started := time.Now()
		b.send(t, targets)
		ackedAll := time.Now()
		ackedBeforeKill := <-killed
		require.Greater(t, attempts.Load(), int64(burstSize), "deliveries to the killed replica were not acknowledged, and were sent again")
		require.Eventually(t, func() bool {
			return c.app.count(`SELECT count(*) FROM webhook_events WHERE provider_event_id LIKE 'evt_burst_%' AND status = 'PROCESSED'`) == int64(burstSize)
		}, time.Minute+time.Duration(burstSize)*20*time.Millisecond, 100*time.Millisecond,
			"not every acknowledged event was applied; jobs:\n%s", c.app.dumpJobs())
		drained := time.Now()
		t.Logf("burst of %d events to 2 replicas: acknowledged in %s, %d attempts (replica A killed after %d acknowledgements); "+
			"all applied %s after the last acknowledgement",
			burstSize, ackedAll.Sub(started).Round(10*time.Millisecond), attempts.Load(), ackedBeforeKill,
			drained.Sub(ackedAll).Round(10*time.Millisecond))

		n := int64(burstSize)
		require.Equal(t, n, c.app.count(`SELECT count(*) FROM webhook_events WHERE provider_event_id LIKE 'evt_burst_%'`), "every event stored once")
		require.Equal(t, n, c.app.count(batchJobEntries+` WHERE e.provider_event_id LIKE 'evt_burst_%'`), "each event in one batch job")
		require.Equal(t, n, c.app.count(`SELECT count(DISTINCT stripe_invoice_id) FROM payments WHERE stripe_invoice_id LIKE 'in_burst_%'`), "every event applied")
		require.Equal(t, n, c.app.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id LIKE 'in_burst_%'`), "none applied twice")
		require.Equal(t, n, c.app.count(`SELECT count(*) FROM shipments WHERE stripe_invoice_id LIKE 'in_burst_%'`))
		require.Equal(t, n, c.app.count(`SELECT count(*) FROM notifications n JOIN payments p ON p.id = n.payment_id
			WHERE p.stripe_invoice_id LIKE 'in_burst_%'`))
	})

	t.Run("reconciliation runs on the elected leader only", func(t *testing.T) {
		_, metrics2 := c.worker()
		since := time.Now()
		// Two work processes compete for River's leadership; the leader alone
		// enqueues the periodic reconciliation, whichever process then works it.
		const runs = 5
		require.Eventually(t, func() bool {
			return c.app.count(`SELECT count(*) FROM river_job WHERE kind = 'stripe_reconcile' AND state = 'completed' AND created_at > ?`, since) >= runs
		}, time.Minute, 50*time.Millisecond, "jobs:\n%s", c.app.dumpJobs())
		require.Equal(t, int64(1), c.app.count(`SELECT count(*) FROM river_leader`))

		var created []time.Time
		require.NoError(t, c.app.db.Raw(`SELECT created_at FROM river_job WHERE kind = 'stripe_reconcile' ORDER BY created_at`).Scan(&created).Error)
		for i := 1; i < len(created); i++ {
			require.GreaterOrEqual(t, created[i].Sub(created[i-1]), reconcileEvery/2,
				"two reconciliations enqueued within half an interval: more than one leader (%v)", created)
		}
		// Every run the two processes made was one of those jobs.
		require.Eventually(t, func() bool {
			total := metricSum(t, c.client, metrics1, "scoville_reconcile_runs_total", "") +
				metricSum(t, c.client, metrics2, "scoville_reconcile_runs_total", "")
			jobs := c.app.count(`SELECT count(*) FROM river_job WHERE kind = 'stripe_reconcile' AND state IN ('completed', 'retryable', 'discarded')`)
			return total == float64(jobs)
		}, 10*time.Second, 50*time.Millisecond)
		require.Equal(t, float64(0), metricSum(t, c.client, metrics1, "scoville_reconcile_runs_total", `outcome="failed"`)+
			metricSum(t, c.client, metrics2, "scoville_reconcile_runs_total", `outcome="failed"`))
		require.Equal(t, int64(1), c.app.count(`SELECT count(*) FROM reconciliation_state WHERE last_run_at > ?`, since))
	})
}

// batchJobEntries counts the entries of stored events in the batch jobs they were
// stored with (webhooks.EnqueueArgs), and eventJobs the events' own jobs; add a
// WHERE on e, the event.
const (
	batchJobEntries = `SELECT count(*) FROM river_job j CROSS JOIN jsonb_array_elements_text(j.args->'eventIds') AS x (id)
		JOIN webhook_events e ON e.id::text = x.id AND j.kind = 'webhook_events_enqueue'`
	eventJobs = `SELECT count(*) FROM river_job j JOIN webhook_events e ON e.id::text = j.args->>'eventId' AND j.kind = 'webhook_event_process'`
)
