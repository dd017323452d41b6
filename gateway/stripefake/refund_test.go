package stripefake_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/gateway"
)

func TestRefundsMoveMoneyBackOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.fake.PutCharge([]byte(`{"id":"ch_r","payment_intent":"pi_r","amount":2500,"amount_refunded":0,"currency":"eur"}`))
	in := gateway.RefundInput{PaymentIntentID: "pi_r", Amount: 1000, OurPaymentID: "pay_1"}

	r, err := b.gw.RefundPayment(ctx, "key-1", in)
	require.NoError(t, err)
	require.Equal(t, gateway.Refund{ID: r.ID, Amount: 1000, Currency: "EUR", Status: "succeeded", ChargeID: "ch_r",
		ChargeAmountRefunded: 1000, ChargeKnown: true}, r)

	again, err := b.gw.RefundPayment(ctx, "key-1", in)
	require.NoError(t, err)
	require.Equal(t, r, again, "the same key replays the first answer")
	ch, err := b.gw.GetCharge(ctx, "ch_r")
	require.NoError(t, err)
	require.EqualValues(t, 1000, ch.AmountRefunded, "and moves no money twice")

	_, err = b.gw.RefundPayment(ctx, "key-2", gateway.RefundInput{PaymentIntentID: "pi_r", Amount: 1501, OurPaymentID: "pay_1"})
	var pe *gateway.ProviderError
	require.True(t, errors.As(err, &pe), "%v", err)
	require.Equal(t, "amount_too_large", pe.Code)

	rest, err := b.gw.RefundPayment(ctx, "key-3", gateway.RefundInput{PaymentIntentID: "pi_r", Amount: 1500, OurPaymentID: "pay_1"})
	require.NoError(t, err)
	require.EqualValues(t, 2500, rest.ChargeAmountRefunded)
	ch, err = b.gw.GetCharge(ctx, "ch_r")
	require.NoError(t, err)
	require.True(t, ch.Refunded)

	_, err = b.gw.RefundPayment(ctx, "key-4", gateway.RefundInput{PaymentIntentID: "pi_unknown", Amount: 1, OurPaymentID: "pay_1"})
	require.ErrorIs(t, err, gateway.ErrNotFound)
}
