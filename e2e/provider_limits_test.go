package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/graph"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/ratelimit"
)

// stripeWrites counts the POSTs the fake Stripe has received so far.
func (s *shop) stripeWrites() int {
	n := 0
	for _, r := range s.stripe.Requests() {
		if r.Method == http.MethodPost {
			n++
		}
	}
	return n
}

// aliasedPauses is one mutation pausing subscription id under n aliases, each with its
// own idempotency key, so each would be its own write at Stripe.
func aliasedPauses(id, prefix string, n int) string {
	var b strings.Builder
	b.WriteString("mutation {")
	for i := range n {
		fmt.Fprintf(&b, ` p%d: pauseSubscription(input: {subscriptionId: %q, idempotencyKey: "%s-%d"}) { subscription { status } userErrors { code } }`, i, id, prefix, i)
	}
	b.WriteString(" }")
	return b.String()
}

// TestEveryProviderFieldIsChargedToThePaymentAllowance: aliases must not multiply
// Stripe writes. Thirty aliased pauseSubscription fields cost thirty payment tokens,
// so with an allowance of one per half minute the request is refused whole and
// Stripe sees nothing; and a single pause is charged like any other provider call.
func TestEveryProviderFieldIsChargedToThePaymentAllowance(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, map[string]string{"RATE_LIMIT_PAYMENTS_PER_MINUTE": "2"}) // burst 1
	tok := s.token("alias-payer")
	id := s.activeSubscription(tok, "alias-create") // the caller's one token
	writes := s.stripeWrites()

	res := s.gql(tok, aliasedPauses(id, "thirty", 30), nil)
	require.Equal(t, http.StatusTooManyRequests, res.Status, res.Raw)
	require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), res.Raw)
	require.Nil(t, res.Data)
	require.Equal(t, writes, s.stripeWrites(), "Stripe saw no write of the refused request")
	require.Equal(t, "ACTIVE", s.status(id))

	res = s.gql(tok, aliasedPauses(id, "one", 1), nil)
	require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), "pauseSubscription is charged: %s", res.Raw)
	res = s.gql(tok, `mutation { r: resumeSubscription(input: {subscriptionId: "`+id+`", idempotencyKey: "r"}) { userErrors { code } } }`, nil)
	require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), "resumeSubscription is charged: %s", res.Raw)
	require.Equal(t, writes, s.stripeWrites())
	require.Equal(t, "ACTIVE", s.status(id))

	_, metrics := s.get("/metrics")
	require.Contains(t, metrics, `scoville_rate_limited_total{scope="payment"} 3`)
}

// TestFieldsMarkedProviderAreThoseThatCallStripe runs every mutation of the schema
// through the real handler against the fake Stripe, on a path where it does its work,
// and checks that it sent Stripe a request exactly when the schema marks it @provider:
// the payment allowance charges the fields that call Stripe, derived from what they
// do. A mutation added to the schema fails here until a step runs it.
func TestFieldsMarkedProviderAreThoseThatCallStripe(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, nil)
	tok := s.token("prov-customer")
	support, admin := s.token("prov-support", "support"), s.token("prov-admin", "admin")
	paymentID, _ := s.paidPayment("prov-payer", 1500)
	var paid models.Payment
	require.NoError(t, s.db.Take(&paid, "id = ?", paymentID).Error)
	now := time.Now().UTC()
	event := models.WebhookEvent{ProviderEventID: "evt_prov_replay", Type: "invoice.paid", APIVersion: "2023-10-16",
		EventCreated: now, Payload: []byte(`{}`), Status: models.WebhookProcessed, ReceivedAt: now}
	require.NoError(t, s.db.Create(&event).Error)

	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	var subID string
	ran := map[string]bool{}
	step := func(token, field, inputType string, input map[string]any, selection string) map[string]any {
		t.Helper()
		before := len(s.stripe.Requests())
		resp, payload := s.mutate(token, field, inputType, input, selection)
		require.Empty(t, resp.Errors, "%s: %s", field, resp.Raw)
		require.Empty(t, userErrorCodes(payload), "%s did its work: %s", field, resp.Raw)
		calls := len(s.stripe.Requests()) - before
		def := schema.Mutation.Fields.ForName(field)
		require.NotNil(t, def, field)
		marked := def.Directives.ForName(ratelimit.ProviderDirective) != nil
		require.Equal(t, calls > 0, marked, "%s sent Stripe %d requests; @provider: %v", field, calls, marked)
		ran[field] = true
		return payload
	}
	key := func(field string) string { return "prov-" + field }
	// An endpoint for every event, so that the steps below leave deliveries to re-send.
	ep := step(admin, "createWebhookEndpoint", "CreateWebhookEndpointInput", map[string]any{"url": "https://hooks.example/in",
		"eventTypes": []string{"*"}, "reason": "provider check", "idempotencyKey": key("createWebhookEndpoint")}, "endpoint { id }")
	endpointID := ep["endpoint"].(map[string]any)["id"].(string)

	step(admin, "createPlan", "CreatePlanInput", map[string]any{"name": "Provider box", "description": "d", "interval": "MONTH",
		"amount": 1500, "currency": "USD", "idempotencyKey": key("createPlan")}, "plan { id }")
	step(tok, "startCheckout", "StartCheckoutInput", map[string]any{"planId": hotMonthly, "successUrl": "https://shop.example/ok",
		"cancelUrl": "https://shop.example/no", "idempotencyKey": key("startCheckout")}, "checkoutUrl")
	s.stripe.SetNewSubscriptionStatus("active")
	p := step(tok, "createSubscription", "CreateSubscriptionInput", map[string]any{"planId": hotMonthly, "shippingAddress": address("Berlin"),
		"idempotencyKey": key("createSubscription")}, "subscription { id }")
	subID = p["subscription"].(map[string]any)["id"].(string)
	onSub := func(field string, extra map[string]any) map[string]any {
		in := map[string]any{"subscriptionId": subID, "idempotencyKey": key(field)}
		for k, v := range extra {
			in[k] = v
		}
		return in
	}
	step(tok, "updateShippingAddress", "UpdateShippingAddressInput", onSub("updateShippingAddress", map[string]any{"address": address("Hamburg")}), "subscription { id }")
	step(tok, "pauseSubscription", "PauseSubscriptionInput", onSub("pauseSubscription", nil), "subscription { id }")
	step(tok, "resumeSubscription", "ResumeSubscriptionInput", onSub("resumeSubscription", nil), "subscription { id }")
	step(tok, "changeSubscriptionPlan", "ChangeSubscriptionPlanInput", onSub("changeSubscriptionPlan", map[string]any{"planId": hotQuarterly}), "subscription { id }")
	step(tok, "createBillingPortalSession", "CreateBillingPortalSessionInput", map[string]any{"returnUrl": "https://shop.example/account"}, "url")
	step(support, "resyncSubscription", "ResyncSubscriptionInput", map[string]any{"subscriptionId": subID, "reason": "provider check"}, "subscription { id }")
	step(support, "replayWebhookEvent", "ReplayWebhookEventInput", map[string]any{"eventId": event.ID, "reason": "provider check"}, "event { id }")
	step(tok, "cancelSubscription", "CancelSubscriptionInput", onSub("cancelSubscription", map[string]any{"atPeriodEnd": true}), "subscription { id }")
	step(admin, "refundPayment", "RefundPaymentInput", map[string]any{"paymentId": paymentID, "reason": "provider check",
		"idempotencyKey": key("refundPayment")}, "payment { id }")
	step(admin, "adminCancelSubscription", "AdminCancelSubscriptionInput", map[string]any{"subscriptionId": paid.SubscriptionID,
		"atPeriodEnd": false, "reason": "provider check", "idempotencyKey": key("adminCancelSubscription")}, "subscription { id }")
	step(tok, "deleteMyAccount", "DeleteMyAccountInput", map[string]any{"confirm": true, "idempotencyKey": key("deleteMyAccount")}, "deleted")
	step(admin, "updateWebhookEndpoint", "UpdateWebhookEndpointInput", map[string]any{"endpointId": endpointID, "description": "3PL",
		"reason": "provider check", "idempotencyKey": key("updateWebhookEndpoint")}, "endpoint { id }")
	step(admin, "rotateWebhookEndpointSecret", "RotateWebhookEndpointSecretInput", map[string]any{"endpointId": endpointID,
		"reason": "provider check", "idempotencyKey": key("rotateWebhookEndpointSecret")}, "secret")
	var deliveryID string
	require.NoError(t, s.db.Raw(`SELECT id FROM webhook_deliveries LIMIT 1`).Scan(&deliveryID).Error)
	step(support, "redeliverWebhook", "RedeliverWebhookInput", map[string]any{"deliveryId": deliveryID, "reason": "provider check"}, "delivery { id }")

	for _, f := range schema.Mutation.Fields {
		if !strings.HasPrefix(f.Name, "__") {
			require.True(t, ran[f.Name], "Mutation.%s has no step here: run it and check its Stripe calls", f.Name)
		}
	}
}
