package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// newClaimsShop is the app with env on top of the test defaults, in front of the
// stateful fake Stripe with the catalog seeded there; with jobs, the workers run and
// mailer records what they send.
func newClaimsShop(t *testing.T, env map[string]string, jobs bool, mailer *recordingMailer) *shop {
	t.Helper()
	fake := newFakeStripe(t)
	env["STRIPE_API_BASE"] = fake.URL
	o := []app.Option{app.WithStripeTimeouts(300*time.Millisecond, 2*time.Second)}
	if mailer != nil {
		o = append(o, app.WithMailer(mailer), app.WithJobRetryPolicy(fastRetry{}))
	}
	a := newTestApp(t, appOptions{env: env, jobs: jobs, options: o})
	a.seedAt(fake.URL)
	fake.SetNewSubscriptionStatus("active")
	return &shop{testApp: a, stripe: fake}
}

// mint signs an access token at the test issuer, logged in authAge ago.
func (s *shop) mint(sub string, authAge time.Duration, c devidp.Claims) string {
	s.t.Helper()
	c.Subject, c.AuthTime = sub, time.Now().Add(-authAge)
	tok, err := s.issuer.Mint(c)
	require.NoError(s.t, err)
	return tok
}

// portal asks for a billing portal session, a step-up operation with no other effect.
func (s *shop) portal(token string) (gqlResponse, map[string]any) {
	return s.mutate(token, "createBillingPortalSession", "CreateBillingPortalSessionInput",
		map[string]any{"returnUrl": "https://shop.example/account"}, "url")
}

// SUB-2: with STEP_UP_AMR and STEP_UP_ACR, a recent login is not enough: the factor
// must be in the token, exactly, and the refusal says what to ask for.
func TestStepUpRequiresTheConfiguredFactor(t *testing.T) {
	t.Parallel()
	type attempt struct {
		name   string
		claims devidp.Claims
		age    time.Duration
		passes bool
	}
	cases := []struct {
		name    string
		env     map[string]string
		wantExt map[string]any
		tries   []attempt
	}{
		{
			name:    "STEP_UP_AMR=mfa (Auth0)",
			env:     map[string]string{"STEP_UP_AMR": "mfa"},
			wantExt: map[string]any{"code": "STEP_UP_REQUIRED", "maxAge": float64(300), "amrValues": "mfa"},
			tries: []attempt{
				{"recent login without amr", devidp.Claims{}, time.Minute, false},
				{"password only", devidp.Claims{AMR: []string{"pwd"}}, time.Minute, false},
				{`"mfa " with a space`, devidp.Claims{AMR: []string{"mfa "}}, time.Minute, false},
				{"MFA upper case", devidp.Claims{AMR: []string{"MFA"}}, time.Minute, false},
				{"amr a string, not an array", devidp.Claims{Extra: map[string]any{"amr": "mfa"}}, time.Minute, false},
				{"amr an array with a non-string", devidp.Claims{Extra: map[string]any{"amr": []any{"mfa", 1}}}, time.Minute, false},
				{"mfa in acr instead of amr", devidp.Claims{ACR: "mfa"}, time.Minute, false},
				{"mfa but a stale login", devidp.Claims{AMR: []string{"pwd", "mfa"}}, time.Hour, false},
				{"mfa and a recent login", devidp.Claims{AMR: []string{"pwd", "mfa"}}, time.Minute, true},
			},
		},
		{
			name:    "STEP_UP_ACR=2,gold (Keycloak LoA)",
			env:     map[string]string{"STEP_UP_ACR": "2,gold"},
			wantExt: map[string]any{"code": "STEP_UP_REQUIRED", "maxAge": float64(300), "acrValues": "2 gold"},
			tries: []attempt{
				{"recent login without acr", devidp.Claims{}, time.Minute, false},
				{"a lower level", devidp.Claims{ACR: "1"}, time.Minute, false},
				{"acr a number, not a string", devidp.Claims{Extra: map[string]any{"acr": 2}}, time.Minute, false},
				{"acr an array", devidp.Claims{Extra: map[string]any{"acr": []string{"gold"}}}, time.Minute, false},
				{"Gold upper case", devidp.Claims{ACR: "Gold"}, time.Minute, false},
				{`"gold " with a space`, devidp.Claims{ACR: "gold "}, time.Minute, false},
				{"both values in one string", devidp.Claims{ACR: "2 gold"}, time.Minute, false},
				{"gold in amr instead of acr", devidp.Claims{AMR: []string{"gold"}}, time.Minute, false},
				{"level 2 and a recent login", devidp.Claims{ACR: "2"}, time.Minute, true},
				{"gold and a recent login", devidp.Claims{ACR: "gold"}, time.Minute, true},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newClaimsShop(t, tc.env, false, nil)
			// A Stripe customer, so that the portal can open once step-up passes.
			s.subscribe(s.mint("kim", time.Minute, devidp.Claims{}), "kim-sub", hotMonthly)
			for _, a := range tc.tries {
				n := s.stripe.Count(http.MethodPost, "/v1/billing_portal")
				resp, payload := s.portal(s.mint("kim", a.age, a.claims))
				if a.passes {
					require.Empty(t, resp.Errors, "%s: %s", a.name, resp.Raw)
					require.Empty(t, userErrorCodes(payload), "%s: %s", a.name, resp.Raw)
					require.Contains(t, payload["url"], "https://billing.stripe.com/", a.name)
					continue
				}
				require.Equal(t, []string{"STEP_UP_REQUIRED"}, resp.codes(), "%s: %s", a.name, resp.Raw)
				require.Equal(t, tc.wantExt, resp.Errors[0].Extensions, a.name)
				require.Nil(t, resp.Data["createBillingPortalSession"], a.name)
				require.Equal(t, n, s.stripe.Count(http.MethodPost, "/v1/billing_portal"), "%s: nothing reached Stripe", a.name)
			}
		})
	}
}

// Without STEP_UP_ACR or STEP_UP_AMR (the default), a recent login alone passes, as
// before, and the refusal of a stale one names only maxAge.
func TestStepUpWithoutFactorsNeedsOnlyARecentLogin(t *testing.T) {
	t.Parallel()
	s := newClaimsShop(t, map[string]string{}, false, nil)
	s.subscribe(s.mint("lee", time.Minute, devidp.Claims{}), "lee-sub", hotMonthly)
	resp, payload := s.portal(s.mint("lee", time.Minute, devidp.Claims{}))
	require.Empty(t, resp.Errors, resp.Raw)
	require.Contains(t, payload["url"], "https://billing.stripe.com/")
	resp, _ = s.portal(s.mint("lee", time.Hour, devidp.Claims{}))
	require.Equal(t, []string{"STEP_UP_REQUIRED"}, resp.codes())
	require.Equal(t, map[string]any{"code": "STEP_UP_REQUIRED", "maxAge": float64(300)}, resp.Errors[0].Extensions)
}

// An address the identity provider has not verified is anyone's to type: it must not
// become the account's e-mail, so it gets no notification, is not sent to Stripe and
// does not find the account in staff search. A later token that verifies it does.
func TestUnverifiedEmailIsNotTheCustomersEmail(t *testing.T) {
	t.Parallel()
	mailer := &recordingMailer{}
	s := newClaimsShop(t, map[string]string{}, true, mailer)
	const victim = "victim.verified@claims.example"
	unverified := s.mint("mallory", time.Minute, devidp.Claims{Email: victim, Name: "Mallory",
		Extra: map[string]any{"email_verified": false}})
	support := s.token("agent", "support")
	me := func(token string) map[string]any {
		t.Helper()
		resp := s.gql(token, `{ me { id email } }`, nil)
		require.Empty(t, resp.Errors, resp.Raw)
		return resp.Data["me"].(map[string]any)
	}

	require.Equal(t, "", me(unverified)["email"], "the account exists, without an e-mail")

	// Subscribing creates the Stripe customer: without the address.
	subID, _ := s.subscribe(unverified, "mallory-sub", hotMonthly)
	var customerCreates []stripefake.Request
	for _, r := range s.stripe.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/customers" {
			customerCreates = append(customerCreates, r)
		}
	}
	require.Len(t, customerCreates, 1)
	require.NotContains(t, customerCreates[0].Form, "email")
	for k, v := range customerCreates[0].Form {
		require.NotContains(t, v, "victim", "form field %s", k)
	}

	// A paid invoice makes a notification; it goes to no one.
	var customerID, stripeCustomer, stripeSub string
	require.NoError(t, s.db.Raw(`SELECT s.customer_id, c.stripe_customer_id, s.stripe_subscription_id
		FROM subscriptions s JOIN customers c ON c.id = s.customer_id WHERE s.id = ?`, subID).
		Row().Scan(&customerID, &stripeCustomer, &stripeSub))
	var plan models.Plan
	require.NoError(t, s.db.Take(&plan, "id = ?", hotMonthly).Error)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	inv := webhooktest.Invoice{ID: "in_claims_1", Subscription: stripeSub, Customer: stripeCustomer, Price: *plan.StripePriceID,
		Amount: plan.Amount, Currency: strings.ToLower(plan.Currency), PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0)}.Object()
	s.applied("evt_claims_1", "invoice.paid", start, inv, nil)
	require.Eventually(t, func() bool {
		return s.count(`SELECT count(*) FROM notifications WHERE customer_id = ? AND sent_at IS NOT NULL`, customerID) > 0
	}, 10*time.Second, 20*time.Millisecond, "the notification is settled")
	mailer.mu.Lock()
	for _, m := range mailer.sent {
		require.NotEqual(t, victim, m.To, "no mail to an unverified address")
	}
	mailer.mu.Unlock()

	require.Empty(t, s.customersByEmail(support, victim), "staff search does not find an unverified address")

	// The same person, once the provider has verified the address.
	verified := s.mint("mallory", time.Minute, devidp.Claims{Email: victim})
	require.Equal(t, victim, me(verified)["email"])
	found := s.customersByEmail(support, victim)
	require.Len(t, found, 1)
	require.Equal(t, customerID, found[0].(map[string]any)["node"].(map[string]any)["id"])

	// A later unverified address replaces nothing.
	other := s.mint("mallory", time.Minute, devidp.Claims{Email: "other.person@claims.example",
		Extra: map[string]any{"email_verified": false}})
	require.Equal(t, victim, me(other)["email"])
	require.Empty(t, s.customersByEmail(support, "other.person@claims.example"))
}

// An email_verified claim that is missing or only looks true counts as unverified.
func TestEmailVerifiedLookAlikes(t *testing.T) {
	t.Parallel()
	s := newClaimsShop(t, map[string]string{}, false, nil)
	for i, v := range []any{nil, "true", 1, "TRUE", []any{true}, map[string]any{"value": true}} {
		sub := fmt.Sprintf("lookalike-%d", i)
		email := sub + "@claims.example"
		tok := s.mint(sub, time.Minute, devidp.Claims{Email: email, Extra: map[string]any{"email_verified": v}})
		resp := s.gql(tok, `{ me { email } }`, nil)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, "", resp.Data["me"].(map[string]any)["email"], "email_verified=%v", v)
	}
}

// An ID token issued to a client whose id is OIDC_AUDIENCE, without nonce or hash
// claims, has the right issuer, audience and signature: it is refused whole as not
// an access token, like any other invalid token.
func TestIDTokenForTheAudienceIsRefused(t *testing.T) {
	t.Parallel()
	now := time.Now()
	idToken := func(a *testApp, extra map[string]any) string {
		claims := map[string]any{
			"iss": a.issuer.IssuerURL(), "sub": "ida", "aud": testAudience,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "auth_time": now.Add(-time.Minute).Unix(),
			"email": "ida@claims.example", "email_verified": true, "name": "Ida",
		}
		for k, v := range extra {
			claims[k] = v
		}
		tok, err := a.issuer.SignRaw(map[string]any{"typ": "JWT"}, claims)
		require.NoError(t, err)
		return tok
	}
	refused := func(a *testApp, tok, what string) {
		t.Helper()
		resp := a.gql(tok, `{ me { id } }`, nil)
		require.Equal(t, http.StatusUnauthorized, resp.Status, "%s: %s", what, resp.Raw)
		require.Equal(t, `Bearer error="invalid_token"`, resp.Header.Get("WWW-Authenticate"), what)
		require.Equal(t, []string{"UNAUTHENTICATED"}, resp.codes(), what)
		require.Nil(t, resp.Data["me"], what)
	}

	a := newTestApp(t, appOptions{})
	refused(a, idToken(a, nil), "ID token, no azp")
	refused(a, idToken(a, map[string]any{"azp": testAudience}), "ID token, azp the audience")
	refused(a, idToken(a, map[string]any{"aud": []string{testAudience}}), "ID token, aud a list")
	require.EqualValues(t, 0, a.count(`SELECT count(*) FROM customers WHERE subject = 'ida'`), "nobody provisioned")
	ok := a.gql(a.token("ida"), `{ me { id } }`, nil)
	require.Equal(t, http.StatusOK, ok.Status)
	require.Empty(t, ok.Errors, ok.Raw)

	// OIDC_REQUIRE_AT_JWT: only typ at+jwt, whatever else the token carries.
	strict := newTestApp(t, appOptions{env: map[string]string{"OIDC_REQUIRE_AT_JWT": "true"}})
	refused(strict, idToken(strict, map[string]any{"scope": "openid", "azp": "storefront"}), "typ JWT with scope and client")
	ok = strict.gql(strict.token("ida"), `{ me { id } }`, nil)
	require.Equal(t, http.StatusOK, ok.Status)
	require.Empty(t, ok.Errors, ok.Raw)
}
