package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// newAdminShop is the app in front of the stateful fake Stripe (refunds change what
// Stripe remembers), with env added to the configuration and, when jobs, the workers
// running so webhook events are applied.
func newAdminShop(t *testing.T, jobs bool, env map[string]string) *shop {
	t.Helper()
	fake := newFakeStripe(t)
	all := map[string]string{"STRIPE_API_BASE": fake.URL}
	for k, v := range env {
		all[k] = v
	}
	a := newTestApp(t, appOptions{
		env:     all,
		jobs:    jobs,
		options: []app.Option{app.WithStripeTimeouts(300*time.Millisecond, 2*time.Second)},
	})
	a.seedAt(fake.URL)
	return &shop{testApp: a, stripe: fake}
}

// paidPayment gives customer an active subscription with one paid invoice of amount
// (USD), which Stripe knows as a charge of the payment intent returned.
func (s *shop) paidPayment(customer string, amount int64) (paymentID, paymentIntent string) {
	s.t.Helper()
	n := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	subID := s.activeSubscription(s.token(customer), "paid-"+n)
	var sub models.Subscription
	require.NoError(s.t, s.db.Take(&sub, "id = ?", subID).Error)
	paymentIntent = "pi_" + n
	now := time.Now().UTC()
	pay := models.Payment{ID: uuid.NewString(), SubscriptionID: subID, CustomerID: sub.CustomerID, AmountMinor: amount, Currency: "USD",
		Status: models.PaymentSucceeded, StripeInvoiceID: "in_" + n, StripePaymentIntentID: &paymentIntent, PaidAt: &now}
	require.NoError(s.t, s.db.Create(&pay).Error)
	s.stripe.PutCharge(fmt.Appendf(nil, `{"id":"ch_%s","invoice":"in_%s","payment_intent":%q,"amount":%d,"amount_refunded":0,
		"refunded":false,"currency":"usd","paid":true,"status":"succeeded"}`, n, n, paymentIntent, amount))
	return pay.ID, paymentIntent
}

const paymentSel = "payment { id status amount { amount currency } providerPaymentId }"

func (s *shop) refund(token string, in map[string]any) (gqlResponse, map[string]any) {
	s.t.Helper()
	return s.mutate(token, "refundPayment", "RefundPaymentInput", in, paymentSel)
}

// refunded reads what our database holds of a payment.
func (s *shop) refunded(paymentID string) (status string, amount int64) {
	s.t.Helper()
	var pay models.Payment
	require.NoError(s.t, s.db.Take(&pay, "id = ?", paymentID).Error)
	return string(pay.Status), pay.AmountRefunded
}

func (s *shop) refundRequests() []stripefake.Request {
	var out []stripefake.Request
	for _, r := range s.stripe.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/refunds" {
			out = append(out, r)
		}
	}
	return out
}

// auditCount counts audit entries of action by the subject.
func (s *shop) auditCount(action, subject string) int64 {
	s.t.Helper()
	return s.count(`SELECT count(*) FROM audit_log WHERE action = ? AND actor_subject = ?`, action, subject)
}

// actions lists the audited actions of subject, oldest first.
func (s *shop) actions(subject string) []string {
	s.t.Helper()
	var out []string
	require.NoError(s.t, s.db.Raw(`SELECT action FROM audit_log WHERE actor_subject = ? ORDER BY created_at`, subject).Scan(&out).Error)
	return out
}

func TestAdminRoleMatrix(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, nil)
	missing := uuid.NewString()
	ops := []struct {
		field, query string
		vars         map[string]any
		support      bool // SUPPORT may call it; ADMIN may call everything
	}{
		{"adminSubscriptions", `{ adminSubscriptions { edges { node { id } } } }`, nil, true},
		{"adminCustomers", `{ adminCustomers { edges { node { id } } } }`, nil, true},
		{"webhookEvents", `{ webhookEvents { edges { node { id } } } }`, nil, true},
		{"auditLog", `{ auditLog { edges { node { id } } } }`, nil, false},
		{"resyncSubscription", `mutation($id: ID!) { resyncSubscription(input: {subscriptionId: $id, reason: "matrix"}) { subscription { id } userErrors { code } } }`,
			map[string]any{"id": missing}, true},
		{"replayWebhookEvent", `mutation($id: ID!) { replayWebhookEvent(input: {eventId: $id, reason: "matrix"}) { event { id } userErrors { code } } }`,
			map[string]any{"id": missing}, true},
		{"refundPayment", `mutation($id: ID!) { refundPayment(input: {paymentId: $id, reason: "matrix", idempotencyKey: "m"}) { payment { id } userErrors { code } } }`,
			map[string]any{"id": missing}, false},
		{"adminCancelSubscription", `mutation($id: ID!) { adminCancelSubscription(input: {subscriptionId: $id, atPeriodEnd: true, reason: "matrix", idempotencyKey: "m"}) { subscription { id } userErrors { code } } }`,
			map[string]any{"id": missing}, false},
	}
	callers := []struct {
		name, subject string
		roles         []string
		allowed       func(support bool) bool
	}{
		{"customer", "matrix-customer", nil, func(bool) bool { return false }},
		{"support", "matrix-support", []string{"support"}, func(support bool) bool { return support }},
		{"admin", "matrix-admin", []string{"admin"}, func(bool) bool { return true }},
	}
	for _, op := range ops {
		t.Run(op.field+"/anonymous", func(t *testing.T) {
			resp := s.gql("", op.query, op.vars)
			require.Equal(t, []string{"UNAUTHENTICATED"}, resp.codes(), resp.Raw)
		})
		for _, c := range callers {
			t.Run(op.field+"/"+c.name, func(t *testing.T) {
				resp := s.gql(s.token(c.subject, c.roles...), op.query, op.vars)
				if c.allowed(op.support) {
					require.Empty(t, resp.Errors, resp.Raw)
					require.NotNil(t, resp.Data[op.field], resp.Raw)
					require.Zero(t, s.auditCount(op.field+".forbidden", c.subject))
					return
				}
				require.Equal(t, []string{"FORBIDDEN"}, resp.codes(), resp.Raw)
				require.EqualValues(t, 1, s.auditCount(op.field+".forbidden", c.subject), "the refused attempt is audited; %v", s.actions(c.subject))
			})
		}
	}
	require.Zero(t, s.count(`SELECT count(*) FROM audit_log WHERE actor_subject NOT IN ('matrix-customer', 'matrix-support')`),
		"anonymous callers and allowed calls leave no refusal entry")
	require.Zero(t, len(s.refundRequests()), "nothing reached Stripe")

	// The refusal entry names the actor, the operation and the role it needed.
	var e models.AuditEntry
	require.NoError(t, s.db.Take(&e, "action = ? AND actor_subject = ?", "refundPayment.forbidden", "matrix-support").Error)
	require.Equal(t, s.issuer.IssuerURL(), e.ActorIssuer)
	require.ElementsMatch(t, []string{"CUSTOMER", "SUPPORT"}, e.ActorRoleList)
	require.Equal(t, "operation", e.TargetType)
	require.Equal(t, "refundPayment", e.TargetID)
	require.Equal(t, "refused: needs role ADMIN", e.Reason)

	t.Run("a staff-only field refused on many rows is audited once", func(t *testing.T) {
		tok := s.token("matrix-lister")
		s.subscribe(tok, "lister-1", hotMonthly)
		s.subscribe(tok, "lister-2", mildMonthly)
		resp := s.gql(tok, `{ me { subscriptions { id providerSubscriptionId } } }`, nil)
		require.Equal(t, []string{"FORBIDDEN", "FORBIDDEN"}, resp.codes())
		require.Equal(t, []string{"Subscription.providerSubscriptionId.forbidden"}, s.actions("matrix-lister"))
	})
}

func TestRefundPayment(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, nil)
	admin := s.token("refund-admin", "admin")
	in := func(paymentID, key string, amount any) map[string]any {
		m := map[string]any{"paymentId": paymentID, "reason": "customer complaint #42", "idempotencyKey": key}
		if amount != nil {
			m["amount"] = amount
		}
		return m
	}

	t.Run("full refund", func(t *testing.T) {
		payID, pi := s.paidPayment("refund-full", 3500)
		resp, p := s.refund(admin, in(payID, "full-1", nil))
		require.Empty(t, resp.Errors, resp.Raw)
		require.Empty(t, userErrorCodes(p), resp.Raw)
		require.Equal(t, "REFUNDED", p["payment"].(map[string]any)["status"])
		status, amount := s.refunded(payID)
		require.Equal(t, "REFUNDED", status)
		require.EqualValues(t, 3500, amount)
		reqs := s.refundRequests()
		require.Len(t, reqs, 1)
		last := reqs[0]
		require.Equal(t, pi, last.Form["payment_intent"])
		require.Equal(t, "3500", last.Form["amount"])
		require.Equal(t, payID, last.Form["metadata[scoville_payment_id]"])
		scope := idempotency.ScopeFor(s.issuer.IssuerURL(), "refund-admin", "refundPayment", "full-1")
		require.Equal(t, scope.ProviderKey("refund"), last.IdempotencyKey, "Stripe's key is derived from the caller's, per principal and operation")

		n := len(s.refundRequests())
		_, again := s.refund(admin, in(payID, "full-2", nil))
		require.Equal(t, []string{"INVALID_STATE"}, userErrorCodes(again), "nothing remains")
		require.Equal(t, n, len(s.refundRequests()))
	})

	t.Run("partial refunds, over-refund refused, then the rest", func(t *testing.T) {
		payID, _ := s.paidPayment("refund-partial", 3500)
		n := len(s.refundRequests())
		_, p := s.refund(admin, in(payID, "part-1", 1000))
		require.Empty(t, userErrorCodes(p))
		require.Equal(t, "PARTIALLY_REFUNDED", p["payment"].(map[string]any)["status"])
		_, p = s.refund(admin, in(payID, "part-2", 500))
		require.Empty(t, userErrorCodes(p))
		status, amount := s.refunded(payID)
		require.Equal(t, "PARTIALLY_REFUNDED", status)
		require.EqualValues(t, 1500, amount)
		require.Equal(t, n+2, len(s.refundRequests()))

		resp, p := s.refund(admin, in(payID, "part-over", 2001))
		require.Empty(t, resp.Errors)
		require.Equal(t, []string{"INVALID"}, userErrorCodes(p))
		require.Equal(t, []any{"input", "amount"}, p["userErrors"].([]any)[0].(map[string]any)["field"])
		require.Contains(t, p["userErrors"].([]any)[0].(map[string]any)["message"], "20.00 USD")
		require.Nil(t, p["payment"])
		require.Equal(t, n+2, len(s.refundRequests()), "an over-refund sends nothing to Stripe")
		_, amount = s.refunded(payID)
		require.EqualValues(t, 1500, amount)

		_, p = s.refund(admin, in(payID, "part-rest", nil))
		require.Empty(t, userErrorCodes(p))
		require.Equal(t, "REFUNDED", p["payment"].(map[string]any)["status"])
		reqs := s.refundRequests()
		require.Equal(t, "2000", reqs[len(reqs)-1].Form["amount"], "absent amount: what remains")
		status, amount = s.refunded(payID)
		require.Equal(t, "REFUNDED", status)
		require.EqualValues(t, 3500, amount)
	})

	t.Run("replay with the same key returns the first result, no second refund", func(t *testing.T) {
		payID, _ := s.paidPayment("refund-replay", 3500)
		_, first := s.refund(admin, in(payID, "replay", 1200))
		require.Empty(t, userErrorCodes(first))
		n := len(s.refundRequests())
		_, again := s.refund(admin, in(payID, "replay", 1200))
		require.Equal(t, first, again)
		require.Equal(t, n, len(s.refundRequests()), "no request to Stripe on replay")
		_, amount := s.refunded(payID)
		require.EqualValues(t, 1200, amount)
		require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE action = 'refundPayment' AND target_id = ?`, payID))

		_, reused := s.refund(admin, in(payID, "replay", 1300))
		require.Equal(t, []string{"IDEMPOTENCY_KEY_REUSED"}, userErrorCodes(reused))
		require.Equal(t, n, len(s.refundRequests()))

		// The key is the caller's: another admin's same key is another request.
		_, other := s.refund(s.token("refund-admin-2", "admin"), in(payID, "replay", 1300))
		require.Empty(t, userErrorCodes(other))
		_, amount = s.refunded(payID)
		require.EqualValues(t, 2500, amount)
	})

	t.Run("concurrent refunds of one payment have one effect", func(t *testing.T) {
		for _, sameKey := range []bool{false, true} {
			payID, _ := s.paidPayment(fmt.Sprintf("refund-race-%t", sameKey), 3500)
			n := len(s.refundRequests())
			payloads := make([]map[string]any, 4)
			var wg sync.WaitGroup
			for i := range payloads {
				key := fmt.Sprintf("race-%t-%d", sameKey, i)
				if sameKey {
					key = "race-same"
				}
				wg.Go(func() { _, payloads[i] = s.refund(admin, in(payID, key, nil)) })
			}
			wg.Wait()
			ok := 0
			for _, p := range payloads {
				if len(userErrorCodes(p)) == 0 {
					ok++
					continue
				}
				require.Equal(t, []string{"INVALID_STATE"}, userErrorCodes(p))
			}
			if sameKey {
				require.Equal(t, len(payloads), ok, "every caller with the key gets the first result")
			} else {
				require.Equal(t, 1, ok, "one refund; the others find nothing left")
			}
			require.Equal(t, n+1, len(s.refundRequests()), "one refund at Stripe")
			status, amount := s.refunded(payID)
			require.Equal(t, "REFUNDED", status)
			require.EqualValues(t, 3500, amount)
			require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE action = 'refundPayment' AND target_id = ?`, payID))
		}
	})

	t.Run("bad input and wrong state are user errors with nothing sent", func(t *testing.T) {
		payID, _ := s.paidPayment("refund-bad", 3500)
		pending, _ := s.paidPayment("refund-pending", 3500)
		require.NoError(t, s.db.Model(&models.Payment{}).Where("id = ?", pending).Update("status", models.PaymentPending).Error)
		failed, _ := s.paidPayment("refund-failed", 3500)
		require.NoError(t, s.db.Model(&models.Payment{}).Where("id = ?", failed).Update("status", models.PaymentFailed).Error)
		blank := in(payID, "blank", nil)
		blank["reason"] = "   "
		empty := in(payID, "empty", nil)
		empty["reason"] = ""
		nul := in(payID, "nul", nil)
		nul["reason"] = "broken\x00box"
		for name, tc := range map[string]struct {
			input map[string]any
			code  string
			field []any
		}{
			"empty reason":          {empty, "INVALID", []any{"input", "reason"}},
			"blank reason":          {blank, "INVALID", []any{"input", "reason"}},
			"NUL in reason":         {nul, "INVALID", []any{"input", "reason"}},
			"zero amount":           {in(payID, "zero", 0), "INVALID", []any{"input", "amount"}},
			"negative amount":       {in(payID, "neg", -5), "INVALID", []any{"input", "amount"}},
			"unknown payment":       {in(uuid.NewString(), "unknown", nil), "NOT_FOUND", []any{"input", "paymentId"}},
			"not a payment id":      {in("'; DROP TABLE payments; --", "garbage", nil), "NOT_FOUND", []any{"input", "paymentId"}},
			"pending payment":       {in(pending, "pending", nil), "INVALID_STATE", []any{"input", "paymentId"}},
			"failed payment":        {in(failed, "failed", nil), "INVALID_STATE", []any{"input", "paymentId"}},
			"empty idempotency key": {in(payID, "", nil), "INVALID", []any{"input", "idempotencyKey"}},
		} {
			t.Run(name, func(t *testing.T) {
				n := len(s.refundRequests())
				resp, p := s.refund(admin, tc.input)
				require.Empty(t, resp.Errors, resp.Raw)
				require.Equal(t, []string{tc.code}, userErrorCodes(p), resp.Raw)
				require.Equal(t, tc.field, p["userErrors"].([]any)[0].(map[string]any)["field"])
				require.Equal(t, n, len(s.refundRequests()))
			})
		}
		status, amount := s.refunded(payID)
		require.Equal(t, "SUCCEEDED", status)
		require.Zero(t, amount)
	})

	t.Run("Stripe down: PROVIDER_UNAVAILABLE, nothing recorded, the same key succeeds later", func(t *testing.T) {
		payID, _ := s.paidPayment("refund-down", 3500)
		n := len(s.refundRequests())
		s.stripe.FailNext(stripefake.Fault{Status: 503}, stripefake.Fault{Status: 503}, stripefake.Fault{Status: 503},
			stripefake.Fault{Status: 503}, stripefake.Fault{Status: 503}, stripefake.Fault{Status: 503})
		resp, _ := s.refund(admin, in(payID, "down", 700))
		require.Equal(t, []string{"PROVIDER_UNAVAILABLE"}, resp.codes(), resp.Raw)
		s.stripe.ClearFaults()
		attempts := s.refundRequests()[n:]
		require.Greater(t, len(attempts), 1, "retried")
		for _, a := range attempts {
			require.Equal(t, attempts[0].IdempotencyKey, a.IdempotencyKey)
		}
		status, amount := s.refunded(payID)
		require.Equal(t, "SUCCEEDED", status)
		require.Zero(t, amount)
		require.Zero(t, s.count(`SELECT count(*) FROM audit_log WHERE action = 'refundPayment' AND target_id = ?`, payID))

		_, p := s.refund(admin, in(payID, "down", 700))
		require.Empty(t, userErrorCodes(p))
		_, amount = s.refunded(payID)
		require.EqualValues(t, 700, amount)
	})

	t.Run("Stripe refuses: a user error, nothing recorded", func(t *testing.T) {
		payID, _ := s.paidPayment("refund-refused", 3500)
		s.stripe.FailNext(stripefake.Fault{Status: 400, Code: "charge_disputed"})
		_, p := s.refund(admin, in(payID, "refused", nil))
		require.Equal(t, []string{"PROVIDER_REJECTED"}, userErrorCodes(p))
		status, amount := s.refunded(payID)
		require.Equal(t, "SUCCEEDED", status)
		require.Zero(t, amount)
	})
	s.requireNoLeak(admin, "@example.com")
}

func TestAStripeEventForOurRefundDoesNotCountItTwice(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, true, nil)
	admin := s.token("event-admin", "admin")
	payID, pi := s.paidPayment("event-customer", 3500)
	_, p := s.refund(admin, map[string]any{"paymentId": payID, "amount": 1000, "reason": "damaged box", "idempotencyKey": "ev-1"})
	require.Empty(t, userErrorCodes(p))

	var pay models.Payment
	require.NoError(t, s.db.Take(&pay, "id = ?", payID).Error)
	charge := webhooktest.Charge("ch_"+strings.TrimPrefix(pi, "pi_"), pay.StripeInvoiceID, pi, 3500, 1000, "usd")
	s.applied("evt_our_refund", "charge.refunded", time.Now(), charge, nil)
	require.Equal(t, "refund already recorded", s.eventOutcome("evt_our_refund"))
	status, amount := s.refunded(payID)
	require.Equal(t, "PARTIALLY_REFUNDED", status)
	require.EqualValues(t, 1000, amount)
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM notifications WHERE payment_id = ? AND kind = 'payment_refunded'`, payID),
		"the customer is told once, by the refund itself")

	// A refund made in Stripe's dashboard meanwhile is counted once, then ours on top.
	charge = webhooktest.Charge("ch_"+strings.TrimPrefix(pi, "pi_"), pay.StripeInvoiceID, pi, 3500, 1500, "usd")
	s.applied("evt_dashboard_refund", "charge.refunded", time.Now(), charge, nil)
	_, amount = s.refunded(payID)
	require.EqualValues(t, 1500, amount)
}

func TestAdminCancelSubscription(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, nil)
	admin := s.token("cancel-admin", "admin")
	id := s.activeSubscription(s.token("cancel-customer"), "to-cancel")
	sel := "subscription { id status cancelAtPeriodEnd }"
	cancel := func(key string, atPeriodEnd bool, reason string) (gqlResponse, map[string]any) {
		return s.mutate(admin, "adminCancelSubscription", "AdminCancelSubscriptionInput",
			map[string]any{"subscriptionId": id, "atPeriodEnd": atPeriodEnd, "reason": reason, "idempotencyKey": key}, sel)
	}
	stripeCalls := func() int { return len(s.stripe.Requests()) }

	n := stripeCalls()
	_, p := cancel("c-1", true, "")
	require.Equal(t, []string{"INVALID"}, userErrorCodes(p))
	require.Equal(t, n, stripeCalls())

	resp, p := cancel("c-1", true, "fraud suspected")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Empty(t, userErrorCodes(p))
	sub := p["subscription"].(map[string]any)
	require.Equal(t, true, sub["cancelAtPeriodEnd"])
	require.Equal(t, "ACTIVE", sub["status"])
	require.Equal(t, n+1, stripeCalls())

	_, again := cancel("c-1", true, "fraud suspected")
	require.Equal(t, p, again, "replay: the first result")
	require.Equal(t, n+1, stripeCalls(), "and no second call to Stripe")
	_, reused := cancel("c-1", false, "fraud suspected")
	require.Equal(t, []string{"IDEMPOTENCY_KEY_REUSED"}, userErrorCodes(reused))
	_, p = cancel("c-2", true, "twice")
	require.Equal(t, []string{"INVALID_STATE"}, userErrorCodes(p))
	require.Equal(t, n+1, stripeCalls())

	_, p = cancel("c-3", false, "chargeback")
	require.Empty(t, userErrorCodes(p))
	require.Equal(t, "CANCELED", p["subscription"].(map[string]any)["status"])
	reqs := s.stripe.Requests()
	require.Equal(t, http.MethodDelete, reqs[len(reqs)-1].Method)
	_, p = cancel("c-4", false, "again")
	require.Equal(t, []string{"INVALID_STATE"}, userErrorCodes(p))

	_, p = s.mutate(admin, "adminCancelSubscription", "AdminCancelSubscriptionInput",
		map[string]any{"subscriptionId": uuid.NewString(), "atPeriodEnd": false, "reason": "x", "idempotencyKey": "c-5"}, sel)
	require.Equal(t, []string{"NOT_FOUND"}, userErrorCodes(p))

	var entries []models.AuditEntry
	require.NoError(t, s.db.Order("created_at").Find(&entries, "action = ? AND target_id = ?", "adminCancelSubscription", id).Error)
	require.Len(t, entries, 2, "one entry per effect")
	require.Equal(t, "fraud suspected", entries[0].Reason)
	require.JSONEq(t, `"ACTIVE"`, jsonField(t, *entries[0].Before, "status"))
	require.JSONEq(t, `true`, jsonField(t, *entries[0].After, "cancelAtPeriodEnd"))
	require.JSONEq(t, `"CANCELED"`, jsonField(t, *entries[1].After, "status"))
}

func jsonField(t *testing.T, raw, field string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(raw), &m))
	return string(m[field])
}

func TestAuditEntriesTellWhoWhyAndFromWhere(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"})
	payID, _ := s.paidPayment("audited-customer", 3500)
	admin := s.token("audit-admin", "admin")
	body, err := json.Marshal(map[string]any{
		"query": `mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { payment { id } userErrors { code } } }`,
		"variables": map[string]any{"input": map[string]any{"paymentId": payID, "amount": 500,
			"reason": "audited-customer@example.com reported a broken bottle", "idempotencyKey": "audit-1"}},
	})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/graphql", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("X-Request-Id", "req-audit-0001")
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	res, err := s.srv.Client().Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.NotContains(t, string(raw), "errors", string(raw))
	require.NotContains(t, string(raw), "INVALID", string(raw))

	resp := s.gql(admin, `{ auditLog(first: 10) { edges { cursor node { id actor actorRoles action targetType targetId reason
		requestId clientIp before after createdAt } } pageInfo { hasNextPage endCursor } } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	edges := resp.Data["auditLog"].(map[string]any)["edges"].([]any)
	require.Len(t, edges, 2, "the attempt, committed before Stripe was called, and the refund")
	attempt := edges[1].(map[string]any)["node"].(map[string]any)
	require.Equal(t, "refundPayment.attempted", attempt["action"])
	require.Equal(t, s.issuer.IssuerURL()+"|audit-admin", attempt["actor"])
	require.Equal(t, "req-audit-0001", attempt["requestId"])
	require.Contains(t, attempt["after"], `"key": "scv-refundPayment-refund-`)
	e := edges[0].(map[string]any)["node"].(map[string]any)
	require.Contains(t, e["after"], `"attemptId": "`+attempt["id"].(string)+`"`)
	require.Equal(t, s.issuer.IssuerURL()+"|audit-admin", e["actor"])
	require.ElementsMatch(t, []any{"CUSTOMER", "ADMIN"}, e["actorRoles"])
	require.Equal(t, "refundPayment", e["action"])
	require.Equal(t, "payment", e["targetType"])
	require.Equal(t, payID, e["targetId"])
	require.Equal(t, "[masked] reported a broken bottle", e["reason"], "no e-mail address is kept, even typed in a reason")
	require.Equal(t, "req-audit-0001", e["requestId"])
	require.Equal(t, "203.0.113.7", e["clientIp"], "the client behind the trusted proxy")
	require.JSONEq(t, `"SUCCEEDED"`, jsonField(t, e["before"].(string), "status"))
	require.JSONEq(t, `0`, jsonField(t, e["before"].(string), "amountRefunded"))
	require.JSONEq(t, `"PARTIALLY_REFUNDED"`, jsonField(t, e["after"].(string), "status"))
	require.JSONEq(t, `500`, jsonField(t, e["after"].(string), "amountRefunded"))
	require.NotEmpty(t, e["createdAt"])

	var rows []string
	require.NoError(t, s.db.Raw(`SELECT row_to_json(audit_log)::text FROM audit_log`).Scan(&rows).Error)
	require.NotEmpty(t, rows)
	for _, r := range rows {
		require.NotContains(t, r, "@", "no e-mail address in the audit log")
	}

	t.Run("the log pages newest first", func(t *testing.T) {
		for i := range 3 {
			s.gql(s.token(fmt.Sprintf("nosy-%d", i)), `{ auditLog { edges { node { id } } } }`, nil)
		}
		page := func(after any) ([]string, bool, any) {
			nodes, more, end := s.gqlPage(t, admin, `query($after: String) { auditLog(first: 2, after: $after) { edges { node { action actor } } pageInfo { hasNextPage endCursor } } }`,
				map[string]any{"after": after}, "auditLog")
			var actors []string
			for _, node := range nodes {
				actors = append(actors, node["actor"].(string))
			}
			return actors, more, end
		}
		iss := s.issuer.IssuerURL() + "|"
		actors, more, end := page(nil)
		require.Equal(t, []string{iss + "nosy-2", iss + "nosy-1"}, actors)
		require.True(t, more)
		actors, more, end = page(end)
		require.Equal(t, []string{iss + "nosy-0", iss + "audit-admin"}, actors)
		require.True(t, more)
		actors, more, _ = page(end)
		require.Equal(t, []string{iss + "audit-admin"}, actors, "the refund's attempt, oldest")
		require.False(t, more)
	})
}

func TestTheAuditLogIsAppendOnlyInTheDatabase(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, nil)
	s.gql(s.token("append-customer"), `{ auditLog { edges { node { id } } } }`, nil)
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log`))

	// The application's own connection pool, the one every request uses: its role
	// holds no right to rewrite the log. Under it, the schema owner's connection
	// meets the table's trigger.
	db := s.app.DB()
	owner, err := gorm.Open(postgres.Open(s.migrationURL), &gorm.Config{})
	require.NoError(t, err)
	t.Cleanup(func() {
		if sqlDB, err := owner.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	for name, stmt := range map[string]string{
		"update":   `UPDATE audit_log SET reason = 'rewritten'`,
		"delete":   `DELETE FROM audit_log`,
		"truncate": `TRUNCATE audit_log`,
	} {
		t.Run(name, func(t *testing.T) {
			err := db.Exec(stmt).Error
			require.Error(t, err)
			require.Contains(t, err.Error(), "permission denied")
			err = owner.Exec(stmt).Error
			require.Error(t, err)
			require.Contains(t, err.Error(), "append-only")
		})
	}
	require.Error(t, db.Transaction(func(tx *gorm.DB) error {
		return tx.Model(&models.AuditEntry{}).Where("1 = 1").Update("actor_subject", "someone-else").Error
	}))
	var e models.AuditEntry
	require.NoError(t, db.Take(&e).Error)
	require.Equal(t, "append-customer", e.ActorSubject)
	require.Equal(t, "auditLog.forbidden", e.Action)
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log`))
}

func TestAdminSubscriptionsPaging(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, nil)
	support := s.token("paging-support", "support")
	tok := s.token("paging-customer")
	var incomplete, active []string
	for i := range 3 {
		id, _ := s.subscribe(tok, fmt.Sprintf("inc-%d", i), hotMonthly)
		incomplete = append(incomplete, id)
	}
	for i := range 2 {
		active = append(active, s.activeSubscription(tok, fmt.Sprintf("act-%d", i)))
	}
	q := `query($status: SubscriptionStatus, $first: Int, $after: String) { adminSubscriptions(status: $status, first: $first, after: $after) {
		edges { cursor node { id status plan { name } } } pageInfo { hasNextPage endCursor } } }`
	page := func(status any, first int, after any) (ids []string, more bool, end any) {
		t.Helper()
		nodes, more, end := s.gqlPage(t, support, q, map[string]any{"status": status, "first": first, "after": after}, "adminSubscriptions")
		for _, node := range nodes {
			if status != nil {
				require.Equal(t, status, node["status"])
			}
			ids = append(ids, node["id"].(string))
		}
		return ids, more, end
	}

	ids, more, end := page("ACTIVE", 1, nil)
	require.Equal(t, []string{active[1]}, ids, "newest first")
	require.True(t, more)
	ids, more, _ = page("ACTIVE", 1, end)
	require.Equal(t, []string{active[0]}, ids)
	require.False(t, more)

	ids, more, end = page("INCOMPLETE", 2, nil)
	require.Equal(t, []string{incomplete[2], incomplete[1]}, ids)
	require.True(t, more)
	// A subscription arriving between pages does not shift the next one.
	s.subscribe(tok, "inc-late", mildMonthly)
	s.stripe.SetNewSubscriptionStatus("incomplete")
	s.subscribe(tok, "inc-later", mildMonthly)
	ids, more, _ = page("INCOMPLETE", 2, end)
	require.Equal(t, []string{incomplete[0]}, ids, "cursors are stable")
	require.False(t, more)

	ids, _, _ = page(nil, 100, nil)
	require.Len(t, ids, 7)
	ids, _, _ = page("CANCELED", 10, nil)
	require.Empty(t, ids)
	resp := s.gql(support, q, map[string]any{"first": 2, "after": "not-a-cursor"})
	require.Equal(t, []string{"INVALID"}, resp.codes())

	t.Run("first is capped at 100", func(t *testing.T) {
		var sub models.Subscription
		require.NoError(t, s.db.Take(&sub, "id = ?", active[0]).Error)
		base := time.Now().Add(-24 * time.Hour)
		rows := make([]models.Subscription, 0, 101)
		for i := range 101 {
			rows = append(rows, models.Subscription{ID: uuid.NewString(), CustomerID: sub.CustomerID, PlanID: sub.PlanID,
				Status: models.SubscriptionUnpaid, ShippingAddress: sub.ShippingAddress, CreatedAt: base.Add(time.Duration(i) * time.Second)})
		}
		require.NoError(t, s.db.CreateInBatches(rows, 50).Error)
		var planQueries atomic.Int64
		require.NoError(t, s.db.Callback().Query().After("gorm:query").Register("count_admin_plan_queries", func(db *gorm.DB) {
			if strings.Contains(db.Statement.SQL.String(), `FROM "plans"`) {
				planQueries.Add(1)
			}
		}))
		ids, more, _ := page("UNPAID", 100, nil)
		require.Len(t, ids, 100)
		require.True(t, more)
		require.Less(t, planQueries.Load(), int64(10), "the plans of a page are loaded in batches, not one query per row")

		// API.md: first is capped at 100, not refused.
		lean := `query($first: Int) { adminSubscriptions(first: $first) { edges { node { id } } } }`
		resp := s.gql(support, lean, map[string]any{"first": 1000})
		require.Empty(t, resp.Errors, resp.Raw)
		require.Len(t, resp.Data["adminSubscriptions"].(map[string]any)["edges"], 100)
	})
}

func TestAdminCustomers(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, nil)
	support := s.token("customers-support", "support")
	for i, who := range []string{"ann", "annie", "bob"} {
		tok := s.token(who)
		s.subscribe(tok, fmt.Sprintf("c-%d-a", i), hotMonthly)
		s.subscribe(tok, fmt.Sprintf("c-%d-b", i), mildMonthly)
	}
	var subQueries atomic.Int64
	require.NoError(t, s.db.Callback().Query().After("gorm:query").Register("count_subscription_queries", func(db *gorm.DB) {
		if strings.Contains(db.Statement.SQL.String(), `FROM "subscriptions"`) {
			subQueries.Add(1)
		}
	}))
	q := `query($email: String, $first: Int, $after: String) { adminCustomers(email: $email, first: $first, after: $after) {
		edges { node { id email providerCustomerId subscriptions { id plan { name } } } } pageInfo { hasNextPage endCursor } } }`
	list := func(email any, first int, after any) (emails []string, more bool, end any) {
		t.Helper()
		nodes, more, end := s.gqlPage(t, support, q, map[string]any{"email": email, "first": first, "after": after}, "adminCustomers")
		for _, node := range nodes {
			require.Len(t, node["subscriptions"], 2)
			require.NotEmpty(t, node["providerCustomerId"], "staff see the provider id")
			emails = append(emails, node["email"].(string))
		}
		return emails, more, end
	}

	subQueries.Store(0)
	emails, more, _ := list(nil, 10, nil)
	require.Equal(t, []string{"bob@example.com", "annie@example.com", "ann@example.com"}, emails, "newest first")
	require.False(t, more)
	require.Less(t, subQueries.Load(), int64(3), "the subscriptions of a page are loaded in a batch, not one query per customer")

	emails, _, _ = list("ann@example.com", 10, nil)
	require.Equal(t, []string{"ann@example.com"}, emails, "an exact match, not a prefix")
	emails, _, _ = list("  annie@example.com ", 10, nil)
	require.Equal(t, []string{"annie@example.com"}, emails)
	emails, _, _ = list("nobody@example.com", 10, nil)
	require.Empty(t, emails)
	emails, _, _ = list("%@example.com", 10, nil)
	require.Empty(t, emails, "no pattern matching")

	emails, more, end := list(nil, 2, nil)
	require.Equal(t, []string{"bob@example.com", "annie@example.com"}, emails)
	require.True(t, more)
	emails, more, _ = list(nil, 2, end)
	require.Equal(t, []string{"ann@example.com"}, emails)
	require.False(t, more)
	s.requireNoLeak("ann@example.com", "annie@example.com", "bob@example.com")
}
