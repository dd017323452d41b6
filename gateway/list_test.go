package gateway_test

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/gateway/stripefake"
)

// stripe-mock checks each listing request against Stripe's OpenAPI description
// (an unknown filter is a 400) and answers with its fixtures.
func TestListingsAreValidStripeRequests(t *testing.T) {
	t.Parallel()
	gw, err := gateway.NewStripe(gateway.Config{SecretKey: "sk_test_123", APIBase: gateway.MockBase(t)})
	require.NoError(t, err)
	ctx := context.Background()
	since := time.Now().Add(-time.Hour)

	subs, err := gw.ListSubscriptionsSince(ctx, since)
	require.NoError(t, err)
	require.Len(t, subs, 1, "the fixture, listed by both filters, appears once")
	require.NotEmpty(t, subs[0].ID)
	require.NotEmpty(t, subs[0].PriceID)
	require.NotEmpty(t, subs[0].CustomerID)

	invoices, err := gw.ListPaidInvoicesSince(ctx, since)
	require.NoError(t, err)
	require.NotEmpty(t, invoices)
	require.NotEmpty(t, invoices[0].Lines, "lines come embedded")
	_, err = gw.ListOpenInvoicesSince(ctx, since)
	require.NoError(t, err)
}

func TestListingsSendTheWindowAndFollowTheFilters(t *testing.T) {
	t.Parallel()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	gw, err := gateway.NewStripe(gateway.Config{SecretKey: "sk_test_fake", APIBase: fake.URL, Timeout: 2 * time.Second})
	require.NoError(t, err)
	ctx := context.Background()

	fake.SetNewSubscriptionStatus("active")
	created, _, err := gw.CreateSubscription(ctx, "k1", gateway.SubscriptionInput{CustomerID: "cus_1", PriceID: "price_1"})
	require.NoError(t, err)
	old := time.Now().Add(-48 * time.Hour).Unix()
	fake.PutInvoice([]byte(`{"id": "in_old", "status": "paid", "created": ` + strconv.FormatInt(old, 10) + `}`))
	fake.PutInvoice([]byte(`{"id": "in_open", "status": "open", "created": ` + strconv.FormatInt(time.Now().Unix(), 10) + `}`))

	since := time.Now().Add(-time.Hour)
	subs, err := gw.ListSubscriptionsSince(ctx, since)
	require.NoError(t, err)
	require.Len(t, subs, 1)
	require.Equal(t, created.ID, subs[0].ID)
	invoices, err := gw.ListPaidInvoicesSince(ctx, since)
	require.NoError(t, err)
	require.Len(t, invoices, 1, "only paid invoices created in the window")
	require.Equal(t, created.LatestInvoiceID, invoices[0].ID)

	var listed []url.Values
	for _, r := range fake.Requests() {
		if r.Method == "GET" && (r.Path == "/v1/subscriptions" || r.Path == "/v1/invoices") {
			v := url.Values{}
			for k, x := range r.Form {
				v.Set(k, x)
			}
			listed = append(listed, v)
		}
	}
	require.Len(t, listed, 3)
	want := strconv.FormatInt(since.Unix(), 10)
	require.Equal(t, want, listed[0].Get("created[gte]"))
	require.Equal(t, "all", listed[0].Get("status"))
	require.Equal(t, want, listed[1].Get("current_period_start[gte]"))
	require.Equal(t, want, listed[2].Get("created[gte]"))
	require.Equal(t, "paid", listed[2].Get("status"))
	require.Equal(t, "100", listed[2].Get("limit"))

	open, err := gw.ListOpenInvoicesSince(ctx, since)
	require.NoError(t, err)
	require.Len(t, open, 1)
	require.Equal(t, "in_open", open[0].ID)
	require.Equal(t, "open", fake.Requests()[len(fake.Requests())-1].Form["status"])
}

func TestListingsReportStripeDown(t *testing.T) {
	t.Parallel()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	gw, err := gateway.NewStripe(gateway.Config{SecretKey: "sk_test_fake", APIBase: fake.URL, Timeout: 300 * time.Millisecond, RetryBudget: time.Second})
	require.NoError(t, err)
	for range 20 {
		fake.FailNext(stripefake.Fault{Status: 503})
	}
	_, err = gw.ListSubscriptionsSince(context.Background(), time.Now())
	require.ErrorIs(t, err, gateway.ErrProviderUnavailable)
	_, err = gw.ListPaidInvoicesSince(context.Background(), time.Now())
	require.ErrorIs(t, err, gateway.ErrProviderUnavailable)
	_, err = gw.ListOpenInvoicesSince(context.Background(), time.Now())
	require.ErrorIs(t, err, gateway.ErrProviderUnavailable)
}
