package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
)

// Plans of the development catalog.
const (
	mildMonthly  = "4d0c6f1e-0000-4000-8000-000000000101"
	hotMonthly   = "4d0c6f1e-0000-4000-8000-000000000201"
	hotQuarterly = "4d0c6f1e-0000-4000-8000-000000000202"
)

const subFields = `id status plan { id name interval } shippingAddress { name line1 line2 city postalCode region country }
	currentPeriodEnd cancelAtPeriodEnd pausedUntil createdAt updatedAt`

// shop is the app in front of a stateful fake Stripe, with the catalog seeded there.
type shop struct {
	*testApp
	stripe *stripefake.Server
}

func newShop(t *testing.T) *shop {
	t.Helper()
	fake := newFakeStripe(t)
	a := newTestApp(t, appOptions{
		env:     map[string]string{"STRIPE_API_BASE": fake.URL},
		options: []app.Option{app.WithStripeTimeouts(300*time.Millisecond, 2*time.Second)},
	})
	a.seedAt(fake.URL)
	return &shop{testApp: a, stripe: fake}
}

func (s *shop) staleToken(sub string) string {
	s.t.Helper()
	tok, err := s.issuer.Mint(devidp.Claims{Subject: sub, Email: sub + "@example.com", AuthTime: time.Now().Add(-time.Hour)})
	require.NoError(s.t, err)
	return tok
}

func address(city string) map[string]any {
	return map[string]any{"name": "Ada Lovelace", "line1": "1 Pepper Lane", "city": city, "postalCode": "10115", "country": "de"}
}

// mutate runs one mutation and returns its payload object (named field).
func (s *shop) mutate(token, field, inputType string, input map[string]any, selection string) (gqlResponse, map[string]any) {
	s.t.Helper()
	q := fmt.Sprintf(`mutation($input: %s!) { %s(input: $input) { %s userErrors { field message code } } }`, inputType, field, selection)
	resp := s.gql(token, q, map[string]any{"input": input})
	payload, _ := resp.Data[field].(map[string]any)
	return resp, payload
}

// requireKeyReused sends the mutation and requires it refused with
// IDEMPOTENCY_KEY_REUSED: its key was used before with another input.
func (s *shop) requireKeyReused(t *testing.T, token, field, inputType string, input map[string]any, selection string) {
	t.Helper()
	_, p := s.mutate(token, field, inputType, input, selection)
	require.Equal(t, []string{"IDEMPOTENCY_KEY_REUSED"}, userErrorCodes(p))
}

func userErrorCodes(payload map[string]any) []string {
	var out []string
	ues, _ := payload["userErrors"].([]any)
	for _, ue := range ues {
		out = append(out, ue.(map[string]any)["code"].(string))
	}
	return out
}

// subscribe creates a subscription for token's caller and returns its id.
func (s *shop) subscribe(token, key, plan string) (string, map[string]any) {
	s.t.Helper()
	resp, payload := s.mutate(token, "createSubscription", "CreateSubscriptionInput", map[string]any{
		"planId": plan, "shippingAddress": address("Berlin"), "idempotencyKey": key,
	}, "subscription { "+subFields+" } clientSecret")
	require.Empty(s.t, resp.Errors, resp.Raw)
	require.Empty(s.t, userErrorCodes(payload), resp.Raw)
	sub := payload["subscription"].(map[string]any)
	return sub["id"].(string), payload
}

// activeSubscription subscribes with Stripe reporting the first payment done.
func (s *shop) activeSubscription(token, key string) string {
	s.t.Helper()
	s.stripe.SetNewSubscriptionStatus("active")
	id, _ := s.subscribe(token, key, hotMonthly)
	return id
}

func TestCreateSubscriptionStartsIncompleteWithAClientSecret(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("alice")
	id, payload := s.subscribe(tok, "create-1", hotMonthly)
	sub := payload["subscription"].(map[string]any)
	require.Equal(t, "INCOMPLETE", sub["status"], "a subscription is incomplete until Stripe says it is paid")
	require.NotEmpty(t, payload["clientSecret"])
	require.Equal(t, "Hot Box", sub["plan"].(map[string]any)["name"])
	require.Equal(t, "DE", sub["shippingAddress"].(map[string]any)["country"], "country is normalized")

	reqs := s.stripe.Requests()
	var create stripefake.Request
	for _, r := range reqs {
		if r.Method == http.MethodPost && r.Path == "/v1/subscriptions" {
			create = r
		}
	}
	require.Equal(t, "default_incomplete", create.Form["payment_behavior"])
	require.Equal(t, "latest_invoice.payment_intent", create.Form["expand[0]"])
	require.Equal(t, id, create.Form["metadata[scoville_subscription_id]"])
	require.NotEmpty(t, create.IdempotencyKey)
	require.NotContains(t, create.IdempotencyKey, "alice", "provider keys carry no personal data")

	// The customer's Stripe customer is created once, then reused.
	s.subscribe(tok, "create-2", mildMonthly)
	require.Equal(t, 1, s.stripe.Count(http.MethodPost, "/v1/customers"))

	me := s.gql(tok, `{ me { providerCustomerId subscriptions { id plan { name } } } }`, nil)
	require.Len(t, me.Data["me"].(map[string]any)["subscriptions"], 2)
	require.Equal(t, []string{"FORBIDDEN"}, me.codes(), "providerCustomerId is staff only")
	s.requireNoLeak(tok, "alice@example.com", fmt.Sprint(payload["clientSecret"]))
}

func TestTheLifecycleOfASubscription(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("bob")
	id := s.activeSubscription(tok, "life-create")
	sel := "subscription { " + subFields + " }"

	step := func(field, inputType string, input map[string]any, wantCodes []string, wantStripeCalls int) map[string]any {
		t.Helper()
		before := len(s.stripe.Requests())
		input["subscriptionId"] = id
		if _, ok := input["idempotencyKey"]; !ok {
			input["idempotencyKey"] = fmt.Sprintf("%s-%d", field, time.Now().UnixNano())
		}
		resp, payload := s.mutate(tok, field, inputType, input, sel)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, wantCodes, userErrorCodes(payload), resp.Raw)
		require.Equal(t, wantStripeCalls, len(s.stripe.Requests())-before, "requests sent to Stripe by %s", field)
		sub, _ := payload["subscription"].(map[string]any)
		return sub
	}

	resumeAt := time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Second)
	sub := step("pauseSubscription", "PauseSubscriptionInput", map[string]any{"resumeAt": resumeAt.Format(time.RFC3339)}, nil, 1)
	require.Equal(t, "PAUSED", sub["status"])
	require.Equal(t, resumeAt.Format(time.RFC3339), sub["pausedUntil"])
	step("pauseSubscription", "PauseSubscriptionInput", map[string]any{}, []string{"INVALID_STATE"}, 0)

	sub = step("resumeSubscription", "ResumeSubscriptionInput", map[string]any{}, nil, 1)
	require.Equal(t, "ACTIVE", sub["status"])
	require.Nil(t, sub["pausedUntil"])
	step("resumeSubscription", "ResumeSubscriptionInput", map[string]any{}, []string{"INVALID_STATE"}, 0)

	sub = step("changeSubscriptionPlan", "ChangeSubscriptionPlanInput", map[string]any{"planId": hotQuarterly}, nil, 1)
	require.Equal(t, "QUARTER", sub["plan"].(map[string]any)["interval"])
	step("changeSubscriptionPlan", "ChangeSubscriptionPlanInput", map[string]any{"planId": hotQuarterly}, []string{"INVALID"}, 0)
	step("changeSubscriptionPlan", "ChangeSubscriptionPlanInput", map[string]any{"planId": "4d0c6f1e-0000-4000-8000-00000000ffff"}, []string{"NOT_FOUND"}, 0)

	sub = step("updateShippingAddress", "UpdateShippingAddressInput", map[string]any{"address": address("Hamburg")}, nil, 0)
	require.Equal(t, "Hamburg", sub["shippingAddress"].(map[string]any)["city"])
	bad := address("Hamburg")
	bad["country"] = "XX"
	step("updateShippingAddress", "UpdateShippingAddressInput", map[string]any{"address": bad}, []string{"INVALID"}, 0)

	sub = step("cancelSubscription", "CancelSubscriptionInput", map[string]any{"atPeriodEnd": true}, nil, 1)
	require.Equal(t, true, sub["cancelAtPeriodEnd"])
	require.Equal(t, "ACTIVE", sub["status"])
	step("cancelSubscription", "CancelSubscriptionInput", map[string]any{"atPeriodEnd": true}, []string{"INVALID_STATE"}, 0)

	sub = step("cancelSubscription", "CancelSubscriptionInput", map[string]any{"atPeriodEnd": false}, nil, 1)
	require.Equal(t, "CANCELED", sub["status"])
	step("cancelSubscription", "CancelSubscriptionInput", map[string]any{"atPeriodEnd": false}, []string{"INVALID_STATE"}, 0)
	step("pauseSubscription", "PauseSubscriptionInput", map[string]any{}, []string{"INVALID_STATE"}, 0)
	step("changeSubscriptionPlan", "ChangeSubscriptionPlanInput", map[string]any{"planId": hotMonthly}, []string{"INVALID_STATE"}, 0)
	step("updateShippingAddress", "UpdateShippingAddressInput", map[string]any{"address": address("Bonn")}, []string{"INVALID_STATE"}, 0)
}

func TestAnIncompleteSubscriptionCannotBePausedOrChanged(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("carol")
	id, _ := s.subscribe(tok, "inc", hotMonthly)
	before := len(s.stripe.Requests())
	_, p := s.mutate(tok, "pauseSubscription", "PauseSubscriptionInput", map[string]any{"subscriptionId": id, "idempotencyKey": "p"}, "subscription { id }")
	require.Equal(t, []string{"INVALID_STATE"}, userErrorCodes(p))
	_, p = s.mutate(tok, "changeSubscriptionPlan", "ChangeSubscriptionPlanInput", map[string]any{"subscriptionId": id, "planId": hotQuarterly, "idempotencyKey": "c"}, "subscription { id }")
	require.Equal(t, []string{"INVALID_STATE"}, userErrorCodes(p))
	require.Equal(t, before, len(s.stripe.Requests()))
}

// mutationCases are every subscription mutation on subscription id, for matrices.
func mutationCases(id, key string) []struct {
	field, inputType string
	input            map[string]any
	stepUp           bool
} {
	return []struct {
		field, inputType string
		input            map[string]any
		stepUp           bool
	}{
		{"pauseSubscription", "PauseSubscriptionInput", map[string]any{"subscriptionId": id, "idempotencyKey": key}, false},
		{"resumeSubscription", "ResumeSubscriptionInput", map[string]any{"subscriptionId": id, "idempotencyKey": key}, false},
		{"changeSubscriptionPlan", "ChangeSubscriptionPlanInput", map[string]any{"subscriptionId": id, "planId": hotQuarterly, "idempotencyKey": key}, true},
		{"cancelSubscription", "CancelSubscriptionInput", map[string]any{"subscriptionId": id, "atPeriodEnd": false, "idempotencyKey": key}, true},
		{"updateShippingAddress", "UpdateShippingAddressInput", map[string]any{"subscriptionId": id, "address": address("Köln"), "idempotencyKey": key}, true},
	}
}

func TestSomeoneElsesSubscriptionLooksMissing(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	owner := s.token("owner")
	id := s.activeSubscription(owner, "mine")
	var before models.Subscription
	require.NoError(t, s.db.Take(&before, "id = ?", id).Error)

	for _, who := range []struct{ name, token string }{
		{"another customer", s.token("intruder")},
		{"support (changes go through audited admin operations)", s.token("agent", "support")},
	} {
		for _, tc := range mutationCases(id, "intrude") {
			t.Run(who.name+"/"+tc.field, func(t *testing.T) {
				n := len(s.stripe.Requests())
				resp, p := s.mutate(who.token, tc.field, tc.inputType, tc.input, "subscription { id }")
				require.Empty(t, resp.Errors)
				require.Equal(t, []string{"NOT_FOUND"}, userErrorCodes(p))
				require.Nil(t, p["subscription"])
				require.Equal(t, n, len(s.stripe.Requests()), "nothing sent to Stripe")
			})
		}
	}
	var after models.Subscription
	require.NoError(t, s.db.Take(&after, "id = ?", id).Error)
	require.Equal(t, before.Status, after.Status)
	require.Equal(t, before.ShippingAddress, after.ShippingAddress)
	require.Equal(t, before.UpdatedAt, after.UpdatedAt)

	q := `query($id: ID!) { subscription(id: $id) { id status } }`
	require.Nil(t, s.gql(s.token("intruder"), q, map[string]any{"id": id}).Data["subscription"])
	require.Nil(t, s.gql(s.token("intruder"), q, map[string]any{"id": "not-a-uuid"}).Data["subscription"])
	require.NotNil(t, s.gql(owner, q, map[string]any{"id": id}).Data["subscription"])
	staff := s.gql(s.token("agent", "support"), `query($id: ID!) { subscription(id: $id) { id providerSubscriptionId } }`, map[string]any{"id": id})
	require.Empty(t, staff.Errors)
	require.NotEmpty(t, staff.Data["subscription"].(map[string]any)["providerSubscriptionId"])
	own := s.gql(owner, `query($id: ID!) { subscription(id: $id) { id providerSubscriptionId } }`, map[string]any{"id": id})
	require.Equal(t, []string{"FORBIDDEN"}, own.codes())
}

func TestMutationAccessRules(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("dave")
	id := s.activeSubscription(tok, "acc")
	for _, tc := range mutationCases(id, "access") {
		t.Run(tc.field+"/anonymous", func(t *testing.T) {
			resp, _ := s.mutate("", tc.field, tc.inputType, tc.input, "subscription { id }")
			require.Equal(t, []string{"UNAUTHENTICATED"}, resp.codes())
		})
		t.Run(tc.field+"/stale login", func(t *testing.T) {
			n := len(s.stripe.Requests())
			resp, _ := s.mutate(s.staleToken("dave"), tc.field, tc.inputType, tc.input, "subscription { id }")
			if tc.stepUp {
				require.Equal(t, []string{"STEP_UP_REQUIRED"}, resp.codes())
				require.EqualValues(t, 300, resp.Errors[0].Extensions["maxAge"])
				require.Equal(t, n, len(s.stripe.Requests()))
			} else {
				require.Empty(t, resp.Errors)
			}
		})
	}
	resp, _ := s.mutate(s.staleToken("dave"), "createBillingPortalSession", "CreateBillingPortalSessionInput",
		map[string]any{"returnUrl": "https://shop.example/account"}, "url")
	require.Equal(t, []string{"STEP_UP_REQUIRED"}, resp.codes())
	resp, _ = s.mutate("", "startCheckout", "StartCheckoutInput", map[string]any{"planId": hotMonthly,
		"successUrl": "https://shop.example/ok", "cancelUrl": "https://shop.example/no", "idempotencyKey": "x"}, "checkoutUrl")
	require.Equal(t, []string{"UNAUTHENTICATED"}, resp.codes())
}

func TestIdempotencyOfEveryMutation(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("erin")
	for _, tc := range mutationCases("", "") {
		t.Run(tc.field, func(t *testing.T) {
			id := s.activeSubscription(tok, "idem-"+tc.field)
			if tc.field == "resumeSubscription" {
				_, p := s.mutate(tok, "pauseSubscription", "PauseSubscriptionInput", map[string]any{"subscriptionId": id, "idempotencyKey": "pre-" + id}, "subscription { id }")
				require.Empty(t, userErrorCodes(p))
			}
			tc.input["subscriptionId"] = id
			tc.input["idempotencyKey"] = "key-" + tc.field

			// Two concurrent calls with one key: one effect.
			n := len(s.stripe.Requests())
			var wg sync.WaitGroup
			results := make([]map[string]any, 2)
			for i := range results {
				wg.Go(func() {
					_, results[i] = s.mutate(tok, tc.field, tc.inputType, tc.input, "subscription { id status updatedAt }")
				})
			}
			wg.Wait()
			effects := len(s.stripe.Requests()) - n
			require.Empty(t, userErrorCodes(results[0]))
			require.Equal(t, results[0], results[1], "both callers get the same result")

			// A replay returns the first result with no second effect.
			_, replay := s.mutate(tok, tc.field, tc.inputType, tc.input, "subscription { id status updatedAt }")
			require.Equal(t, results[0], replay)
			require.Equal(t, effects, len(s.stripe.Requests())-n, "no request to Stripe on replay")
			if tc.field != "updateShippingAddress" {
				require.Equal(t, 1, effects, "one request to Stripe for two calls and a replay")
			}

			// The same key with another input is refused.
			other := map[string]any{}
			for k, v := range tc.input {
				other[k] = v
			}
			other["subscriptionId"] = s.activeSubscription(tok, "other-"+tc.field)
			s.requireKeyReused(t, tok, tc.field, tc.inputType, other, "subscription { id }")
		})
	}

	t.Run("createSubscription", func(t *testing.T) {
		in := map[string]any{"planId": hotMonthly, "shippingAddress": address("Berlin"), "idempotencyKey": "create-once"}
		var wg sync.WaitGroup
		payloads := make([]map[string]any, 3)
		for i := range payloads {
			wg.Go(func() {
				_, payloads[i] = s.mutate(tok, "createSubscription", "CreateSubscriptionInput", in, "subscription { id } clientSecret")
			})
		}
		wg.Wait()
		for _, p := range payloads {
			require.Equal(t, payloads[0], p)
		}
		var rows int64
		require.NoError(t, s.db.Model(&models.Subscription{}).Where("id = ?", payloads[0]["subscription"].(map[string]any)["id"]).Count(&rows).Error)
		require.EqualValues(t, 1, rows)
		in["planId"] = mildMonthly
		s.requireKeyReused(t, tok, "createSubscription", "CreateSubscriptionInput", in, "subscription { id }")
	})
}

func TestProviderFailures(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("frank")
	s.gql(tok, `{ me { id } }`, nil)
	in := map[string]any{"planId": hotMonthly, "shippingAddress": address("Berlin"), "idempotencyKey": "down-1"}
	countRows := func() (subs, keys int64) {
		require.NoError(t, s.db.Model(&models.Subscription{}).Count(&subs).Error)
		require.NoError(t, s.db.Table("idempotency_keys").Where("state <> 'RELEASED'").Count(&keys).Error)
		return subs, keys
	}

	t.Run("down after retries: PROVIDER_UNAVAILABLE, nothing stored, same key every attempt", func(t *testing.T) {
		before := len(s.stripe.Requests())
		s.stripe.FailNext(stripefake.Fault{Status: 503}, stripefake.Fault{Status: 500}, stripefake.Fault{Delay: time.Second},
			stripefake.Fault{Status: 502}, stripefake.Fault{Status: 503}, stripefake.Fault{Status: 503}, stripefake.Fault{Status: 503})
		resp, _ := s.mutate(tok, "createSubscription", "CreateSubscriptionInput", in, "subscription { id }")
		require.Equal(t, []string{"PROVIDER_UNAVAILABLE"}, resp.codes(), resp.Raw)
		attempts := s.stripe.Requests()[before:]
		require.Greater(t, len(attempts), 1, "retried")
		for _, a := range attempts {
			require.Equal(t, attempts[0].IdempotencyKey, a.IdempotencyKey)
		}
		subs, keys := countRows()
		require.Zero(t, subs)
		require.Zero(t, keys, "the client's key is released for a retry (its row, RELEASED, remembers its first use)")
		var c models.Customer
		require.NoError(t, s.db.Take(&c, "subject = ?", "frank").Error)
		require.Nil(t, c.StripeCustomerID)
		s.stripe.ClearFaults()
	})

	t.Run("a retry with the same key succeeds once the provider is back", func(t *testing.T) {
		s.stripe.FailNext(stripefake.Fault{Status: 500}) // one transient failure: retried inside the call
		resp, p := s.mutate(tok, "createSubscription", "CreateSubscriptionInput", in, "subscription { id }")
		require.Empty(t, resp.Errors, resp.Raw)
		require.Empty(t, userErrorCodes(p))
		subs, _ := countRows()
		require.EqualValues(t, 1, subs)
	})

	t.Run("a declined card is a user error and is not retried", func(t *testing.T) {
		before := len(s.stripe.Requests())
		s.stripe.FailNext(stripefake.Fault{Status: 402, Code: "card_declined"})
		_, p := s.mutate(tok, "createSubscription", "CreateSubscriptionInput", map[string]any{
			"planId": mildMonthly, "shippingAddress": address("Berlin"), "idempotencyKey": "declined"}, "subscription { id }")
		require.Equal(t, []string{"PAYMENT_DECLINED"}, userErrorCodes(p))
		require.Equal(t, 1, len(s.stripe.Requests())-before)
	})
}

func TestACrashBetweenStripeAndOurWriteIsFinishedByTheRetry(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("gina")
	s.subscribe(tok, "warm-up", mildMonthly) // creates the Stripe customer
	var c models.Customer
	require.NoError(t, s.db.Take(&c, "subject = ?", "gina").Error)
	var plan models.Plan
	require.NoError(t, s.db.Take(&plan, "id = ?", hotMonthly).Error)

	// The first attempt reached Stripe, then the process died before writing.
	scope := idempotency.ScopeFor(s.issuer.IssuerURL(), "gina", "createSubscription", "crash-key")
	gw, err := gateway.NewStripe(gateway.Config{SecretKey: "sk_test_123", APIBase: s.stripe.URL})
	require.NoError(t, err)
	first, _, err := gw.CreateSubscription(context.Background(), scope.ProviderKey("create"), gateway.SubscriptionInput{
		CustomerID: *c.StripeCustomerID, PriceID: *plan.StripePriceID,
		Metadata: map[string]string{"scoville_subscription_id": scope.DerivedID(), "scoville_customer_id": c.ID, "scoville_plan_id": plan.ID},
	})
	require.NoError(t, err)
	hash := s.inputHash(map[string]any{"planId": hotMonthly, "shippingAddress": address("Berlin"), "idempotencyKey": "crash-key"})
	require.NoError(t, s.db.Exec(`INSERT INTO idempotency_keys (scope, operation, key, request_hash, state, locked_until, expires_at)
		VALUES (?, 'createSubscription', 'crash-key', ?, 'IN_PROGRESS', now() - interval '1 second', now() + interval '1 day')`,
		scope.Principal, hash).Error)

	_, p := s.mutate(tok, "createSubscription", "CreateSubscriptionInput", map[string]any{
		"planId": hotMonthly, "shippingAddress": address("Berlin"), "idempotencyKey": "crash-key"}, "subscription { id providerSubscriptionId }")
	require.Empty(t, userErrorCodes(p))
	require.Equal(t, scope.DerivedID(), p["subscription"].(map[string]any)["id"])
	var stored models.Subscription
	require.NoError(t, s.db.Take(&stored, "id = ?", scope.DerivedID()).Error)
	require.Equal(t, first.ID, *stored.StripeSubscriptionID, "Stripe replayed the first attempt: one subscription there")
}

// inputHash mirrors how a GraphQL input reaches the service, so a test can plant a key.
func (s *shop) inputHash(in map[string]any) []byte {
	s.t.Helper()
	addr := in["shippingAddress"].(map[string]any)
	mi := models.CreateSubscriptionInput{PlanID: in["planId"].(string), IdempotencyKey: in["idempotencyKey"].(string),
		ShippingAddress: &models.Address{Name: addr["name"].(string), Line1: addr["line1"].(string), City: addr["city"].(string),
			PostalCode: addr["postalCode"].(string), Country: addr["country"].(string)}}
	h, err := idempotency.HashInput(mi)
	require.NoError(s.t, err)
	return h
}

func TestStartCheckout(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("hank")
	promo := s.stripe.AddPromotionCode("HOT10")
	in := func(key, success, cancel string) map[string]any {
		return map[string]any{"planId": hotMonthly, "successUrl": success, "cancelUrl": cancel, "idempotencyKey": key}
	}
	resp, p := s.mutate(tok, "startCheckout", "StartCheckoutInput", in("co-1", "https://shop.example/thanks", "https://shop.example:443/cart"), "checkoutUrl sessionId")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Empty(t, userErrorCodes(p))
	require.Contains(t, p["checkoutUrl"], "https://checkout.stripe.com/")
	var sess stripefake.Request
	for _, r := range s.stripe.Requests() {
		if r.Path == "/v1/checkout/sessions" {
			sess = r
		}
	}
	var c models.Customer
	require.NoError(t, s.db.Take(&c, "subject = ?", "hank").Error)
	require.Equal(t, "subscription", sess.Form["mode"])
	require.Equal(t, c.ID, sess.Form["client_reference_id"])
	require.Equal(t, *c.StripeCustomerID, sess.Form["customer"])
	require.Equal(t, "US", sess.Form["shipping_address_collection[allowed_countries][0]"], "Checkout collects where the box goes")

	withPromo := in("co-2", "https://shop.example/thanks", "https://shop.example/cart")
	withPromo["promotionCode"] = "HOT10"
	_, p = s.mutate(tok, "startCheckout", "StartCheckoutInput", withPromo, "checkoutUrl")
	require.Empty(t, userErrorCodes(p))
	found := false
	for _, r := range s.stripe.Requests() {
		for _, v := range r.Form {
			found = found || (r.Path == "/v1/checkout/sessions" && v == promo)
		}
	}
	require.True(t, found, "the promotion code's id is sent to Stripe")
	withPromo["promotionCode"], withPromo["idempotencyKey"] = "NOPE", "co-3"
	_, p = s.mutate(tok, "startCheckout", "StartCheckoutInput", withPromo, "checkoutUrl")
	require.Equal(t, []string{"INVALID"}, userErrorCodes(p))

	for _, bad := range []string{
		"https://evil.example/thanks", "http://shop.example/thanks", "https://shop.example.evil.com/x",
		"https://shop.example@evil.com/x", "https://shop.example:8443/x", "javascript:alert(1)", "//evil.com/x", "/relative", "",
	} {
		t.Run(bad, func(t *testing.T) {
			n := len(s.stripe.Requests())
			_, p := s.mutate(tok, "startCheckout", "StartCheckoutInput", in("co-bad", bad, "https://shop.example/cart"), "checkoutUrl")
			require.Equal(t, []string{"INVALID"}, userErrorCodes(p))
			require.Equal(t, []any{"input", "successUrl"}, p["userErrors"].([]any)[0].(map[string]any)["field"])
			require.Nil(t, p["checkoutUrl"])
			require.Equal(t, n, len(s.stripe.Requests()))
		})
	}
}

func TestCreateSubscriptionInputValidation(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("ivy")
	long := make([]byte, 201)
	for i := range long {
		long[i] = 'a'
	}
	cases := map[string]func(map[string]any){
		"unknown country":   func(in map[string]any) { in["shippingAddress"].(map[string]any)["country"] = "ZZ" },
		"grouping not land": func(in map[string]any) { in["shippingAddress"].(map[string]any)["country"] = "EU" },
		"empty name":        func(in map[string]any) { in["shippingAddress"].(map[string]any)["name"] = "  " },
		"long line1":        func(in map[string]any) { in["shippingAddress"].(map[string]any)["line1"] = string(long) },
		"control chars":     func(in map[string]any) { in["shippingAddress"].(map[string]any)["city"] = "Ber\x00lin" },
		"unknown plan":      func(in map[string]any) { in["planId"] = "4d0c6f1e-0000-4000-8000-00000000ffff" },
		"not a plan id":     func(in map[string]any) { in["planId"] = "'; DROP TABLE plans; --" },
		"empty key":         func(in map[string]any) { in["idempotencyKey"] = "" },
		"NUL in key":        func(in map[string]any) { in["idempotencyKey"] = "v-nul\x00" },
	}
	require.NoError(t, s.db.Model(&models.Plan{}).Where("id = ?", hotQuarterly).Update("active", false).Error)
	cases["inactive plan"] = func(in map[string]any) { in["planId"] = hotQuarterly }
	notFound := map[string]bool{"unknown plan": true, "not a plan id": true}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			in := map[string]any{"planId": hotMonthly, "shippingAddress": address("Berlin"), "idempotencyKey": "v-" + name}
			mutate(in)
			n := len(s.stripe.Requests())
			resp, p := s.mutate(tok, "createSubscription", "CreateSubscriptionInput", in, "subscription { id }")
			require.Empty(t, resp.Errors, resp.Raw)
			want := "INVALID"
			if notFound[name] {
				want = "NOT_FOUND" // a plan that does not exist, as API.md says of objects
			}
			require.Equal(t, []string{want}, userErrorCodes(p))
			require.Zero(t, len(s.stripe.Requests())-n-s.stripe.Count(http.MethodPost, "/v1/customers"), "no subscription request")
		})
	}
	var subs int64
	require.NoError(t, s.db.Model(&models.Subscription{}).Count(&subs).Error)
	require.Zero(t, subs)
}

func TestCreatePlan(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	admin := s.token("root", "admin")
	in := func(key string, amount int, currency string) map[string]any {
		return map[string]any{"name": "Reaper Box", "description": "Carolina reaper, three ways.", "interval": "QUARTER",
			"amount": amount, "currency": currency, "trialDays": 14, "idempotencyKey": key}
	}
	sel := "plan { id name interval price { amount currency } trialDays active }"
	resp, p := s.mutate(admin, "createPlan", "CreatePlanInput", in("plan-1", 5900, "usd"), sel)
	require.Empty(t, resp.Errors, resp.Raw)
	require.Empty(t, userErrorCodes(p))
	plan := p["plan"].(map[string]any)
	require.Equal(t, map[string]any{"amount": float64(5900), "currency": "USD"}, plan["price"])
	require.EqualValues(t, 14, plan["trialDays"])
	var create stripefake.Request
	for _, r := range s.stripe.Requests() {
		if r.Path == "/v1/prices" {
			create = r
		}
	}
	require.Equal(t, "month", create.Form["recurring[interval]"])
	require.Equal(t, "3", create.Form["recurring[interval_count]"])
	require.Equal(t, "usd", create.Form["currency"])
	require.Equal(t, "5900", create.Form["unit_amount"])

	plans := s.gql("", `{ plans { id } }`, nil)
	require.Contains(t, fmt.Sprint(plans.Data["plans"]), plan["id"])

	n := len(s.stripe.Requests())
	_, replay := s.mutate(admin, "createPlan", "CreatePlanInput", in("plan-1", 5900, "usd"), sel)
	require.Equal(t, p, replay)
	require.Equal(t, n, len(s.stripe.Requests()))
	var entries []models.AuditEntry
	require.NoError(t, s.db.Where("action = ? AND target_id = ?", "createPlan", plan["id"]).Find(&entries).Error)
	require.Len(t, entries, 1, "a manual action is audited once, a replay adds nothing")
	require.Equal(t, "plan", entries[0].TargetType)
	require.Equal(t, "root", entries[0].ActorSubject)
	require.Contains(t, *entries[0].After, `"amount": 5900`) // jsonb's rendering
	s.requireKeyReused(t, admin, "createPlan", "CreatePlanInput", in("plan-1", 6900, "usd"), sel)

	for name, bad := range map[string]map[string]any{
		"unknown currency": in("b1", 5900, "XYZ"),
		"below minimum":    in("b2", 49, "USD"),
		"above maximum":    in("b3", 100_000_000, "USD"),
		"yen minimum":      in("b4", 49, "JPY"),
		"zero":             in("b5", 0, "USD"),
	} {
		t.Run(name, func(t *testing.T) {
			_, p := s.mutate(admin, "createPlan", "CreatePlanInput", bad, sel)
			require.Equal(t, []string{"INVALID"}, userErrorCodes(p))
		})
	}
	t.Run("concurrent calls with one key create one plan", func(t *testing.T) {
		before := s.stripe.Count(http.MethodPost, "/v1/prices")
		var wg sync.WaitGroup
		ids := make([]any, 3)
		for i := range ids {
			wg.Go(func() {
				_, p := s.mutate(admin, "createPlan", "CreatePlanInput", in("plan-race", 4900, "EUR"), "plan { id }")
				if pl, ok := p["plan"].(map[string]any); ok {
					ids[i] = pl["id"]
				}
			})
		}
		wg.Wait()
		require.NotNil(t, ids[0])
		require.Equal(t, []any{ids[0], ids[0], ids[0]}, ids)
		require.Equal(t, before+1, s.stripe.Count(http.MethodPost, "/v1/prices"))
	})
	for who, tok := range map[string]string{"customer": s.token("c1"), "support": s.token("s1", "support")} {
		resp, _ := s.mutate(tok, "createPlan", "CreatePlanInput", in("x-"+who, 5900, "USD"), sel)
		require.Equal(t, []string{"FORBIDDEN"}, resp.codes(), who)
	}
}

func TestBillingPortal(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("jay")
	portal := func(url string) map[string]any {
		_, p := s.mutate(tok, "createBillingPortalSession", "CreateBillingPortalSessionInput", map[string]any{"returnUrl": url}, "url")
		return p
	}
	require.Equal(t, []string{"INVALID_STATE"}, userErrorCodes(portal("https://shop.example/account")), "no billing account yet")
	s.subscribe(tok, "portal-sub", hotMonthly)
	p := portal("https://shop.example/account")
	require.Empty(t, userErrorCodes(p))
	require.Contains(t, p["url"], "https://billing.stripe.com/")
	var c models.Customer
	require.NoError(t, s.db.Take(&c, "subject = ?", "jay").Error)
	reqs := s.stripe.Requests()
	require.Equal(t, *c.StripeCustomerID, reqs[len(reqs)-1].Form["customer"], "only ever the caller's own Stripe customer")
	require.Equal(t, []string{"INVALID"}, userErrorCodes(portal("https://evil.example/account")))
}

func TestPaymentsArePagedNewestFirst(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("kim")
	id := s.activeSubscription(tok, "pay")
	var sub models.Subscription
	require.NoError(t, s.db.Take(&sub, "id = ?", id).Error)
	base := time.Now().Add(-time.Hour)
	for i := range 5 {
		require.NoError(t, s.db.Create(&models.Payment{ID: fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i), SubscriptionID: id,
			CustomerID: sub.CustomerID, AmountMinor: 3500, Currency: "USD", Status: models.PaymentSucceeded,
			StripeInvoiceID: fmt.Sprintf("in_%d", i), CreatedAt: base.Add(time.Duration(i) * time.Minute)}).Error)
	}
	q := `query($id: ID!, $first: Int, $after: String) { subscription(id: $id) { payments(first: $first, after: $after) {
		edges { cursor node { id amount { amount currency } status } } pageInfo { hasNextPage endCursor } } } }`
	page := func(first int, after any) (ids []string, next bool, end any) {
		nodes, next, end := s.gqlPage(t, tok, q, map[string]any{"id": id, "first": first, "after": after}, "subscription", "payments")
		for _, node := range nodes {
			ids = append(ids, node["id"].(string))
		}
		return ids, next, end
	}
	ids, next, end := page(2, nil)
	require.Equal(t, []string{"00000000-0000-4000-8000-000000000004", "00000000-0000-4000-8000-000000000003"}, ids)
	require.True(t, next)
	ids, _, _ = page(2, end)
	require.Equal(t, []string{"00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000001"}, ids)
	// Above 100 a page is capped, not refused, as long as the query's cost (costed by
	// the first asked for) stays under the complexity limit; first: 1e9 is refused by
	// that limit (limits_test.go).
	ids, next, _ = page(1_000, nil)
	require.Len(t, ids, 5, "first is capped, not refused")
	require.False(t, next)
	resp := s.gql(tok, q, map[string]any{"id": id, "first": 2, "after": "garbage"})
	require.Equal(t, []string{"INVALID"}, resp.codes())
}

func TestTrialPlansStartTrialing(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	require.NoError(t, s.db.Model(&models.Plan{}).Where("id = ?", hotMonthly).Update("trial_days", 14).Error)
	_, payload := s.subscribe(s.token("lena"), "trial", hotMonthly)
	require.Equal(t, "TRIALING", payload["subscription"].(map[string]any)["status"])
	var create stripefake.Request
	for _, r := range s.stripe.Requests() {
		if r.Path == "/v1/subscriptions" {
			create = r
		}
	}
	require.Equal(t, "14", create.Form["trial_period_days"])
}

// A plan change within the billing interval is prorated: no new period starts,
// and the difference is billed with the renewal. A change to another interval
// makes Stripe start and bill the new period at once: it is asked to prorate
// nothing, so no credit gives back the current period, whose box has shipped.
func TestPlanChangeProratesOnlyWithinTheInterval(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tests := []struct {
		name, to, want string
	}{
		{"monthly to quarterly", hotQuarterly, "none"},
		{"monthly to another monthly box", mildMonthly, "create_prorations"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := s.token(fmt.Sprintf("mo-%d", i))
			id := s.activeSubscription(tok, fmt.Sprintf("pro-%d", i))
			_, p := s.mutate(tok, "changeSubscriptionPlan", "ChangeSubscriptionPlanInput",
				map[string]any{"subscriptionId": id, "planId": tt.to, "idempotencyKey": fmt.Sprintf("pro-change-%d", i)}, "subscription { id }")
			require.Empty(t, userErrorCodes(p))
			reqs := s.stripe.Requests()
			last := reqs[len(reqs)-1]
			require.Equal(t, http.MethodPost, last.Method)
			require.Equal(t, "/v1/subscriptions/"+s.stripeSub(id), last.Path)
			require.Equal(t, tt.want, last.Form["proration_behavior"])
			var plan models.Plan
			require.NoError(t, s.db.Take(&plan, "id = ?", tt.to).Error)
			require.Equal(t, *plan.StripePriceID, last.Form["items[0][price]"])
		})
	}
}

func TestTheStripeCustomerIsCreatedOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("nina")
	s.gql(tok, `{ me { id } }`, nil)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { s.subscribe(tok, fmt.Sprintf("conc-%d", i), hotMonthly) })
	}
	wg.Wait()
	var c models.Customer
	require.NoError(t, s.db.Take(&c, "subject = ?", "nina").Error)
	customers := map[string]bool{}
	for _, r := range s.stripe.Requests() {
		if r.Path == "/v1/subscriptions" {
			customers[r.Form["customer"]] = true
		}
	}
	require.Equal(t, map[string]bool{*c.StripeCustomerID: true}, customers, "every subscription uses the one Stripe customer")
}

func TestStartCheckoutReplaysTheSameSession(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("olga")
	in := map[string]any{"planId": hotMonthly, "successUrl": "https://shop.example/ok", "cancelUrl": "https://shop.example/no", "idempotencyKey": "co"}
	_, first := s.mutate(tok, "startCheckout", "StartCheckoutInput", in, "checkoutUrl sessionId")
	n := s.stripe.Count(http.MethodPost, "/v1/checkout/sessions")
	_, again := s.mutate(tok, "startCheckout", "StartCheckoutInput", in, "checkoutUrl sessionId")
	require.Equal(t, first, again)
	require.Equal(t, n, s.stripe.Count(http.MethodPost, "/v1/checkout/sessions"))
	in["planId"] = mildMonthly
	s.requireKeyReused(t, tok, "startCheckout", "StartCheckoutInput", in, "checkoutUrl sessionId")
}

// TestPlansOfAListAreLoadedInOneQuery: where the subscriptions come without their
// plans (the staff's customer list), every subscription of every listed customer gets
// its own plan, and all of them cost one plan query.
func TestPlansOfAListAreLoadedInOneQuery(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("pia")
	want := map[string]string{} // subscription id -> its plan id
	for i, plan := range []string{hotMonthly, hotQuarterly, mildMonthly, hotMonthly, mildMonthly} {
		id, _ := s.subscribe(tok, fmt.Sprintf("n1-%d", i), plan)
		want[id] = plan
	}
	other := s.token("quinn")
	for i, plan := range []string{mildMonthly, hotQuarterly} {
		id, _ := s.subscribe(other, fmt.Sprintf("n1-q%d", i), plan)
		want[id] = plan
	}
	var planQueries atomic.Int64
	require.NoError(t, s.db.Callback().Query().After("gorm:query").Register("count_plan_queries", func(db *gorm.DB) {
		if strings.Contains(db.Statement.SQL.String(), `FROM "plans"`) {
			planQueries.Add(1)
		}
	}))
	// The staff's list goes through the plan loader: one query for the five.
	resp := s.gql(s.token("pia-support", "support"),
		`query($e: String) { adminCustomers(email: $e) { edges { node { subscriptions { id plan { id name interval } } } } } }`,
		map[string]any{"e": "pia@example.com"})
	require.Empty(t, resp.Errors, resp.Raw)
	edges := resp.Data["adminCustomers"].(map[string]any)["edges"].([]any)
	require.Len(t, edges, 1)
	require.Len(t, edges[0].(map[string]any)["node"].(map[string]any)["subscriptions"], 5)
	require.EqualValues(t, 1, planQueries.Load(), "one batched plan query for five subscriptions")

	// Two customers' lists in one response: each subscription its own plan, still one query.
	resp = s.gql(s.token("pia-support", "support"),
		`{ adminCustomers(first: 50) { edges { node { subscriptions { id plan { id name interval price { amount currency } } } } } } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	got := map[string]string{}
	for _, edge := range resp.Data["adminCustomers"].(map[string]any)["edges"].([]any) {
		for _, item := range edge.(map[string]any)["node"].(map[string]any)["subscriptions"].([]any) {
			sub := item.(map[string]any)
			plan := sub["plan"].(map[string]any)
			require.NotEmpty(t, plan["name"], resp.Raw)
			require.NotEmpty(t, plan["price"].(map[string]any)["currency"], resp.Raw)
			got[sub["id"].(string)] = plan["id"].(string)
		}
	}
	require.Equal(t, want, got, "every subscription of both customers carries its own plan")
	require.EqualValues(t, 2, planQueries.Load(), "one batched plan query for both customers' seven subscriptions")

	// me reads the plans in its own statement (TestMeIsOneStatementOfTheCallersOwnRows): no plan query at all.
	resp = s.gql(tok, `{ me { subscriptions { id plan { id name interval } } } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	require.Len(t, resp.Data["me"].(map[string]any)["subscriptions"], 5)
	require.EqualValues(t, 2, planQueries.Load(), "me asked for no plan on its own")
}
