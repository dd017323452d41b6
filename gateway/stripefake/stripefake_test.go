package stripefake_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/gateway/stripefake"
)

type bundle struct {
	fake *stripefake.Server
	gw   *gateway.Stripe
}

// setup starts a fake and the real adapter pointed at it.
func setup(t *testing.T) bundle {
	t.Helper()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	gw, err := gateway.NewStripe(gateway.Config{SecretKey: "sk_test_fake", APIBase: fake.URL, Timeout: 2 * time.Second})
	require.NoError(t, err)
	return bundle{fake: fake, gw: gw}
}

const paidInvoice = `{
  "id": "in_paid", "object": "invoice", "customer": "cus_1", "subscription": "sub_1",
  "status": "paid", "billing_reason": "subscription_cycle", "currency": "eur",
  "amount_due": 2500, "amount_paid": 2500, "amount_remaining": 0, "total": 2500,
  "payment_intent": "pi_1", "charge": "ch_1", "attempt_count": 1, "created": 1717200000,
  "status_transitions": {"paid_at": 1717203600},
  "lines": {"object": "list", "has_more": false, "data": [{
    "id": "il_1", "object": "line_item", "type": "subscription", "amount": 2500, "currency": "eur",
    "quantity": 1, "proration": false, "subscription_item": "si_1",
    "price": {"id": "price_1", "object": "price", "unit_amount": 2500, "currency": "eur"},
    "period": {"start": 1717200000, "end": 1719792000}}]},
  "metadata": {"scoville_subscription_id": "s_1"}
}`

func TestPutInvoiceIsServedOnGet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, "in_paid", b.fake.PutInvoice([]byte(paidInvoice)))

	inv, err := b.gw.GetInvoice(context.Background(), "in_paid")
	require.NoError(t, err)
	want, err := gateway.InvoiceFromJSON([]byte(paidInvoice))
	require.NoError(t, err)
	require.Equal(t, want, inv, "the invoice as put, amounts and times exact")
	require.Equal(t, 1, b.fake.Count(http.MethodGet, "/v1/invoices/in_paid"))
}

func TestPutChargeIsServedOnGet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.fake.PutCharge([]byte(`{"id":"ch_1","object":"charge","invoice":"in_paid","payment_intent":"pi_1",
	  "amount":2500,"amount_refunded":2500,"refunded":true,"currency":"eur","created":1717203590}`))
	require.Equal(t, "ch_1", id)

	ch, err := b.gw.GetCharge(context.Background(), "ch_1")
	require.NoError(t, err)
	require.Equal(t, gateway.Charge{
		ID: "ch_1", InvoiceID: "in_paid", PaymentIntentID: "pi_1", Currency: "EUR",
		Amount: 2500, AmountRefunded: 2500, Refunded: true, Created: time.Unix(1717203590, 0).UTC(),
	}, ch)
}

func TestPutFillsObjectAndIDAndReplaces(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	id := b.fake.PutInvoice([]byte(`{"status":"open","currency":"usd"}`))
	require.NotEmpty(t, id)
	inv, err := b.gw.GetInvoice(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "open", inv.Status)

	require.Equal(t, id, b.fake.PutInvoice([]byte(`{"id":"`+id+`","object":"invoice","status":"paid"}`)))
	inv, err = b.gw.GetInvoice(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "paid", inv.Status, "a second Put replaces the first")

	chID := b.fake.PutCharge([]byte(`{}`))
	require.NotEqual(t, id, chID)
	_, err = b.gw.GetCharge(ctx, chID)
	require.NoError(t, err)
}

func TestPutPanicsOnATestBug(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, put := range map[string]func(){
		"malformed JSON":        func() { b.fake.PutInvoice([]byte(`{"id":`)) },
		"not an object":         func() { b.fake.PutCharge([]byte(`"ch_1"`)) },
		"null":                  func() { b.fake.PutCharge([]byte(`null`)) },
		"another object type":   func() { b.fake.PutInvoice([]byte(`{"id":"ch_1","object":"charge"}`)) },
		"an id that is no text": func() { b.fake.PutCharge([]byte(`{"id":12}`)) },
	} {
		t.Run(name, func(t *testing.T) { require.Panics(t, put) })
	}
}

func TestUnknownObjectsAreStripesNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.fake.PutInvoice([]byte(paidInvoice))

	_, err := b.gw.GetInvoice(ctx, "in_nope")
	require.ErrorIs(t, err, gateway.ErrNotFound)
	_, err = b.gw.GetCharge(ctx, "in_paid")
	require.ErrorIs(t, err, gateway.ErrNotFound, "invoices and charges are kept apart")
	_, err = b.gw.GetSubscription(ctx, "sub_nope")
	require.ErrorIs(t, err, gateway.ErrNotFound)

	for _, path := range []string{"/v1/invoices/in_nope", "/v1/charges/ch_nope"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.fake.URL+path, nil)
		require.NoError(t, err)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var body struct {
			Error struct{ Type, Code, Param, Message string }
		}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
		require.NoError(t, res.Body.Close())
		require.Equal(t, http.StatusNotFound, res.StatusCode)
		require.Equal(t, "invalid_request_error", body.Error.Type)
		require.Equal(t, "resource_missing", body.Error.Code)
		require.Equal(t, "id", body.Error.Param)
		require.Contains(t, body.Error.Message, "No such ")
	}
}

func TestGetRetriesInjectedFaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.PutCharge([]byte(`{"id":"ch_1","object":"charge"}`))
	b.fake.FailNext(stripefake.Fault{Status: 503})
	ch, err := b.gw.GetCharge(context.Background(), "ch_1")
	require.NoError(t, err)
	require.Equal(t, "ch_1", ch.ID)
	require.Equal(t, 2, b.fake.Count(http.MethodGet, "/v1/charges/ch_1"))
}

func TestCreatedSubscriptionKeepsItsMetadataAndFirstInvoice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		newStatus     string
		trialDays     int
		wantStatus    string
		wantInvoice   string
		wantDue       int64
		wantPaid      int64
		wantPaidAt    bool
		wantPayIntent bool
	}{
		{"incomplete until paid", "", 0, "incomplete", "open", 4500, 0, false, true},
		{"active at once", "active", 0, "active", "paid", 4500, 4500, true, false},
		{"trial costs nothing now", "", 14, "trialing", "paid", 0, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			if tt.newStatus != "" {
				b.fake.SetNewSubscriptionStatus(tt.newStatus)
			}
			_, price, err := b.gw.CreateProductAndPrice(ctx, "plan-1", gateway.PlanInput{Name: "Hot box", Interval: gateway.IntervalQuarter, Amount: 4500, Currency: "EUR", OurPlanID: "p_1"})
			require.NoError(t, err)
			md := map[string]string{"scoville_subscription_id": "s_1"}
			created, _, err := b.gw.CreateSubscription(ctx, "sub-1", gateway.SubscriptionInput{CustomerID: "cus_1", PriceID: price, TrialDays: tt.trialDays, Metadata: md})
			require.NoError(t, err)
			require.Equal(t, md, created.Metadata)

			sub, err := b.gw.GetSubscription(ctx, created.ID)
			require.NoError(t, err)
			require.Equal(t, created, sub)
			require.Equal(t, tt.wantStatus, sub.Status)
			require.Equal(t, md, sub.Metadata)

			inv, err := b.gw.GetInvoice(ctx, sub.LatestInvoiceID)
			require.NoError(t, err)
			require.Equal(t, sub.LatestInvoiceID, inv.ID)
			require.Equal(t, "cus_1", inv.CustomerID)
			require.Equal(t, sub.ID, inv.SubscriptionID)
			require.Equal(t, "subscription_create", inv.BillingReason)
			require.Equal(t, tt.wantInvoice, inv.Status)
			require.Equal(t, "EUR", inv.Currency)
			require.Equal(t, tt.wantDue, inv.AmountDue)
			require.Equal(t, tt.wantPaid, inv.AmountPaid)
			require.Equal(t, tt.wantDue-tt.wantPaid, inv.AmountRemaining)
			require.Equal(t, tt.wantPaidAt, !inv.PaidAt.IsZero())
			require.Equal(t, tt.wantPayIntent, inv.PaymentIntentID != "")
			require.Len(t, inv.Lines, 1)
			require.Equal(t, gateway.InvoiceLine{
				ID: inv.Lines[0].ID, Type: "subscription", PriceID: price, SubscriptionItemID: sub.ItemID,
				Amount: tt.wantDue, UnitAmount: 4500, Quantity: 1, Currency: "EUR",
				PeriodStart: sub.CurrentPeriodStart, PeriodEnd: sub.CurrentPeriodEnd,
			}, inv.Lines[0])
		})
	}
}

func TestSubscriptionUpdateMergesMetadata(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	sub, _, err := b.gw.CreateSubscription(ctx, "sub-1", gateway.SubscriptionInput{
		CustomerID: "cus_1", PriceID: "price_1", Metadata: map[string]string{"keep": "1", "drop": "2"},
	})
	require.NoError(t, err)

	res, err := http.PostForm(b.fake.URL+"/v1/subscriptions/"+sub.ID, url.Values{"metadata[drop]": {""}, "metadata[add]": {"3"}})
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.Equal(t, http.StatusOK, res.StatusCode)

	// Updates that send no metadata leave it alone.
	_, err = b.gw.CancelSubscription(ctx, "cancel-1", sub.ID, true)
	require.NoError(t, err)
	got, err := b.gw.GetSubscription(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"keep": "1", "add": "3"}, got.Metadata)
	require.True(t, got.CancelAtPeriodEnd)
}
