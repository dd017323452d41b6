package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/gateway/stripefake"
)

// hookReceiver is a downstream system's TLS endpoint that answers 204 and keeps
// every request.
type hookReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []hookRequest
}

type hookRequest struct {
	header http.Header
	body   []byte
	msg    struct {
		Type      string         `json:"type"`
		Timestamp time.Time      `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
}

func newHookReceiver(t *testing.T) *hookReceiver {
	return newAnsweringHookReceiver(t, func(hookRequest) int { return http.StatusNoContent })
}

// newAnsweringHookReceiver records every request, then answers it with the status
// answer gives.
func newAnsweringHookReceiver(t *testing.T, answer func(hookRequest) int) *hookReceiver {
	r := &hookReceiver{}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		h := hookRequest{header: req.Header.Clone(), body: b}
		_ = json.Unmarshal(b, &h.msg)
		r.mu.Lock()
		r.got = append(r.got, h)
		r.mu.Unlock()
		w.WriteHeader(answer(h))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) of(typ string) []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hookRequest
	for _, h := range r.got {
		if h.msg.Type == typ {
			out = append(out, h)
		}
	}
	return out
}

// verifiesWith checks a request's signature as the Standard Webhooks libraries do,
// independently of package outbox.
func (h hookRequest) verifiesWith(secret string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", h.header.Get("webhook-id"), h.header.Get("webhook-timestamp"), h.body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, e := range strings.Split(h.header.Get("webhook-signature"), " ") {
		if v, sig, ok := strings.Cut(e, ","); ok && v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

// newHookShop is the privacy shop (workers running, the stateful fake Stripe) whose
// outgoing webhooks trust the receivers' certificates.
func newHookShop(t *testing.T, receivers ...*hookReceiver) *shop {
	t.Helper()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	pool := x509.NewCertPool()
	for _, r := range receivers {
		pool.AddCert(r.srv.Certificate())
	}
	a := newTestApp(t, appOptions{
		env:  map[string]string{"STRIPE_API_BASE": fake.URL},
		jobs: true,
		options: []app.Option{app.WithStripeTimeouts(300*time.Millisecond, 2*time.Second),
			app.WithMailer(&recordingMailer{}), app.WithJobRetryPolicy(fastRetry{}), app.WithWebhookRootCAs(pool)},
	})
	a.seedAt(fake.URL)
	fake.SetNewSubscriptionStatus("active")
	return &shop{testApp: a, stripe: fake}
}

const endpointSelection = "endpoint { id url eventTypes enabled disabledReason } secret"

func (s *shop) createEndpoint(token, url, key string, types ...string) (gqlResponse, map[string]any) {
	s.t.Helper()
	return s.mutate(token, "createWebhookEndpoint", "CreateWebhookEndpointInput",
		map[string]any{"url": url, "eventTypes": types, "reason": "the 3PL goes live", "idempotencyKey": key}, endpointSelection)
}

// addEndpoint is createEndpoint that must succeed; it returns the created payload.
func (s *shop) addEndpoint(token, url, key string, types ...string) map[string]any {
	s.t.Helper()
	resp, payload := s.createEndpoint(token, url, key, types...)
	require.Empty(s.t, resp.Errors, resp.Raw)
	require.Empty(s.t, userErrorCodes(payload), resp.Raw)
	return payload
}

// awaitOutbox waits until no outgoing delivery job is left to run.
func (s *shop) awaitOutbox() {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		return s.count(`SELECT count(*) FROM river_job WHERE queue = 'outbox' AND state NOT IN ('completed', 'discarded', 'cancelled')`) == 0
	}, 30*time.Second, 20*time.Millisecond, "jobs:\n%s", s.dumpJobs())
}

// One invoice.paid delivered three times (twice with one event id, once with
// another id for the same invoice) gives exactly one shipment.created, signed per
// Standard Webhooks, carrying the address the 3PL ships to and no invoice link.
// After the customer's erasure receivers get customer.erased, and a re-send of the
// shipment carries the same webhook-id and no address.
func TestOutgoingWebhooksOneMessagePerFactSignedAndErased(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t)
	s := newHookShop(t, r)
	admin := s.token("ops-admin", "admin")
	payload := s.addEndpoint(admin, r.srv.URL+"/3pl", "ep-1", "*")
	secret := payload["secret"].(string)
	require.True(t, strings.HasPrefix(secret, "whsec_"))

	erin := &person{subject: "erin-hooks", email: "erin.hooks@privacy.example", name: "Erin Hookable",
		street: "42 Webhook Street", city: "Signtown"}
	s.enrol(erin, 1)
	require.Equal(t, 200, s.deliver(s.paidInvoice(erin, erin.event, erin.invoice)), "the same event again")
	require.Equal(t, 200, s.deliver(s.paidInvoice(erin, "evt_hooks_other_id", erin.invoice)), "another event of the same invoice")
	s.awaitEvent("evt_hooks_other_id")
	require.Eventually(t, func() bool {
		return s.count(`SELECT count(*) FROM webhook_events WHERE status = 'RECEIVED'`) == 0
	}, 20*time.Second, 20*time.Millisecond)
	s.awaitOutbox()

	ships := r.of("shipment.created")
	require.Len(t, ships, 1, "exactly one shipment.created")
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM webhook_messages WHERE event_type = 'shipment.created'`))
	ship := ships[0]
	require.True(t, ship.verifiesWith(secret))
	var shipmentID, planID string
	require.NoError(t, s.db.Raw(`SELECT id, plan_id FROM shipments WHERE customer_id = ?`, erin.customerID).Row().Scan(&shipmentID, &planID))
	require.Equal(t, shipmentID, ship.msg.Data["shipmentId"])
	require.Equal(t, erin.subscriptionID, ship.msg.Data["subscriptionId"])
	require.Equal(t, erin.customerID, ship.msg.Data["customerId"])
	require.Equal(t, planID, ship.msg.Data["planId"])
	require.NotEmpty(t, ship.msg.Data["planName"])
	require.Equal(t, erin.street, ship.msg.Data["address"].(map[string]any)["line1"])
	pays := r.of("payment.succeeded")
	require.Len(t, pays, 1)
	require.True(t, pays[0].verifiesWith(secret))
	var paid int64
	require.NoError(t, s.db.Raw(`SELECT amount FROM payments WHERE customer_id = ?`, erin.customerID).Scan(&paid).Error)
	require.Equal(t, map[string]any{"amount": float64(paid), "currency": "USD"}, pays[0].msg.Data["amount"])
	require.Equal(t, "SUCCEEDED", pays[0].msg.Data["status"])
	for _, h := range append(ships, pays...) {
		for _, banned := range []string{"invoice_url", "invoiceUrl", "hosted_invoice", "client_secret", erin.email} {
			require.NotContains(t, string(h.body), banned)
		}
	}

	// Erasure: customer.erased goes out, and the stored shipment message forgets
	// the address, so a re-send carries none.
	_, out := s.deleteAccount(s.tokenFor(erin, time.Minute), "erase-1", true)
	require.Empty(t, userErrorCodes(out))
	s.awaitOutbox()
	erased := r.of("customer.erased")
	require.Len(t, erased, 1)
	require.Equal(t, map[string]any{"customerId": erin.customerID}, erased[0].msg.Data)
	require.True(t, erased[0].verifiesWith(secret))

	var deliveryID string
	require.NoError(t, s.db.Raw(`SELECT d.id FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id
		WHERE m.event_type = 'shipment.created'`).Scan(&deliveryID).Error)
	support := s.token("ops-support", "support")
	resp := s.gql(support, `{ webhookDeliveries(status: DELIVERED, first: 10) { edges { node {
		id messageId eventType status attempts lastStatusCode lastError deliveredAt nextAttemptAt } } } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	edges := resp.Data["webhookDeliveries"].(map[string]any)["edges"].([]any)
	require.Len(t, edges, 3, "shipment.created, payment.succeeded, customer.erased")
	for _, e := range edges {
		n := e.(map[string]any)["node"].(map[string]any)
		require.Equal(t, "DELIVERED", n["status"], resp.Raw)
		require.EqualValues(t, 1, n["attempts"])
		require.EqualValues(t, 204, n["lastStatusCode"])
		require.Nil(t, n["lastError"])
		require.NotNil(t, n["deliveredAt"])
		if n["id"] == deliveryID {
			require.Equal(t, "shipment.created", n["eventType"])
			require.Equal(t, ships[0].header.Get("webhook-id"), n["messageId"])
		}
	}
	resp = s.gql(support, `{ webhookDeliveries(status: FAILED) { edges { node { id } } } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	require.Empty(t, resp.Data["webhookDeliveries"].(map[string]any)["edges"])
	resp, out = s.mutate(support, "redeliverWebhook", "RedeliverWebhookInput",
		map[string]any{"deliveryId": deliveryID, "reason": "the 3PL asked again"}, "delivery { id messageId status }")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Empty(t, userErrorCodes(out), resp.Raw)
	s.awaitOutbox()
	ships = r.of("shipment.created")
	require.Len(t, ships, 2)
	require.Equal(t, ships[0].header.Get("webhook-id"), ships[1].header.Get("webhook-id"), "a re-send keeps the webhook-id")
	require.NotContains(t, string(ships[1].body), erin.street)
	require.NotContains(t, string(ships[1].body), erin.name)
	require.True(t, ships[1].verifiesWith(secret))
	require.NotContains(t, s.tableText()["webhook_messages"], erin.street, "no address stored after the erasure")
}

// The operations' roles: a customer gets nothing; SUPPORT lists deliveries and
// re-sends but manages no endpoint; ADMIN does everything, each change audited
// with its reason. A retried create returns the same endpoint and secret.
func TestWebhookOperationsRolesAndAudit(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t)
	s := newHookShop(t, r)
	admin, support, customer := s.token("wh-admin", "admin"), s.token("wh-support", "support"), s.token("wh-customer")

	const listEndpoints = `{ webhookEndpoints { edges { node { id } } } }`
	const listDeliveries = `{ webhookDeliveries { edges { node { id } } } }`
	for _, tok := range []string{customer, support} {
		resp := s.gql(tok, listEndpoints, nil)
		require.Equal(t, []string{"FORBIDDEN"}, resp.codes(), resp.Raw)
		resp, _ = s.createEndpoint(tok, r.srv.URL, "k-"+tok[:8], "*")
		require.Equal(t, []string{"FORBIDDEN"}, resp.codes(), resp.Raw)
	}
	resp := s.gql(customer, listDeliveries, nil)
	require.Equal(t, []string{"FORBIDDEN"}, resp.codes(), resp.Raw)
	resp = s.gql("", listDeliveries, nil)
	require.Equal(t, []string{"UNAUTHENTICATED"}, resp.codes(), resp.Raw)
	require.Zero(t, s.count(`SELECT count(*) FROM webhook_endpoints`))

	resp, created := s.createEndpoint(admin, r.srv.URL, "create-1", "shipment.created", "payment.failed")
	require.Empty(t, resp.Errors, resp.Raw)
	id := created["endpoint"].(map[string]any)["id"].(string)
	resp, again := s.createEndpoint(admin, r.srv.URL, "create-1", "shipment.created", "payment.failed")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, created, again, "a retried create answers the same, secret included")
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM webhook_endpoints`))
	resp, bad := s.createEndpoint(admin, r.srv.URL, "create-2", "invoice.paid")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, []string{"INVALID"}, userErrorCodes(bad))

	for _, tok := range []string{customer, support} {
		resp, _ := s.mutate(tok, "updateWebhookEndpoint", "UpdateWebhookEndpointInput",
			map[string]any{"endpointId": id, "enabled": false, "reason": "r", "idempotencyKey": "u"}, "endpoint { id }")
		require.Equal(t, []string{"FORBIDDEN"}, resp.codes(), resp.Raw)
		resp, _ = s.mutate(tok, "rotateWebhookEndpointSecret", "RotateWebhookEndpointSecretInput",
			map[string]any{"endpointId": id, "reason": "r", "idempotencyKey": "r"}, "secret")
		require.Equal(t, []string{"FORBIDDEN"}, resp.codes(), resp.Raw)
	}
	resp, _ = s.mutate(customer, "redeliverWebhook", "RedeliverWebhookInput",
		map[string]any{"deliveryId": id, "reason": "r"}, "delivery { id }")
	require.Equal(t, []string{"FORBIDDEN"}, resp.codes(), resp.Raw)
	resp, out := s.mutate(support, "redeliverWebhook", "RedeliverWebhookInput",
		map[string]any{"deliveryId": id, "reason": "r"}, "delivery { id }")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, []string{"NOT_FOUND"}, userErrorCodes(out), "SUPPORT may re-send; this id is no delivery")
	resp = s.gql(support, listDeliveries, nil)
	require.Empty(t, resp.Errors, resp.Raw)

	resp, out = s.mutate(admin, "updateWebhookEndpoint", "UpdateWebhookEndpointInput",
		map[string]any{"endpointId": id, "enabled": false, "reason": "the 3PL is migrating", "idempotencyKey": "u-1"},
		"endpoint { id enabled disabledReason eventTypes }")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, false, out["endpoint"].(map[string]any)["enabled"])
	require.Equal(t, []any{"payment.failed", "shipment.created"}, out["endpoint"].(map[string]any)["eventTypes"], "fields left out stay")
	resp, out = s.mutate(admin, "rotateWebhookEndpointSecret", "RotateWebhookEndpointSecretInput",
		map[string]any{"endpointId": id, "reason": "rotation drill", "idempotencyKey": "r-1"}, "secret")
	require.Empty(t, resp.Errors, resp.Raw)
	require.NotEqual(t, created["secret"], out["secret"])
	resp = s.gql(admin, `{ webhookEndpoints(first: 5) { edges { node { id url eventTypes enabled disabledReason createdAt } } } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	require.NotContains(t, resp.Raw, "whsec_", "a secret is shown only when made")
	edges := resp.Data["webhookEndpoints"].(map[string]any)["edges"].([]any)
	require.Len(t, edges, 1)
	node := edges[0].(map[string]any)["node"].(map[string]any)
	require.Equal(t, id, node["id"])
	require.Equal(t, r.srv.URL, node["url"])
	require.Equal(t, false, node["enabled"])
	require.Equal(t, "disabled by staff", node["disabledReason"])
	require.NotEmpty(t, node["createdAt"])

	for action, reason := range map[string]string{
		"createWebhookEndpoint": "the 3PL goes live", "updateWebhookEndpoint": "the 3PL is migrating",
		"rotateWebhookEndpointSecret": "rotation drill",
	} {
		require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE action = ? AND target_id = ? AND reason = ?`, action, id, reason), action)
	}
	require.Zero(t, s.count(`SELECT count(*) FROM audit_log WHERE after::text LIKE '%whsec_%'`), "no secret in the audit log")
	s.requireNoLeak(created["secret"].(string), out["secret"].(string))
}

// In production an endpoint must be https on a public address: http, the cloud
// metadata address, private and loopback addresses are refused when registered.
func TestProductionRefusesUnsafeWebhookTargets(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{production: true})
	s := &shop{testApp: a}
	admin := s.token("prod-admin", "admin")
	for i, url := range []string{
		"http://hooks.example.com/in", "https://169.254.169.254/latest/meta-data", "https://10.0.0.1/in",
		"https://[::1]/in", "https://127.0.0.1:9/in", "https://localhost/in",
	} {
		resp, out := s.createEndpoint(admin, url, fmt.Sprintf("prod-%d", i), "*")
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, []string{"INVALID"}, userErrorCodes(out), url)
	}
	require.Zero(t, s.count(`SELECT count(*) FROM webhook_endpoints`))
}

// Through the real queue: a receiver answering 500, then 204, gets the same
// webhook-id twice, 5 s apart by River's schedule, and the delivery is DELIVERED
// after 2 attempts; meanwhile another endpoint that never answers holds back neither
// these deliveries nor the Stripe inbox.
func TestOutgoingWebhookRetriedOnTheQueueBesideAHangingEndpoint(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	answered := map[string]int{}
	flaky := newAnsweringHookReceiver(t, func(h hookRequest) int {
		mu.Lock()
		defer mu.Unlock()
		answered[h.header.Get("webhook-id")]++
		if answered[h.header.Get("webhook-id")] == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	release := make(chan struct{})
	hanging := &hookReceiver{}
	hanging.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(hanging.srv.Close)
	s := newHookShop(t, flaky, hanging)
	t.Cleanup(func() { close(release) }) // before the app closes
	admin := s.token("retry-admin", "admin")
	resp, _ := s.createEndpoint(admin, hanging.srv.URL, "hang", "*")
	require.Empty(t, resp.Errors, resp.Raw)
	resp, payload := s.createEndpoint(admin, flaky.srv.URL, "flaky", "shipment.created")
	require.Empty(t, resp.Errors, resp.Raw)
	secret := payload["secret"].(string)

	erin := &person{subject: "erin-retry", email: "erin.retry@privacy.example", name: "Erin Retry", street: "5 Retry Road", city: "Backoff"}
	s.enrol(erin, 7) // its invoice.paid is applied although the hanging endpoint holds workers
	var deliveryID string
	require.NoError(t, s.db.Raw(`SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE e.url = ?`, flaky.srv.URL).Scan(&deliveryID).Error)
	require.Eventually(t, func() bool {
		return s.count(`SELECT count(*) FROM webhook_deliveries WHERE id = ? AND status = 'DELIVERED'`, deliveryID) == 1
	}, 30*time.Second, 50*time.Millisecond, "jobs:\n%s", s.dumpJobs())
	var attempts int
	require.NoError(t, s.db.Raw(`SELECT attempts FROM webhook_deliveries WHERE id = ?`, deliveryID).Scan(&attempts).Error)
	require.Equal(t, 2, attempts)
	var first, second time.Time
	require.NoError(t, s.db.Raw(`SELECT min(created_at), max(created_at) FROM webhook_delivery_attempts WHERE delivery_id = ?`, deliveryID).
		Row().Scan(&first, &second))
	require.GreaterOrEqual(t, second.Sub(first), 5*time.Second, "the second attempt waits the schedule's 5 s")
	got := flaky.of("shipment.created")
	require.Len(t, got, 2)
	require.Equal(t, got[0].header.Get("webhook-id"), got[1].header.Get("webhook-id"))
	require.True(t, got[0].verifiesWith(secret))
	require.True(t, got[1].verifiesWith(secret))

	// The inbox still applies events while the hanging endpoint's attempts run.
	require.Equal(t, 200, s.deliver(s.paidInvoice(erin, "evt_retry_again", "in_retry_second")))
	require.Equal(t, "PROCESSED", s.awaitEvent("evt_retry_again"))
}

// subscription.updated: one message per committed change, with a sequence that
// grows; a repeated event, or a newer one that changes nothing, sends nothing.
func TestSubscriptionUpdatedCarriesAGrowingSequence(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t)
	s := newHookShop(t, r)
	resp, payload := s.createEndpoint(s.token("seq-admin", "admin"), r.srv.URL, "seq", "subscription.updated")
	require.Empty(t, resp.Errors, resp.Raw)
	secret := payload["secret"].(string)
	tok := s.token("seq-customer")
	id, _ := s.subscribe(tok, "seq-sub", hotMonthly)
	t0 := time.Now().Add(time.Minute).Truncate(time.Second)

	deliver := func(eventID, status string, at time.Time) {
		t.Helper()
		require.Equal(t, 200, s.deliver(s.subscriptionEvent(eventID, "customer.subscription.updated", id, status, at)))
		require.Equal(t, "PROCESSED", s.awaitEvent(eventID))
	}
	deliver("evt_seq_1", "past_due", t0)
	s.deliver(s.subscriptionEvent("evt_seq_1", "customer.subscription.updated", id, "past_due", t0)) // the same event again
	// A newer report of the same state (same period): nothing changed, nothing sent.
	var same map[string]any
	require.NoError(t, json.Unmarshal(s.subscriptionEvent("evt_seq_2", "customer.subscription.updated", id, "past_due", t0), &same))
	same["created"] = t0.Add(time.Second).Unix()
	body, err := json.Marshal(same)
	require.NoError(t, err)
	require.Equal(t, 200, s.deliver(body))
	require.Equal(t, "PROCESSED", s.awaitEvent("evt_seq_2"))
	deliver("evt_seq_3", "active", t0.Add(2*time.Second))
	s.awaitOutbox()

	got := r.of("subscription.updated")
	var seqs []float64
	var statuses []any
	for _, h := range got {
		require.True(t, h.verifiesWith(secret))
		require.Equal(t, id, h.msg.Data["subscriptionId"])
		seqs = append(seqs, h.msg.Data["sequence"].(float64))
		statuses = append(statuses, h.msg.Data["status"])
	}
	require.Len(t, got, 2, "statuses %v", statuses)
	require.ElementsMatch(t, []float64{1, 2}, seqs)
	for i := range got {
		want := map[float64]string{1: "PAST_DUE", 2: "ACTIVE"}[seqs[i]]
		require.Equal(t, want, statuses[i])
	}
}

// An endpoint receives customers' addresses, so registering, changing or re-keying
// one needs a recent login, like the customer's own critical changes: an admin
// token from an old login is refused with STEP_UP_REQUIRED and nothing is made.
func TestWebhookEndpointChangesNeedARecentLogin(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t)
	s := newHookShop(t, r)
	stale, err := s.issuer.Mint(devidp.Claims{Subject: "ops-stale", Email: "ops-stale@example.com", Roles: []string{"admin"},
		AuthTime: time.Now().Add(-time.Hour)})
	require.NoError(t, err)

	resp, _ := s.createEndpoint(stale, r.srv.URL+"/3pl", "ep-stale", "*")
	require.Equal(t, []string{"STEP_UP_REQUIRED"}, resp.codes(), resp.Raw)
	require.Zero(t, s.count(`SELECT count(*) FROM webhook_endpoints`), "a refused create made an endpoint")

	resp, payload := s.createEndpoint(s.token("ops-fresh", "admin"), r.srv.URL+"/3pl", "ep-fresh", "*")
	require.Empty(t, resp.Errors, resp.Raw)
	id := payload["endpoint"].(map[string]any)["id"].(string)

	resp, _ = s.mutate(stale, "updateWebhookEndpoint", "UpdateWebhookEndpointInput",
		map[string]any{"endpointId": id, "url": r.srv.URL + "/elsewhere", "reason": "move it", "idempotencyKey": "up-stale"}, "endpoint { url }")
	require.Equal(t, []string{"STEP_UP_REQUIRED"}, resp.codes(), resp.Raw)
	resp, _ = s.mutate(stale, "rotateWebhookEndpointSecret", "RotateWebhookEndpointSecretInput",
		map[string]any{"endpointId": id, "reason": "rotate it", "idempotencyKey": "rot-stale"}, "secret")
	require.Equal(t, []string{"STEP_UP_REQUIRED"}, resp.codes(), resp.Raw)
	var url string
	require.NoError(t, s.db.Raw(`SELECT url FROM webhook_endpoints WHERE id = ?`, id).Scan(&url).Error)
	require.Equal(t, r.srv.URL+"/3pl", url)
}
