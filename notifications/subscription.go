package notifications

import (
	"encoding/json"
	"strings"

	"github.com/scoville/scoville/models"
)

// SubscriptionEvent is what the payment provider reported about a subscription,
// named without the provider's vocabulary.
type SubscriptionEvent int

// The subscription reports a notice is chosen for.
const (
	SubscriptionUpdated SubscriptionEvent = iota // anything changed; the previous fields say what
	SubscriptionCreated
	SubscriptionEnded
	SubscriptionPaused
	SubscriptionResumed
)

// SubscriptionState is the provider's view of a subscription after the change.
type SubscriptionState struct {
	Status            models.SubscriptionStatus
	Paused            bool // collection is paused (the provider's pause_collection is set)
	CancelAtPeriodEnd bool
}

// SubscriptionNotice decides which notification a subscription change deserves, and
// its wording, from the report, the state after it and the fields the provider says
// changed (its previous_attributes, JSON). No kind means nothing worth telling.
func SubscriptionNotice(on SubscriptionEvent, now SubscriptionState, previous json.RawMessage) (Kind, string) {
	status := now.Status
	switch on {
	case SubscriptionEnded:
		return KindSubscriptionCanceled, "Your subscription has ended."
	case SubscriptionPaused:
		return KindSubscriptionPaused, "Your subscription is paused."
	case SubscriptionResumed:
		return KindSubscriptionResumed, "Your subscription is running again."
	case SubscriptionCreated:
		if status == models.SubscriptionActive || status == models.SubscriptionTrialing {
			return KindSubscriptionStarted, "Your subscription has started."
		}
		return "", "" // started once the first payment succeeds
	}
	var prev map[string]json.RawMessage
	_ = json.Unmarshal(previous, &prev)
	if raw, ok := prev["status"]; ok {
		var was string
		_ = json.Unmarshal(raw, &was)
		switch {
		case (status == models.SubscriptionActive || status == models.SubscriptionTrialing) && strings.HasPrefix(was, "incomplete"):
			return KindSubscriptionStarted, "Your subscription has started."
		case status == models.SubscriptionCanceled:
			return KindSubscriptionCanceled, "Your subscription has ended."
		case status == models.SubscriptionPastDue || status == models.SubscriptionUnpaid:
			return "", "" // the invoice's failure notice says what to do
		}
	}
	if raw, ok := prev["pause_collection"]; ok {
		if now.Paused {
			return KindSubscriptionPaused, "Your deliveries are paused."
		}
		if string(raw) != "null" {
			return KindSubscriptionResumed, "Your deliveries have resumed."
		}
	}
	if _, ok := prev["cancel_at_period_end"]; ok {
		if now.CancelAtPeriodEnd {
			return KindSubscriptionChanged, "Your subscription will end at the close of the current period."
		}
		return KindSubscriptionChanged, "Your subscription will continue; the scheduled cancellation was removed."
	}
	if _, ok := prev["items"]; ok {
		return KindSubscriptionChanged, "Your plan has changed."
	}
	if _, ok := prev["plan"]; ok {
		return KindSubscriptionChanged, "Your plan has changed."
	}
	return "", ""
}
