package gateway

import (
	"errors"

	"github.com/scoville/scoville/models"
)

// AsUserError is the one translation of a provider failure into what API.md shows,
// used by every service that calls Stripe:
//
//   - a declined card (IsCardDeclined) is PAYMENT_DECLINED: the customer must use
//     another payment method;
//   - any other refusal by Stripe (a 4xx *ProviderError) is PROVIDER_REJECTED, with
//     refused as the message followed by Stripe's error code when it gives one
//     (never Stripe's free text, which can echo input);
//   - ErrProviderUnavailable comes back unchanged, so the error presenter answers
//     PROVIDER_UNAVAILABLE (the outcome is unknown; retry with the same key), and so
//     does anything else (shown as INTERNAL).
//
// refused says, for the caller's operation, what was refused and what it means,
// e.g. "the payment provider refused to close the billing account; nothing was
// erased".
func AsUserError(err error, refused string) error {
	var pe *ProviderError
	switch {
	case err == nil || errors.Is(err, ErrProviderUnavailable):
		return err
	case IsCardDeclined(err):
		return models.NewUserError(models.UserErrorPaymentDeclined, "the card was declined; use another payment method")
	case errors.As(err, &pe) && pe.HTTPStatus >= 400 && pe.HTTPStatus < 500:
		msg := refused
		if pe.Code != "" {
			msg += " (" + pe.Code + ")"
		}
		return models.NewUserError(models.UserErrorProviderRejected, msg)
	}
	return err
}

// stripeStatuses are Stripe's subscription statuses, spelled as Stripe sends them.
var stripeStatuses = map[string]models.SubscriptionStatus{
	"incomplete":         models.SubscriptionIncomplete,
	"incomplete_expired": models.SubscriptionIncompleteExpired,
	"trialing":           models.SubscriptionTrialing,
	"active":             models.SubscriptionActive,
	"past_due":           models.SubscriptionPastDue,
	"unpaid":             models.SubscriptionUnpaid,
	"paused":             models.SubscriptionPaused,
	"canceled":           models.SubscriptionCanceled,
}

// UnknownStatus is what APIStatus gives for a status Stripe may add later (or any
// value it does not know): INCOMPLETE, which is neither active nor ended. Not
// active, so nothing ships and no "started" notice goes out on a guess; not ended,
// so nothing concludes the subscription is over (an erasure does not mark it
// canceled while Stripe might still bill it, and staff can still cancel it); and
// not final, so the next event or reconciliation read replaces it.
const UnknownStatus = models.SubscriptionIncomplete

// APIStatus is the subscription's status as API.md names it: Stripe's status,
// PAUSED while Stripe has paused collection of an active or trialing subscription,
// and UnknownStatus for a value Stripe does not document. It is the only mapping of
// Stripe's statuses.
func (s Subscription) APIStatus() models.SubscriptionStatus {
	st, ok := stripeStatuses[s.Status]
	if !ok {
		return UnknownStatus
	}
	if s.PauseBehavior != "" && (st == models.SubscriptionActive || st == models.SubscriptionTrialing) {
		return models.SubscriptionPaused
	}
	return st
}
