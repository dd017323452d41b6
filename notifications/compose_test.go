package notifications

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompose(t *testing.T) {
	t.Parallel()
	full := map[string]string{
		DataPlan:        "Hot box, monthly",
		DataChange:      "Your plan changes to Hot box, quarterly at the end of this period.",
		DataAmount:      "$24.00",
		DataURL:         "https://invoice.stripe.com/i/acct_1/test_abc",
		DataNextAttempt: "2025-03-04T05:06:00Z",
		DataPeriodEnd:   "2025-04-01T00:00:00+02:00",
		DataResumesAt:   "2025-05-01T00:00:00Z",
	}
	var (
		plan        = full[DataPlan]
		change      = full[DataChange]
		amount      = full[DataAmount]
		link        = full[DataURL]
		nextAttempt = "March 4, 2025 at 05:06 UTC"
		periodEnd   = "Monday, March 31, 2025" // in UTC
		resumesAt   = "Thursday, May 1, 2025"
	)

	for _, tc := range []struct {
		kind        Kind
		inSubject   []string
		inText      []string
		withoutData string // what the text says when given no data
	}{
		{KindSubscriptionStarted, nil, []string{plan, change, periodEnd}, "Thanks for subscribing! Your subscription is now active."},
		{KindSubscriptionChanged, nil, []string{plan, change, periodEnd}, "We've updated your subscription."},
		{KindSubscriptionPaused, nil, []string{plan, change, resumesAt}, "You can resume it any time"},
		{KindSubscriptionResumed, nil, []string{plan, change, periodEnd}, "Your subscription is active again."},
		{KindSubscriptionCanceled, nil, []string{plan, change}, "Your subscription has been canceled"},
		{KindPaymentSucceeded, []string{amount}, []string{plan, amount, periodEnd, link}, "We received your payment for your subscription."},
		{KindPaymentFailed, nil, []string{plan, amount, link, nextAttempt, "update your payment method"}, "We won't try this payment again automatically"},
		{KindPaymentActionRequired, nil, []string{plan, amount, link, nextAttempt, "confirm"}, "sign in to your account to confirm"},
		{KindPaymentRefunded, []string{amount}, []string{plan, amount, link, "business days"}, "We've refunded your payment for your subscription."},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			subject, text, err := Compose(tc.kind, full)
			require.NoError(t, err)
			require.NotEmpty(t, subject)
			require.NotContains(t, subject, "\n")
			for _, s := range tc.inSubject {
				require.Contains(t, subject, s)
			}
			for _, s := range tc.inText {
				require.Contains(t, text, s)
			}
			require.True(t, strings.HasPrefix(text, "Hello,\n\n"), text)
			require.True(t, strings.HasSuffix(text, "\n\n"+signature+"\n"), text)

			subject, text, err = Compose(tc.kind, nil)
			require.NoError(t, err)
			require.NotEmpty(t, subject)
			require.Contains(t, text, tc.withoutData)
			for _, artefact := range []string{"()", "  ", "\n\n\n", " .", "of  "} {
				require.NotContains(t, text, artefact)
			}
		})
	}

	t.Run("every kind has a message", func(t *testing.T) {
		t.Parallel()
		require.Len(t, messages, len(kinds))
		for _, k := range kinds {
			require.Contains(t, messages, k)
		}
	})

	t.Run("values are flattened to one line", func(t *testing.T) {
		t.Parallel()
		subject, text, err := Compose(KindPaymentSucceeded, map[string]string{
			DataAmount: "$24.00\r\nBcc: eve@example.com", DataPlan: "Hot\nbox\x00",
		})
		require.NoError(t, err)
		require.Equal(t, "Payment received: $24.00 Bcc: eve@example.com", subject)
		require.Contains(t, text, "your subscription (Hot box)")
	})

	t.Run("refuses what it cannot render", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			kind Kind
			data map[string]string
			want string
		}{
			"unknown kind":  {"birthday", nil, "unknown kind"},
			"empty kind":    {"", nil, "unknown kind"},
			"script URL":    {KindPaymentFailed, map[string]string{DataURL: "javascript:alert(1)"}, "URL"},
			"relative URL":  {KindPaymentFailed, map[string]string{DataURL: "/invoices/1"}, "URL"},
			"hostless URL":  {KindPaymentFailed, map[string]string{DataURL: "https://"}, "URL"},
			"URL with a CR": {KindPaymentFailed, map[string]string{DataURL: "https://pay.example/a\rb"}, "URL"},
			"bad time":      {KindPaymentFailed, map[string]string{DataNextAttempt: "next Tuesday"}, "nextAttempt"},
			"date only":     {KindSubscriptionPaused, map[string]string{DataResumesAt: "2025-05-01"}, "resumesAt"},
		} {
			_, _, err := Compose(tc.kind, tc.data)
			require.ErrorContains(t, err, tc.want, name)
		}
	})
}
