package gateway

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	stripe "github.com/stripe/stripe-go/v76"
)

func TestRefundPaymentAgainstStripeMock(t *testing.T) {
	t.Parallel()
	m := setupMock(t)
	r, err := m.gw.RefundPayment(context.Background(), "scv-refund-test-1", RefundInput{
		PaymentIntentID: "pi_123", Amount: 500, OurPaymentID: "11111111-1111-4111-8111-111111111111",
	})
	require.NoError(t, err, "stripe-mock accepts the request as Stripe's API describes it")
	require.NotEmpty(t, r.ID)
	require.NotEmpty(t, r.ChargeID)
	require.True(t, r.ChargeKnown, "the charge comes back expanded")
	require.Equal(t, "USD", r.Currency)
}

func TestRefundPaymentRefusesBadArgumentsBeforeSending(t *testing.T) {
	t.Parallel()
	gw, err := NewStripe(Config{SecretKey: mockKey, APIBase: "http://127.0.0.1:1"})
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		key string
		in  RefundInput
	}{
		"no key":            {"", RefundInput{PaymentIntentID: "pi_1", Amount: 1, OurPaymentID: "p"}},
		"no payment intent": {"k", RefundInput{Amount: 1, OurPaymentID: "p"}},
		"no payment":        {"k", RefundInput{PaymentIntentID: "pi_1", Amount: 1}},
		"zero amount":       {"k", RefundInput{PaymentIntentID: "pi_1", OurPaymentID: "p"}},
		"negative amount":   {"k", RefundInput{PaymentIntentID: "pi_1", Amount: -1, OurPaymentID: "p"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := gw.RefundPayment(context.Background(), tc.key, tc.in)
			require.True(t, errors.Is(err, ErrInvalidInput) || errors.Is(err, ErrInvalidIdempotencyKey), "%v", err)
		})
	}
}

func TestToRefundReadsTheChargeOnlyWhenExpanded(t *testing.T) {
	t.Parallel()
	expanded := toRefund(&stripe.Refund{ID: "re_1", Amount: 500, Currency: "eur", Status: "succeeded",
		Charge: &stripe.Charge{ID: "ch_1", Object: "charge", AmountRefunded: 1500}})
	require.Equal(t, Refund{ID: "re_1", Amount: 500, Currency: "EUR", Status: "succeeded", ChargeID: "ch_1",
		ChargeAmountRefunded: 1500, ChargeKnown: true}, expanded)
	ref := toRefund(&stripe.Refund{ID: "re_2", Amount: 500, Currency: "eur", Status: "failed", Charge: &stripe.Charge{ID: "ch_1"}})
	require.False(t, ref.ChargeKnown)
	require.True(t, ref.Failed())
}
