package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// ageKeys moves every stored idempotency key's first use back by d, as if that much
// time had passed, then runs the purge job's work when purge is set.
func (s *shop) ageKeys(t *testing.T, d time.Duration, purge bool) {
	t.Helper()
	require.NoError(t, s.db.Exec(`UPDATE idempotency_keys SET created_at = created_at - ?::interval, expires_at = expires_at - ?::interval`,
		d.String(), d.String()).Error)
	if purge {
		_, err := idempotency.NewStore(s.db).Purge(context.Background())
		require.NoError(t, err)
	}
}

func TestAKeyReusedAfter24HoursNeverChargesTwice(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, nil)

	t.Run("createSubscription", func(t *testing.T) {
		tok := s.token("late-buyer")
		subID, first := s.subscribe(tok, "late-1", hotMonthly)
		creates := s.stripe.Count(http.MethodPost, "/v1/subscriptions")

		// Past 24 hours but not yet purged: the first result, from our store.
		s.ageKeys(t, 25*time.Hour, false)
		again, replay := s.subscribe(tok, "late-1", hotMonthly)
		require.Equal(t, creates, s.stripe.Count(http.MethodPost, "/v1/subscriptions"), "replayed from our store, no call to Stripe")
		require.Equal(t, subID, again)
		require.Equal(t, first["clientSecret"], replay["clientSecret"])

		// Purged: Stripe has forgotten the derived key too. A clear refusal, never a
		// second subscription at Stripe.
		s.ageKeys(t, time.Hour, true)
		require.EqualValues(t, 1, s.count(`SELECT count(*) FROM idempotency_tombstones`), "the key is retired")
		for _, plan := range []string{hotMonthly, mildMonthly} {
			resp, payload := s.mutate(tok, "createSubscription", "CreateSubscriptionInput", map[string]any{
				"planId": plan, "shippingAddress": address("Berlin"), "idempotencyKey": "late-1",
			}, "subscription { id } clientSecret")
			require.Empty(t, resp.Errors, resp.Raw)
			require.Equal(t, []string{"IDEMPOTENCY_KEY_REUSED"}, userErrorCodes(payload), resp.Raw)
			require.Contains(t, resp.Raw, "more than 24 hours ago")
			require.Nil(t, payload["subscription"])
		}
		require.Equal(t, creates, s.stripe.Count(http.MethodPost, "/v1/subscriptions"), "no second call to Stripe")
		require.EqualValues(t, 1, s.count(`SELECT count(*) FROM subscriptions s JOIN customers c ON c.id = s.customer_id WHERE c.subject = 'late-buyer'`))

		// A new key is a new request.
		s.subscribe(tok, "late-2", hotMonthly)
		require.Equal(t, creates+1, s.stripe.Count(http.MethodPost, "/v1/subscriptions"))
	})

	t.Run("refundPayment", func(t *testing.T) {
		admin := s.token("late-admin", "admin")
		payID, _ := s.paidPayment("late-refund", 3500)
		in := map[string]any{"paymentId": payID, "amount": 1000, "reason": "late retry", "idempotencyKey": "late-refund-1"}
		resp, p := s.refund(admin, in)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Empty(t, userErrorCodes(p), resp.Raw)
		refunds := len(s.refundRequests())

		s.ageKeys(t, 25*time.Hour, true)
		resp, p = s.refund(admin, in)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, []string{"IDEMPOTENCY_KEY_REUSED"}, userErrorCodes(p), resp.Raw)
		require.Equal(t, refunds, len(s.refundRequests()), "no second refund at Stripe")
		_, amount := s.refunded(payID)
		require.EqualValues(t, 1000, amount)
	})
}

// ourSecondSubscription makes, at the fake Stripe, a second subscription carrying the
// metadata of the API-made subscriptionID, as a request repeated after Stripe forgot
// its key would, and returns its Stripe id.
func (s *shop) ourSecondSubscription(subscriptionID string) (stripeSub string, f shopFixture) {
	s.t.Helper()
	f = shopFixture{subscriptionID: subscriptionID, planID: hotMonthly}
	require.NoError(s.t, s.db.Raw(`SELECT c.id, c.stripe_customer_id, p.stripe_price_id, p.amount
		FROM subscriptions s JOIN customers c ON c.id = s.customer_id JOIN plans p ON p.id = s.plan_id WHERE s.id = ?`, subscriptionID).
		Row().Scan(&f.customerID, &f.stripeCustomer, &f.price, &f.amount))
	gw, err := gateway.NewStripe(gateway.Config{SecretKey: "sk_test_123", APIBase: s.stripe.URL})
	require.NoError(s.t, err)
	gs, _, err := gw.CreateSubscription(context.Background(), "scv-forgotten-"+uuid.NewString(), gateway.SubscriptionInput{
		CustomerID: f.stripeCustomer, PriceID: f.price,
		Metadata: map[string]string{"scoville_subscription_id": subscriptionID, gateway.MetadataCustomerID: f.customerID, gateway.MetadataPlanID: hotMonthly},
	})
	require.NoError(s.t, err)
	f.stripeSub = gs.ID
	return gs.ID, f
}

func TestAnEventForAStripeSubscriptionOfOursIsNeverSilentlyIgnored(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, true, nil)
	now := time.Now().Truncate(time.Second)

	requireRecorded := func(t *testing.T, stripeSub, customerID, claimed string) {
		t.Helper()
		var dup models.Subscription
		require.NoError(t, s.db.Take(&dup, "stripe_subscription_id = ?", stripeSub).Error, "the second subscription is recorded")
		require.Equal(t, customerID, dup.CustomerID)
		require.NotEqual(t, claimed, dup.ID, "the first subscription keeps its row")
		require.Equal(t, "1 Pepper Lane", dup.ShippingAddress.Line1, "the address of the request it was made for")
		var first models.Subscription
		require.NoError(t, s.db.Take(&first, "id = ?", claimed).Error)
		require.NotEqual(t, stripeSub, *first.StripeSubscriptionID)
		require.Contains(t, s.logs.String(), `"alert":"duplicate_subscription"`)
	}

	t.Run("customer.subscription.created, then invoice.paid", func(t *testing.T) {
		subID := s.activeSubscription(s.token("dup-created"), "dup-created-1")
		stripeSub, f := s.ourSecondSubscription(subID)
		sub := webhooktest.Subscription{ID: stripeSub, Customer: f.stripeCustomer, Price: f.price, Status: "active", Amount: f.amount,
			Currency: "usd", PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0),
			Metadata: map[string]string{"scoville_subscription_id": subID, gateway.MetadataCustomerID: f.customerID}}
		require.Equal(t, 200, s.deliver(webhooktest.Event("evt_dup_created", "customer.subscription.created", now, sub.Object(), nil)))
		require.Equal(t, "PROCESSED", s.awaitEvent("evt_dup_created"), s.eventOutcome("evt_dup_created"))
		requireRecorded(t, stripeSub, f.customerID, subID)

		require.Equal(t, 200, s.deliver(webhooktest.Event("evt_dup_paid", "invoice.paid", now, paidInvoice(f, "in_dup_created", now).Object(), nil)))
		require.Equal(t, "PROCESSED", s.awaitEvent("evt_dup_paid"), s.eventOutcome("evt_dup_paid"))
		require.EqualValues(t, 1, s.count(`SELECT count(*) FROM shipments sh JOIN subscriptions s ON s.id = sh.subscription_id
			WHERE s.stripe_subscription_id = ?`, stripeSub), "what was paid ships")
	})

	t.Run("invoice.paid first: the subscription is read from Stripe", func(t *testing.T) {
		subID := s.activeSubscription(s.token("dup-paid"), "dup-paid-1")
		stripeSub, f := s.ourSecondSubscription(subID)
		require.Equal(t, 200, s.deliver(webhooktest.Event("evt_dup_first", "invoice.paid", now, paidInvoice(f, "in_dup_first", now).Object(), nil)))
		require.Equal(t, "PROCESSED", s.awaitEvent("evt_dup_first"), s.eventOutcome("evt_dup_first"))
		requireRecorded(t, stripeSub, f.customerID, subID)
		require.EqualValues(t, 1, s.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id = 'in_dup_first' AND status = 'SUCCEEDED'`))
	})

	t.Run("our metadata, but no customer of ours: flagged", func(t *testing.T) {
		sub := webhooktest.Subscription{ID: "sub_orphan", Customer: "cus_not_here", Price: "price_not_ours", Status: "active", Amount: 2400,
			Currency: "usd", PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0),
			Metadata: map[string]string{"scoville_subscription_id": uuid.NewString(), gateway.MetadataCustomerID: uuid.NewString()}}
		require.Equal(t, 200, s.deliver(webhooktest.Event("evt_orphan", "customer.subscription.created", now, sub.Object(), nil)))
		s.awaitEvent("evt_orphan")
		require.Contains(t, s.eventOutcome("evt_orphan"), "flagged for support")
		require.Contains(t, s.logs.String(), `"alert":"unresolved_subscription"`)
		require.True(t, strings.Contains(s.logs.String(), "sub_orphan"))
	})
}
