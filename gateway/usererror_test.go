package gateway

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

func TestAsUserError(t *testing.T) {
	t.Parallel()
	const refused = "the payment provider refused the request"
	unavailable := &unavailableError{attempts: 3, cause: context.DeadlineExceeded, detail: "timeout"}
	cases := []struct {
		name    string
		err     error
		code    models.UserErrorCode // "" means err comes back unchanged
		message string
	}{
		{"card_error", &ProviderError{HTTPStatus: 402, Type: "card_error", Code: "card_declined", DeclineCode: "insufficient_funds"},
			models.UserErrorPaymentDeclined, "the card was declined; use another payment method"},
		{"card_declined code on another type", &ProviderError{HTTPStatus: 402, Type: "invalid_request_error", Code: "card_declined"},
			models.UserErrorPaymentDeclined, "the card was declined; use another payment method"},
		{"declined, wrapped", fmt.Errorf("privacy: cancel: %w", &ProviderError{HTTPStatus: 402, Type: "card_error"}),
			models.UserErrorPaymentDeclined, "the card was declined; use another payment method"},
		{"refusal with a code", &ProviderError{HTTPStatus: 400, Type: "invalid_request_error", Code: "parameter_invalid_integer", Message: "a@example.com is bad"},
			models.UserErrorProviderRejected, refused + " (parameter_invalid_integer)"},
		{"refusal without a code", &ProviderError{HTTPStatus: 404, Type: "invalid_request_error"},
			models.UserErrorProviderRejected, refused},
		{"not a 4xx", &ProviderError{HTTPStatus: 500, Type: "api_error"}, "", ""},
		{"unavailable", unavailable, "", ""},
		{"unavailable, wrapped", fmt.Errorf("subscriptions: %w", unavailable), "", ""},
		{"anything else", errors.New("gateway: unreadable answer from Stripe"), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := AsUserError(tc.err, refused)
			if tc.code == "" {
				require.Same(t, tc.err, got)
				return
			}
			var ue *models.UserError
			require.ErrorAs(t, got, &ue)
			require.Equal(t, tc.code, ue.Code)
			require.Equal(t, tc.message, ue.Message)
			require.NotContains(t, ue.Message, "example.com", "Stripe's free text never reaches the client")
		})
	}
	require.NoError(t, AsUserError(nil, refused))
}

func TestAPIStatus(t *testing.T) {
	t.Parallel()
	for stripe, want := range map[string]models.SubscriptionStatus{
		"incomplete":         models.SubscriptionIncomplete,
		"incomplete_expired": models.SubscriptionIncompleteExpired,
		"trialing":           models.SubscriptionTrialing,
		"active":             models.SubscriptionActive,
		"past_due":           models.SubscriptionPastDue,
		"unpaid":             models.SubscriptionUnpaid,
		"paused":             models.SubscriptionPaused,
		"canceled":           models.SubscriptionCanceled,
	} {
		require.Equal(t, want, Subscription{Status: stripe}.APIStatus(), stripe)
	}

	t.Run("collection paused shows as PAUSED while active or trialing", func(t *testing.T) {
		t.Parallel()
		for _, st := range []string{"active", "trialing"} {
			require.Equal(t, models.SubscriptionPaused, Subscription{Status: st, PauseBehavior: "void"}.APIStatus())
		}
		for _, st := range []string{"past_due", "canceled", "incomplete"} {
			require.Equal(t, Subscription{Status: st}.APIStatus(), Subscription{Status: st, PauseBehavior: "void"}.APIStatus())
		}
	})

	t.Run("an unknown status is neither active nor ended", func(t *testing.T) {
		t.Parallel()
		// A status Stripe may add, and look-alikes of known ones: none is trusted.
		for _, st := range []string{"", "on_hold", "Active", "ACTIVE", " active", "actıve", "canceled ", "CANCELED"} {
			got := Subscription{Status: st, PauseBehavior: "void"}.APIStatus()
			require.Equal(t, models.SubscriptionIncomplete, got, "%q", st)
			require.Equal(t, UnknownStatus, got)
			require.False(t, got.Ended(), "%q must not count as ended", st)
			require.NotEqual(t, models.SubscriptionActive, got)
		}
	})
}
