package payments

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

func TestRefundsOnlyEverCapAtWhatWasPaid(t *testing.T) {
	t.Parallel()
	pay := &models.Payment{AmountMinor: 1000, Currency: "USD", Status: models.PaymentSucceeded}
	SetRefunded(pay, 400)
	require.Equal(t, int64(400), pay.AmountRefunded)
	require.Equal(t, models.PaymentPartiallyRefunded, pay.Status)
	SetRefunded(pay, 5000)
	require.Equal(t, int64(1000), pay.AmountRefunded, "never more than was paid")
	require.Equal(t, models.PaymentRefunded, pay.Status)

	// A later report of a smaller paid amount keeps the refund within it.
	SetPaid(pay, 600, "usd")
	require.Equal(t, int64(600), pay.AmountRefunded)
	require.Equal(t, "USD", pay.Currency)
	require.Equal(t, models.PaymentRefunded, pay.Status)
	require.True(t, Paid(pay))

	require.Equal(t, models.PaymentFailed, RefundStatus(1000, 0, models.PaymentFailed))
}

func TestRefundableRefusesWhatCannotBeRefunded(t *testing.T) {
	t.Parallel()
	pi := "pi_1"
	amount := func(n int) *int { return &n }
	cases := []struct {
		name string
		pay  models.Payment
		want *int
		ok   int64 // 0: refused
	}{
		{"all that remains", models.Payment{Status: models.PaymentPartiallyRefunded, AmountMinor: 1000, AmountRefunded: 300, StripePaymentIntentID: &pi}, nil, 700},
		{"part", models.Payment{Status: models.PaymentSucceeded, AmountMinor: 1000, StripePaymentIntentID: &pi}, amount(250), 250},
		{"more than remains", models.Payment{Status: models.PaymentPartiallyRefunded, AmountMinor: 1000, AmountRefunded: 900, StripePaymentIntentID: &pi}, amount(101), 0},
		{"refunded already", models.Payment{Status: models.PaymentRefunded, AmountMinor: 1000, AmountRefunded: 1000, StripePaymentIntentID: &pi}, nil, 0},
		{"failed", models.Payment{Status: models.PaymentFailed, AmountMinor: 1000, StripePaymentIntentID: &pi}, nil, 0},
		{"no charge at Stripe", models.Payment{Status: models.PaymentSucceeded, AmountMinor: 1000}, nil, 0},
	}
	for _, c := range cases {
		got, err := Refundable(&c.pay, c.want)
		if c.ok == 0 {
			ues, rest := models.UserErrorsOf(err)
			require.NotEmpty(t, ues, c.name)
			require.NoError(t, rest, c.name)
			continue
		}
		require.NoError(t, err, c.name)
		require.Equal(t, c.ok, got, c.name)
	}
}
