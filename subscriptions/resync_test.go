package subscriptions

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/notifications"
)

func TestAReadIsOrderedBeforeTheEventsOfItsSecond(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	read := readStamp(at.Add(700 * time.Millisecond))
	require.True(t, read.created.Equal(at), "a read counts from the start of its second")
	seq := func(n int64) *int64 { return &n }
	earlier, later := at.Add(-time.Second), at.Add(time.Second)

	require.True(t, readNewer(read, nil, nil), "nothing applied yet")
	require.True(t, readNewer(read, &earlier, seq(9)), "an event of an earlier second")
	require.False(t, readNewer(read, &later, seq(0)), "anything of a later second")
	require.False(t, readNewer(read, &at, seq(3)), "an event of the same second wins")
	require.True(t, readNewer(read, &at, seq(0)), "a read of the same second is replaced")

	// An event of the read's second still applies after it (events count from 1).
	require.True(t, stamp{created: at, seq: 1}.newer(&read.created, &read.seq))
}

func TestAReadPicksTheNoticeTheMissedEventWould(t *testing.T) {
	t.Parallel()
	sub := func(status models.SubscriptionStatus, cancelAtEnd bool, plan string) *models.Subscription {
		return &models.Subscription{Status: status, CancelAtPeriodEnd: cancelAtEnd, PlanID: plan}
	}
	gs := func(status, pause string, cancelAtEnd bool) gateway.Subscription {
		return gateway.Subscription{Status: status, PauseBehavior: pause, CancelAtPeriodEnd: cancelAtEnd}
	}
	cases := []struct {
		name          string
		before, after *models.Subscription
		now           gateway.Subscription
		want          notifications.Kind
	}{
		{"started", sub(models.SubscriptionIncomplete, false, "p"), sub(models.SubscriptionActive, false, "p"), gs("active", "", false), notifications.KindSubscriptionStarted},
		{"ended", sub(models.SubscriptionActive, false, "p"), sub(models.SubscriptionCanceled, false, "p"), gs("canceled", "", false), notifications.KindSubscriptionCanceled},
		{"ended while paused", sub(models.SubscriptionPaused, false, "p"), sub(models.SubscriptionCanceled, false, "p"), gs("canceled", "", false), notifications.KindSubscriptionCanceled},
		{"paused", sub(models.SubscriptionActive, false, "p"), sub(models.SubscriptionPaused, false, "p"), gs("active", "void", false), notifications.KindSubscriptionPaused},
		{"resumed", sub(models.SubscriptionPaused, false, "p"), sub(models.SubscriptionActive, false, "p"), gs("active", "", false), notifications.KindSubscriptionResumed},
		{"cancel scheduled", sub(models.SubscriptionActive, false, "p"), sub(models.SubscriptionActive, true, "p"), gs("active", "", true), notifications.KindSubscriptionChanged},
		{"plan changed", sub(models.SubscriptionActive, false, "p"), sub(models.SubscriptionActive, false, "q"), gs("active", "", false), notifications.KindSubscriptionChanged},
		{"past due: the invoice's notice says what to do", sub(models.SubscriptionActive, false, "p"), sub(models.SubscriptionPastDue, false, "p"), gs("past_due", "", false), ""},
	}
	for _, c := range cases {
		kind, _ := subscriptionNotice(notifications.SubscriptionUpdated, c.now, previousAttributes(c.before, c.after))
		require.Equal(t, c.want, kind, c.name)
		require.True(t, differs(c.before, c.after), c.name)
	}
	same := sub(models.SubscriptionActive, false, "p")
	require.False(t, differs(same, sub(models.SubscriptionActive, false, "p")))
	require.JSONEq(t, `{}`, string(previousAttributes(same, same)))
}
