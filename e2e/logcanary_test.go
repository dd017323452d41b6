package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// canaryStripeKey is the Stripe secret key of the canary run: the fake accepts any.
const canaryStripeKey = "sk_test_CanaryStripeKey0451"

// TestLogCanary runs a full scenario through the real server, on every path that
// logs (sign-in, checkout with an address, a webhook quoting the customer, a
// notification, Stripe refusing and Stripe down, a bad token, a forged webhook, an
// admin action, an erasure), and then looks for the personal data, tokens and
// secrets it used in every log line: there must be none (DAT-2).
func TestLogCanary(t *testing.T) {
	t.Parallel()
	fake := newFakeStripe(t)
	a := newTestApp(t, appOptions{
		env:  map[string]string{"STRIPE_API_BASE": fake.URL, "STRIPE_SECRET_KEY": canaryStripeKey},
		jobs: true, // the development mailer logs each notification
		options: []app.Option{app.WithStripeTimeouts(300*time.Millisecond, 2*time.Second),
			app.WithJobRetryPolicy(fastRetry{})},
	})
	canaries := canaryScenario(t, a, fake)

	// Every path above logged something: the scan below looks at real lines.
	require.Eventually(t, func() bool {
		return strings.Contains(a.logs.String(), `"msg":"mail not sent (development mailer)"`)
	}, 10*time.Second, 20*time.Millisecond, "the notification was not handled")
	logs := a.logs.String()
	for _, want := range []string{
		`"msg":"http request"`, `"msg":"subscription created"`, `"msg":"webhook received"`, `"msg":"webhook applied"`,
		`"msg":"payment succeeded"`, `"msg":"shipment created"`, `"msg":"mail not sent (development mailer)"`,
		`"msg":"stripe call"`, `"outcome":"refused"`, `"outcome":"unavailable"`, `"msg":"access token refused"`,
		`"msg":"webhook rejected"`, `"msg":"webhook attempt failed"`, `"op":"CreateProduct`,
		`"op":"DeleteCustomer"`, `"msg":"customer erased"`,
	} {
		require.Contains(t, logs, want, "the scenario did not reach this path")
	}
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	require.Greater(t, len(lines), 30)

	for i, line := range lines {
		lower := strings.ToLower(line)
		for _, c := range canaries {
			require.NotContains(t, lower, strings.ToLower(c), "log line %d leaks a canary value: %s", i, line)
		}
	}

}

// canaryScenario runs the canary's flows against a (its workers running, Stripe
// the fake), and returns the personal data, tokens and secrets they used, which
// nothing the product writes for operators may hold.
func canaryScenario(t *testing.T, a *testApp, fake *stripefake.Server) []string {
	t.Helper()
	a.seedAt(fake.URL)
	s := &shop{testApp: a, stripe: fake}

	canary := &person{subject: "canary-subject", email: "cassius.canary@leak.example", name: "Cassius Canarybird",
		street: "99 Canaryleak Avenue", city: "Leakville"}
	var secrets []string

	// Sign in, subscribe with an address, and have Stripe report the invoice paid
	// with the customer's e-mail, name and address in the payload.
	fake.SetNewSubscriptionStatus("active")
	s.enrol(canary, 1)
	secrets = append(secrets, canary.token)
	me := s.gql(canary.token, `{ me { id email name } }`, nil)
	require.Empty(t, me.Errors, me.Raw)
	require.Contains(t, me.Raw, canary.email, "the API does return the e-mail to its owner")

	// A client secret for the first payment is returned to the client, never logged.
	fake.SetNewSubscriptionStatus("incomplete")
	_, payload := s.mutate(canary.token, "createSubscription", "CreateSubscriptionInput", map[string]any{
		"planId": mildMonthly, "idempotencyKey": "canary-incomplete",
		"shippingAddress": map[string]any{"name": canary.name, "line1": canary.street, "city": canary.city, "postalCode": "10115", "country": "DE"},
	}, "clientSecret")
	clientSecret, _ := payload["clientSecret"].(string)
	require.NotEmpty(t, clientSecret)
	secrets = append(secrets, clientSecret)

	// Stripe refuses a card, then is down until the retry budget is spent.
	fake.FailNext(stripefake.Fault{Status: http.StatusPaymentRequired, Code: "card_declined"})
	_, payload = s.mutate(canary.token, "createSubscription", "CreateSubscriptionInput", map[string]any{
		"planId": hotQuarterly, "idempotencyKey": "canary-declined",
		"shippingAddress": map[string]any{"name": canary.name, "line1": canary.street, "city": canary.city, "postalCode": "10115", "country": "DE"},
	}, "subscription { id }")
	require.Equal(t, []string{"PAYMENT_DECLINED"}, userErrorCodes(payload))
	down := make([]stripefake.Fault, 40)
	for i := range down {
		down[i] = stripefake.Fault{Status: http.StatusServiceUnavailable}
	}
	fake.FailNext(down...)
	resp, _ := s.mutate(canary.token, "createSubscription", "CreateSubscriptionInput", map[string]any{
		"planId": hotQuarterly, "idempotencyKey": "canary-down",
		"shippingAddress": map[string]any{"name": canary.name, "line1": canary.street, "city": canary.city, "postalCode": "10115", "country": "DE"},
	}, "subscription { id }")
	fake.ClearFaults()
	require.Equal(t, []string{"PROVIDER_UNAVAILABLE"}, resp.codes(), resp.Raw)

	// A token that fails verification (its signature altered) is refused and logged.
	forged := canary.token[:len(canary.token)-6] + "AAAAAA"
	secrets = append(secrets, forged)
	resp = s.gql(forged, `{ me { id } }`, nil)
	require.Equal(t, http.StatusUnauthorized, resp.Status)

	// A webhook with a bad signature, its body quoting the customer.
	body := webhooktest.Event("evt_canary_forged", "customer.updated", time.Now(),
		webhooktest.Object{"id": canary.stripeCustomer, "object": "customer", "email": canary.email, "name": canary.name}, nil)
	status, _ := s.postWebhook(body, webhooktest.Sign(body, "whsec_wrong", time.Now()))
	require.Equal(t, http.StatusBadRequest, status)

	// An event that cannot apply (its object is not what its type says) fails,
	// with its error logged.
	bad := webhooktest.Event("evt_canary_bad", "invoice.paid", time.Now(),
		webhooktest.Object{"id": "ch_canary", "object": "charge", "billing_details": map[string]any{"email": canary.email, "name": canary.name}}, nil)
	require.Equal(t, 200, s.deliver(bad))
	require.Equal(t, "FAILED", s.awaitEvent("evt_canary_bad"))

	// An admin creates a plan (a Stripe call) and reads the audit log.
	adminTok, err := s.issuer.Mint(devidp.Claims{Subject: "canary-admin", Email: "root.canary@leak.example", Name: "Admina Canaryroot",
		Roles: []string{"admin"}, AuthTime: time.Now().Add(-time.Minute)})
	require.NoError(t, err)
	secrets = append(secrets, adminTok)
	_, payload = s.mutate(adminTok, "createPlan", "CreatePlanInput", map[string]any{
		"name": "Canary box", "description": "for the log canary", "interval": "MONTH", "amount": 1500, "currency": "USD",
		"idempotencyKey": "canary-plan",
	}, "plan { id }")
	require.Empty(t, userErrorCodes(payload))
	resp = s.gql(adminTok, `{ auditLog(first: 5) { edges { node { action } } } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)

	// The customer erases their account.
	_, payload = s.deleteAccount(canary.token, "canary-erase", true)
	require.Equal(t, true, payload["deleted"], payload)

	return append([]string{
		canary.email, canary.name, canary.street, canary.city, "Canarybird", "Canaryleak",
		"root.canary@leak.example", "Admina Canaryroot", "@leak.example",
		canaryStripeKey, testWebhookSecret,
	}, secrets...)
}
