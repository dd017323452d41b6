package gateway

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	stripe "github.com/stripe/stripe-go/v76"
)

// The tests in this file run every method against stripe-mock, which checks each
// request against Stripe's own OpenAPI description: an unknown or malformed
// parameter is a 400 there, as it would be at Stripe.

const mockKey = "sk_test_123"

type mockBundle struct {
	gw  *Stripe
	log *logBuffer
}

// mockBase is stripe-mock's URL; without it the test fails rather than skips,
// so a suite run without stripe-mock cannot pass unnoticed.
func mockBase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("STRIPE_API_BASE")
	if base == "" {
		t.Fatal("STRIPE_API_BASE is not set: run `make test` (it starts stripe-mock) or run `go tool stripe-mock` and export STRIPE_API_BASE=http://127.0.0.1:12111")
	}
	return base
}

func setupMock(t *testing.T) mockBundle {
	t.Helper()
	base := mockBase(t)
	buf := &logBuffer{}
	gw, err := NewStripe(Config{
		SecretKey: mockKey,
		APIBase:   base,
		Timeout:   5 * time.Second,
		Logger:    slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	return mockBundle{gw: gw, log: buf}
}

func TestStripeMockAcceptsEveryRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	resumeAt := time.Now().Add(30 * 24 * time.Hour)

	tests := []struct {
		name string
		run  func(t *testing.T, gw *Stripe)
	}{
		{"CreateCustomer", func(t *testing.T, gw *Stripe) {
			id, err := gw.CreateCustomer(ctx, "t-cus-1", CustomerInput{OurCustomerID: "c_1", Email: "ada@example.com", Name: "Ada"})
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(id, "cus_"), id)
		}},
		{"CreateCustomer without e-mail or name", func(t *testing.T, gw *Stripe) {
			id, err := gw.CreateCustomer(ctx, "t-cus-2", CustomerInput{OurCustomerID: "c_2"})
			require.NoError(t, err)
			require.NotEmpty(t, id)
		}},
		{"CreateProductAndPrice MONTH", func(t *testing.T, gw *Stripe) {
			prod, price, err := gw.CreateProductAndPrice(ctx, "t-plan-m", PlanInput{Name: "Hot box", Description: "Monthly", Interval: IntervalMonth, Amount: 2500, Currency: "EUR", OurPlanID: "p_1"})
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(prod, "prod_"), prod)
			require.True(t, strings.HasPrefix(price, "price_"), price)
		}},
		{"CreateProductAndPrice QUARTER", func(t *testing.T, gw *Stripe) {
			_, price, err := gw.CreateProductAndPrice(ctx, "t-plan-q", PlanInput{Name: "Hot box", Interval: IntervalQuarter, Amount: 7000, Currency: "USD", OurPlanID: "p_2"})
			require.NoError(t, err)
			require.NotEmpty(t, price)
		}},
		{"CreateProductAndPrice YEAR", func(t *testing.T, gw *Stripe) {
			_, price, err := gw.CreateProductAndPrice(ctx, "t-plan-y", PlanInput{Name: "Hot box", Interval: IntervalYear, Amount: 25000, Currency: "GBP", OurPlanID: "p_3"})
			require.NoError(t, err)
			require.NotEmpty(t, price)
		}},
		{"CreateCheckoutSession with every option", func(t *testing.T, gw *Stripe) {
			cs, err := gw.CreateCheckoutSession(ctx, "t-cs-1", CheckoutInput{
				CustomerID: "cus_123", PriceID: "price_123",
				SuccessURL: "https://shop.example/ok?session_id={CHECKOUT_SESSION_ID}", CancelURL: "https://shop.example/cancel",
				ClientReferenceID: "sub_local_1", TrialDays: 14, PromotionCodeID: "promo_123",
				Metadata: map[string]string{"scoville_subscription_id": "s_1"}, AutomaticTax: true,
			})
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(cs.ID, "cs_"), cs.ID)
			// stripe-mock's fixture has no url; the fake-server tests cover it.
		}},
		{"CreateCheckoutSession minimal", func(t *testing.T, gw *Stripe) {
			cs, err := gw.CreateCheckoutSession(ctx, "t-cs-2", CheckoutInput{
				CustomerID: "cus_123", PriceID: "price_123",
				SuccessURL: "https://shop.example/ok", CancelURL: "https://shop.example/cancel",
			})
			require.NoError(t, err)
			require.NotEmpty(t, cs.ID)
		}},
		{"CreateSubscription", func(t *testing.T, gw *Stripe) {
			sub, secret, err := gw.CreateSubscription(ctx, "t-sub-1", SubscriptionInput{
				CustomerID: "cus_123", PriceID: "price_123", PromotionCodeID: "promo_123",
				Metadata: map[string]string{"scoville_subscription_id": "s_1"}, AutomaticTax: true,
			})
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(sub.ID, "sub_"), sub.ID)
			require.NotEmpty(t, sub.Status)
			require.NotEmpty(t, sub.ItemID)
			require.NotEmpty(t, sub.PriceID)
			require.NotEmpty(t, sub.LatestInvoiceID)
			require.Contains(t, secret, "_secret_", "the expanded PaymentIntent's client secret")
		}},
		{"CreateSubscription with trial", func(t *testing.T, gw *Stripe) {
			sub, _, err := gw.CreateSubscription(ctx, "t-sub-2", SubscriptionInput{CustomerID: "cus_123", PriceID: "price_123", TrialDays: 7})
			require.NoError(t, err)
			require.NotEmpty(t, sub.ID)
		}},
		{"GetSubscription", func(t *testing.T, gw *Stripe) {
			sub, err := gw.GetSubscription(ctx, "sub_123")
			require.NoError(t, err)
			require.NotEmpty(t, sub.ID)
			require.NotEmpty(t, sub.CustomerID)
			require.Equal(t, strings.ToUpper(sub.Currency), sub.Currency)
			require.Positive(t, sub.Amount)
			require.False(t, sub.Created.IsZero())
		}},
		{"GetInvoice", func(t *testing.T, gw *Stripe) {
			inv, err := gw.GetInvoice(ctx, "in_123")
			require.NoError(t, err)
			require.Equal(t, "in_123", inv.ID)
			require.NotEmpty(t, inv.CustomerID)
			require.Equal(t, "USD", inv.Currency)
			require.Positive(t, inv.AmountDue)
			require.NotEmpty(t, inv.Lines)
			require.NotEmpty(t, inv.Lines[0].PriceID)
			require.False(t, inv.Created.IsZero())
		}},
		{"GetCharge", func(t *testing.T, gw *Stripe) {
			ch, err := gw.GetCharge(ctx, "ch_123")
			require.NoError(t, err)
			require.Equal(t, "ch_123", ch.ID)
			require.Equal(t, "USD", ch.Currency)
			require.Positive(t, ch.Amount)
			require.False(t, ch.Created.IsZero())
		}},
		{"ChangeSubscriptionPrice prorated", func(t *testing.T, gw *Stripe) {
			sub, err := gw.ChangeSubscriptionPrice(ctx, "t-chg-1", "sub_123", ChangePriceInput{ItemID: "si_123", PriceID: "price_456", Prorate: true})
			require.NoError(t, err)
			require.NotEmpty(t, sub.ID)
		}},
		{"ChangeSubscriptionPrice without proration", func(t *testing.T, gw *Stripe) {
			sub, err := gw.ChangeSubscriptionPrice(ctx, "t-chg-2", "sub_123", ChangePriceInput{ItemID: "si_123", PriceID: "price_456"})
			require.NoError(t, err)
			require.NotEmpty(t, sub.ID)
		}},
		{"PauseSubscription until a date", func(t *testing.T, gw *Stripe) {
			sub, err := gw.PauseSubscription(ctx, "t-pause-1", "sub_123", &resumeAt)
			require.NoError(t, err)
			require.NotEmpty(t, sub.ID)
		}},
		{"PauseSubscription open-ended", func(t *testing.T, gw *Stripe) {
			_, err := gw.PauseSubscription(ctx, "t-pause-2", "sub_123", nil)
			require.NoError(t, err)
		}},
		{"ResumeSubscription", func(t *testing.T, gw *Stripe) {
			_, err := gw.ResumeSubscription(ctx, "t-resume-1", "sub_123")
			require.NoError(t, err)
		}},
		{"CancelSubscription at period end", func(t *testing.T, gw *Stripe) {
			_, err := gw.CancelSubscription(ctx, "t-cancel-1", "sub_123", true)
			require.NoError(t, err)
		}},
		{"CancelSubscription now", func(t *testing.T, gw *Stripe) {
			sub, err := gw.CancelSubscription(ctx, "t-cancel-2", "sub_123", false)
			require.NoError(t, err)
			require.NotEmpty(t, sub.ID)
		}},
		{"CreateBillingPortalSession", func(t *testing.T, gw *Stripe) {
			u, err := gw.CreateBillingPortalSession(ctx, "t-portal-1", "cus_123", "https://shop.example/account")
			require.NoError(t, err)
			require.NotEmpty(t, u)
		}},
		{"FindPromotionCode", func(t *testing.T, gw *Stripe) {
			// stripe-mock accepts the query and answers with its one fixture,
			// which is inactive: the adapter's own check must refuse it.
			_, err := gw.FindPromotionCode(ctx, "FALL20")
			require.ErrorIs(t, err, ErrPromotionCodeNotFound)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupMock(t)
			tt.run(t, b.gw)
			require.NotContains(t, b.log.String(), mockKey)
			require.NotContains(t, b.log.String(), "ada@example.com")
			require.Contains(t, b.log.String(), `"outcome":"ok"`)
		})
	}
}

// stripe-mock does validate: a parameter Stripe does not know is refused with a
// 400, which arrives as a *ProviderError after exactly one attempt.
func TestStripeMockRefusesUnknownParameter(t *testing.T) {
	t.Parallel()
	b := setupMock(t)
	var attempts int
	err := b.gw.call(context.Background(), "probe", func(ctx context.Context) error {
		attempts++
		p := &stripe.CustomerParams{}
		p.Params = writeParams(ctx, "t-probe-1")
		p.AddExtra("no_such_parameter", "x")
		_, err := b.gw.api.Customers.New(p)
		return err
	})
	var pe *ProviderError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, 400, pe.HTTPStatus)
	require.Equal(t, "invalid_request_error", pe.Type)
	require.Equal(t, 1, attempts)
	require.NotErrorIs(t, err, ErrProviderUnavailable)
}
