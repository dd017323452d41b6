package subscriptions

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

// The me statement's parameters are numbered in the order gorm would bind them,
// and none is left as a question mark.
func TestMeStatementNumbersItsParameters(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a $1 b $2$3", numberParameters("a ? b ??"))
	require.Equal(t, "none", numberParameters("none"))
	require.NotContains(t, meStatementPG, "?")
	require.Equal(t, 3, strings.Count(meStatement, "?"), "LIMIT, issuer, subject")
	for _, p := range []string{"LIMIT $1", "c.issuer = $2", "c.subject = $3"} {
		require.Contains(t, meStatementPG, p)
	}
}

// Me reads each row on its own: a column NULL in a later row is nil in its
// subscription, not the earlier row's value, and each one's address is its own.
// An address not asked for is not opened.
func TestMeReadsEachRowAlone(t *testing.T) {
	t.Parallel()
	b := newBench(t)
	ctx := context.Background()
	moved := models.Address{Name: "Grace", Line1: "9 Habanero Way", City: "Lisbon", PostalCode: "1100-148", Country: "PT"}
	res, err := b.svc.Create(ctx, b.principal, models.CreateSubscriptionInput{
		PlanID: benchPlans[0], IdempotencyKey: nextKey("create"), ShippingAddress: &moved})
	require.NoError(t, err)
	require.Empty(t, res.UserErrors)
	older, newer := res.Subscription, b.subscribe(t)
	at := time.Now().UTC().Truncate(time.Second)
	require.NoError(t, b.db.Exec(`UPDATE subscriptions SET created_at = ?, paused_until = ?, provider_updated_at = ?,
		provider_event_seq = 7, current_period_start = ?, current_period_end = ? WHERE id = ?`,
		at, at, at, at, at.AddDate(0, 1, 0), newer.ID).Error)
	require.NoError(t, b.db.Exec(`UPDATE subscriptions SET created_at = ?, paused_until = NULL, provider_updated_at = NULL,
		provider_event_seq = NULL, current_period_start = NULL, current_period_end = NULL, stripe_item_id = NULL,
		stripe_subscription_id = NULL WHERE id = ?`, at.Add(-time.Minute), older.ID).Error)

	me, err := b.svc.Me(ctx, b.principal, MeRead{ShippingAddress: true})
	require.NoError(t, err)
	require.Len(t, me.Subscriptions, 2)
	for i, want := range []*models.Subscription{b.row(t, newer.ID), b.row(t, older.ID)} {
		got := me.Subscriptions[i]
		require.Equal(t, want.ID, got.ID)
		require.Equal(t, want.StripeSubscriptionID, got.StripeSubscriptionID)
		require.Equal(t, want.StripeItemID, got.StripeItemID)
		require.Equal(t, want.ProviderEventSeq, got.ProviderEventSeq)
		for _, p := range [][2]*time.Time{{want.PausedUntil, got.PausedUntil}, {want.ProviderUpdatedAt, got.ProviderUpdatedAt},
			{want.CurrentPeriodStart, got.CurrentPeriodStart}, {want.CurrentPeriodEnd, got.CurrentPeriodEnd}} {
			require.Equal(t, p[0] == nil, p[1] == nil, got.ID)
			if p[0] != nil {
				require.True(t, p[0].Equal(*p[1]), got.ID)
			}
		}
		require.Equal(t, want.ShippingAddress, got.ShippingAddress)
	}
	require.Nil(t, me.Subscriptions[1].PausedUntil)
	require.Equal(t, moved, me.Subscriptions[1].ShippingAddress)

	me, err = b.svc.Me(ctx, b.principal, MeRead{})
	require.NoError(t, err)
	require.Len(t, me.Subscriptions, 2)
	for _, sub := range me.Subscriptions {
		require.Equal(t, models.Address{}, sub.ShippingAddress)
	}
}

// BenchmarkMe is the service's side of make bench-read: a customer with three
// subscriptions read by Me as the query without addresses reads them.
func BenchmarkMe(b *testing.B) {
	bb := newBench(b)
	for range 3 {
		bb.subscribe(b)
	}
	ctx := context.Background()
	me, err := bb.svc.Me(ctx, bb.principal, MeRead{})
	require.NoError(b, err)
	require.Len(b, me.Subscriptions, 3)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := bb.svc.Me(ctx, bb.principal, MeRead{}); err != nil {
			b.Fatal(err)
		}
	}
}
