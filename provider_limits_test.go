package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// stripeWrites counts the POSTs the fake Stripe has received so far.
func (s *shop) stripeWrites() int {
	n := 0
	for _, r := range s.stripe.Requests() {
		if r.Method == http.MethodPost {
			n++
		}
	}
	return n
}

// aliasedPauses is one mutation pausing subscription id under n aliases, each with its
// own idempotency key, so each would be its own write at Stripe.
func aliasedPauses(id, prefix string, n int) string {
	var b strings.Builder
	b.WriteString("mutation {")
	for i := range n {
		fmt.Fprintf(&b, ` p%d: pauseSubscription(input: {subscriptionId: %q, idempotencyKey: "%s-%d"}) { subscription { status } userErrors { code } }`, i, id, prefix, i)
	}
	b.WriteString(" }")
	return b.String()
}

// TestEveryProviderFieldIsChargedToThePaymentAllowance: aliases must not multiply
// Stripe writes. Thirty aliased pauseSubscription fields cost thirty payment tokens,
// so with an allowance of one per half minute the request is refused whole and
// Stripe sees nothing; and a single pause is charged like any other provider call.
func TestEveryProviderFieldIsChargedToThePaymentAllowance(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, map[string]string{"RATE_LIMIT_PAYMENTS_PER_MINUTE": "2"}) // burst 1
	tok := s.token("alias-payer")
	id := s.activeSubscription(tok, "alias-create") // the caller's one token
	writes := s.stripeWrites()

	res := s.gql(tok, aliasedPauses(id, "thirty", 30), nil)
	require.Equal(t, http.StatusTooManyRequests, res.Status, res.Raw)
	require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), res.Raw)
	require.Nil(t, res.Data)
	require.Equal(t, writes, s.stripeWrites(), "Stripe saw no write of the refused request")
	require.Equal(t, "ACTIVE", s.status(id))

	res = s.gql(tok, aliasedPauses(id, "one", 1), nil)
	require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), "pauseSubscription is charged: %s", res.Raw)
	res = s.gql(tok, `mutation { r: resumeSubscription(input: {subscriptionId: "`+id+`", idempotencyKey: "r"}) { userErrors { code } } }`, nil)
	require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), "resumeSubscription is charged: %s", res.Raw)
	require.Equal(t, writes, s.stripeWrites())
	require.Equal(t, "ACTIVE", s.status(id))

	_, metrics := s.get("/metrics")
	require.Contains(t, metrics, `scoville_rate_limited_total{scope="payment"} 3`)
}
