package e2e

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// subscriptionEvent is Stripe's customer.subscription.* event about our
// subscription id in status, created at created, signed and ready to deliver.
func (s *shop) subscriptionEvent(eventID, eventType, id, status string, created time.Time) []byte {
	s.t.Helper()
	var row struct {
		StripeSubscriptionID string
		StripeCustomerID     string
		StripePriceID        string
		Amount               int64
		CancelAtPeriodEnd    bool
	}
	require.NoError(s.t, s.db.Raw(`SELECT s.stripe_subscription_id, c.stripe_customer_id, p.stripe_price_id, p.amount, s.cancel_at_period_end
		FROM subscriptions s JOIN customers c ON c.id = s.customer_id JOIN plans p ON p.id = s.plan_id WHERE s.id = ?`, id).Scan(&row).Error)
	obj := webhooktest.Subscription{
		ID: row.StripeSubscriptionID, Customer: row.StripeCustomerID, Price: row.StripePriceID, Status: status,
		Amount: row.Amount, Currency: "usd", PeriodStart: created, PeriodEnd: created.AddDate(0, 1, 0),
		CancelAtPeriodEnd: row.CancelAtPeriodEnd, Metadata: map[string]string{"scoville_subscription_id": id},
	}.Object()
	return webhooktest.Event(eventID, eventType, created, obj, nil)
}

// betweenGateway runs between, when set, after Stripe answers a customer's change
// and before the service stores the answer.
type betweenGateway struct {
	subscriptions.Gateway
	between atomic.Pointer[func()]
}

func (g *betweenGateway) after(gs gateway.Subscription, err error) (gateway.Subscription, error) {
	if f := g.between.Load(); f != nil && err == nil {
		(*f)()
	}
	return gs, err
}

func (g *betweenGateway) PauseSubscription(ctx context.Context, key, subID string, resumesAt *time.Time) (gateway.Subscription, error) {
	return g.after(g.Gateway.PauseSubscription(ctx, key, subID, resumesAt))
}

func (g *betweenGateway) CancelSubscription(ctx context.Context, key, subID string, atPeriodEnd bool) (gateway.Subscription, error) {
	return g.after(g.Gateway.CancelSubscription(ctx, key, subID, atPeriodEnd))
}

func TestADeletionDeliveredWhileStripeAnswersAPauseStands(t *testing.T) {
	t.Parallel()
	gw := &betweenGateway{}
	s := opsShop(t, true, app.WithSubscriptionGatewayWrapper(func(inner subscriptions.Gateway) subscriptions.Gateway {
		gw.Gateway = inner
		return gw
	}))
	tok := s.token("interleaved")
	id := s.activeSubscription(tok, "interleaved-create")

	// Stripe has answered the pause; before it is stored, the customer's bank
	// cancels and Stripe's signed customer.subscription.deleted is processed.
	// It runs on the server's goroutine: it records failures and never stops the test.
	deletion := func() {
		body := s.subscriptionEvent("evt_deleted_meanwhile", "customer.subscription.deleted", id, "canceled", time.Now())
		status, _ := s.postWebhook(body, webhooktest.Sign(body, testWebhookSecret, time.Now()))
		assert.Equal(t, 200, status)
		assert.Eventually(t, func() bool {
			var st string
			_ = s.db.Raw(`SELECT status FROM subscriptions WHERE id = ?`, id).Scan(&st).Error
			return st == "CANCELED"
		}, 20*time.Second, 20*time.Millisecond, "the deletion is processed")
	}
	gw.between.Store(&deletion)
	resp, p := s.mutate(tok, "pauseSubscription", "PauseSubscriptionInput",
		map[string]any{"subscriptionId": id, "idempotencyKey": "pause-interleaved"}, "subscription { id status }")
	gw.between.Store(nil)
	require.Empty(t, resp.Errors, resp.Raw)
	require.Empty(t, userErrorCodes(p), resp.Raw)
	require.Equal(t, "CANCELED", p["subscription"].(map[string]any)["status"], "the answer shows the subscription as it is")
	require.Equal(t, "CANCELED", s.status(id), "the deletion stands: the pause's older answer is not stored over it")

	var stamp struct {
		ProviderUpdatedAt time.Time
		ProviderEventSeq  int64
	}
	require.NoError(t, s.db.Raw(`SELECT provider_updated_at, provider_event_seq FROM subscriptions WHERE id = ?`, id).Scan(&stamp).Error)
	require.NotZero(t, stamp.ProviderEventSeq, "the deletion's place in the order stands too, so older reports stay older")
}

func TestAReplayedStripeAnswerIsReplacedByAFreshRead(t *testing.T) {
	t.Parallel()
	s := opsShop(t, true)
	tok := s.token("replayed")
	id := s.activeSubscription(tok, "replayed-create")
	stripeSub := s.stripeSub(id)

	// A first attempt paused at Stripe, and its answer was lost (Stripe down for us
	// after it acted, or a crash): the key is free for the client's retry.
	scope := idempotency.ScopeFor(s.issuer.IssuerURL(), "replayed", subscriptions.OpPause, "pause-lost")
	direct, err := gateway.NewStripe(gateway.Config{SecretKey: "sk_test_123", APIBase: s.stripe.URL})
	require.NoError(t, err)
	_, err = direct.PauseSubscription(context.Background(), scope.ProviderKey("call"), stripeSub, nil)
	require.NoError(t, err)
	// Then the subscription ended at Stripe; its event has not reached us yet.
	deletedAt := time.Now().Add(-2 * time.Second)
	s.stripe.SetSubscriptionStatus(stripeSub, "canceled")

	// The retry gets Stripe's replay of the first answer (paused, active), which
	// says nothing of now: what Stripe says now is read and stored instead.
	resp, p := s.mutate(tok, "pauseSubscription", "PauseSubscriptionInput",
		map[string]any{"subscriptionId": id, "idempotencyKey": "pause-lost"}, "subscription { id status }")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Empty(t, userErrorCodes(p), resp.Raw)
	require.Equal(t, "CANCELED", s.status(id))

	// The deletion's event, older than that read, changes nothing and loses nothing.
	require.Equal(t, 200, s.deliver(s.subscriptionEvent("evt_deleted_before_retry", "customer.subscription.deleted", id, "canceled", deletedAt)))
	require.Equal(t, "PROCESSED", s.awaitEvent("evt_deleted_before_retry"))
	require.Equal(t, "CANCELED", s.status(id))
}

func TestAnAnsweredKeyReplaysWhateverTheClockOrTheStateSays(t *testing.T) {
	t.Parallel()
	var ahead atomic.Int64
	s := opsShop(t, true, app.WithClock(func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }))
	tok := s.token("replayer")
	sel := "subscription { id status pausedUntil cancelAtPeriodEnd }"

	t.Run("pause: resumeAt has come too close since", func(t *testing.T) {
		id := s.activeSubscription(tok, "clock-create")
		resumeAt := time.Now().Add(61 * time.Minute).UTC().Truncate(time.Second).Format(time.RFC3339)
		in := map[string]any{"subscriptionId": id, "resumeAt": resumeAt, "idempotencyKey": "pause-clock"}
		resp, first := s.mutate(tok, "pauseSubscription", "PauseSubscriptionInput", in, sel)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Empty(t, userErrorCodes(first), resp.Raw)
		require.Equal(t, "PAUSED", first["subscription"].(map[string]any)["status"])

		ahead.Store(int64(2 * time.Hour)) // resumeAt is now in the past
		n := len(s.stripe.Requests())
		resp, again := s.mutate(tok, "pauseSubscription", "PauseSubscriptionInput", in, sel)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, first, again, "the faithful retry gets the first result, not INVALID")
		require.Equal(t, n, len(s.stripe.Requests()), "and nothing is sent to Stripe")

		// A new request with that resumeAt is judged by the clock now, and its
		// refusal is not stored: the key serves the corrected request.
		other := s.activeSubscription(tok, "clock-create-2")
		fresh := map[string]any{"subscriptionId": other, "resumeAt": resumeAt, "idempotencyKey": "pause-clock-2"}
		n = len(s.stripe.Requests())
		_, refused := s.mutate(tok, "pauseSubscription", "PauseSubscriptionInput", fresh, sel)
		require.Equal(t, []string{"INVALID"}, userErrorCodes(refused))
		require.Equal(t, n, len(s.stripe.Requests()))
		fresh["resumeAt"] = time.Now().Add(2*time.Hour + 2*time.Hour).UTC().Format(time.RFC3339)
		_, corrected := s.mutate(tok, "pauseSubscription", "PauseSubscriptionInput", fresh, sel)
		require.Empty(t, userErrorCodes(corrected))
		ahead.Store(0)
	})

	t.Run("cancel: the subscription has ended since", func(t *testing.T) {
		id := s.activeSubscription(tok, "state-create")
		in := map[string]any{"subscriptionId": id, "atPeriodEnd": true, "idempotencyKey": "cancel-state"}
		resp, first := s.mutate(tok, "cancelSubscription", "CancelSubscriptionInput", in, sel)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Empty(t, userErrorCodes(first), resp.Raw)
		require.Equal(t, true, first["subscription"].(map[string]any)["cancelAtPeriodEnd"])

		require.Equal(t, 200, s.deliver(s.subscriptionEvent("evt_ended_after_cancel", "customer.subscription.deleted", id, "canceled", time.Now().Add(time.Second))))
		require.Equal(t, "PROCESSED", s.awaitEvent("evt_ended_after_cancel"))
		require.Equal(t, "CANCELED", s.status(id))

		n := len(s.stripe.Requests())
		resp, again := s.mutate(tok, "cancelSubscription", "CancelSubscriptionInput", in, sel)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Empty(t, userErrorCodes(again), "the faithful retry gets the first result, not INVALID_STATE")
		require.Equal(t, id, again["subscription"].(map[string]any)["id"])
		require.Equal(t, "CANCELED", again["subscription"].(map[string]any)["status"], "the subscription as it is now")
		require.Equal(t, n, len(s.stripe.Requests()))

		in["idempotencyKey"] = "cancel-state-2"
		_, refused := s.mutate(tok, "cancelSubscription", "CancelSubscriptionInput", in, sel)
		require.Equal(t, []string{"INVALID_STATE"}, userErrorCodes(refused), "a new request is judged by the state now")
	})
}

func TestAPlanThatDoesNotExistIsNotFound(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	tok := s.token("planner")
	id := s.activeSubscription(tok, "planner-create")
	const infernoMonthly = "4d0c6f1e-0000-4000-8000-000000000301"
	require.NoError(t, s.db.Exec(`UPDATE plans SET active = false WHERE id = ?`, mildMonthly).Error)
	require.NoError(t, s.db.Exec(`UPDATE products SET active = false WHERE id = (SELECT product_id FROM plans WHERE id = ?)`, infernoMonthly).Error)

	mutations := []struct {
		field, inputType, selection string
		input                       func(plan, key string) map[string]any
	}{
		{"startCheckout", "StartCheckoutInput", "checkoutUrl", func(plan, key string) map[string]any {
			return map[string]any{"planId": plan, "successUrl": "https://shop.example/ok", "cancelUrl": "https://shop.example/no", "idempotencyKey": key}
		}},
		{"createSubscription", "CreateSubscriptionInput", "subscription { id }", func(plan, key string) map[string]any {
			return map[string]any{"planId": plan, "shippingAddress": address("Berlin"), "idempotencyKey": key}
		}},
		{"changeSubscriptionPlan", "ChangeSubscriptionPlanInput", "subscription { id }", func(plan, key string) map[string]any {
			return map[string]any{"subscriptionId": id, "planId": plan, "idempotencyKey": key}
		}},
	}
	plans := []struct{ name, id, code string }{
		{"unknown", "4d0c6f1e-0000-4000-8000-00000000ffff", "NOT_FOUND"},
		{"not an id", "hot-monthly", "NOT_FOUND"},
		{"a look-alike of a real id", hotQuarterly + " ", "NOT_FOUND"},
		{"retired", mildMonthly, "INVALID"},
		{"of a retired product", infernoMonthly, "INVALID"},
	}
	for _, m := range mutations {
		for _, plan := range plans {
			t.Run(m.field+"/"+plan.name, func(t *testing.T) {
				n := len(s.stripe.Requests())
				resp, p := s.mutate(tok, m.field, m.inputType, m.input(plan.id, m.field+"-"+plan.name), m.selection)
				require.Empty(t, resp.Errors, resp.Raw)
				require.Equal(t, []string{plan.code}, userErrorCodes(p), resp.Raw)
				require.Equal(t, []any{"input", "planId"}, p["userErrors"].([]any)[0].(map[string]any)["field"])
				require.Equal(t, n, len(s.stripe.Requests()), "nothing is sent to Stripe")
			})
		}
	}
}
