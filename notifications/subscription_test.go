package notifications

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

func TestSubscriptionNoticeByReport(t *testing.T) {
	t.Parallel()
	active := SubscriptionState{Status: models.SubscriptionActive}
	cases := []struct {
		name     string
		on       SubscriptionEvent
		now      SubscriptionState
		previous string
		want     Kind
	}{
		{"ended", SubscriptionEnded, SubscriptionState{Status: models.SubscriptionCanceled}, `{}`, KindSubscriptionCanceled},
		{"paused", SubscriptionPaused, SubscriptionState{Status: models.SubscriptionPaused, Paused: true}, `{}`, KindSubscriptionPaused},
		{"resumed", SubscriptionResumed, active, `{}`, KindSubscriptionResumed},
		{"created active", SubscriptionCreated, active, `{}`, KindSubscriptionStarted},
		{"created incomplete: told when paid", SubscriptionCreated, SubscriptionState{Status: models.SubscriptionIncomplete}, `{}`, ""},
		{"first payment", SubscriptionUpdated, active, `{"status":"incomplete"}`, KindSubscriptionStarted},
		{"past due: the invoice's notice says what to do", SubscriptionUpdated, SubscriptionState{Status: models.SubscriptionPastDue}, `{"status":"active"}`, ""},
		{"collection paused", SubscriptionUpdated, SubscriptionState{Status: models.SubscriptionPaused, Paused: true}, `{"pause_collection":null}`, KindSubscriptionPaused},
		{"collection resumed", SubscriptionUpdated, active, `{"pause_collection":{"behavior":"void"}}`, KindSubscriptionResumed},
		{"cancel scheduled", SubscriptionUpdated, SubscriptionState{Status: models.SubscriptionActive, CancelAtPeriodEnd: true}, `{"cancel_at_period_end":false}`, KindSubscriptionChanged},
		{"plan changed", SubscriptionUpdated, active, `{"items":{}}`, KindSubscriptionChanged},
		{"nothing a customer cares about", SubscriptionUpdated, active, `{"metadata":{}}`, ""},
		{"unreadable previous attributes", SubscriptionUpdated, active, `not json`, ""},
	}
	for _, c := range cases {
		kind, text := SubscriptionNotice(c.on, c.now, json.RawMessage(c.previous))
		require.Equal(t, c.want, kind, c.name)
		require.Equal(t, kind == "", text == "", "%s: a notice has wording, and no notice none", c.name)
	}
}
