package e2e

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOneRequestLeavesOneRefusalEntry: a customer selecting five staff-only fields
// (two of them twice under aliases, one on a list of payments) in one request leaves
// exactly one *.forbidden audit entry, not one per field.
func TestOneRequestLeavesOneRefusalEntry(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, nil)
	s.paidPayment("five-fields", 1500)
	tok := s.token("five-fields")

	resp := s.gql(tok, `{ me {
		providerCustomerId again: providerCustomerId
		subscriptions {
			providerSubscriptionId twice: providerSubscriptionId
			payments { edges { node { id providerPaymentId } } }
		}
	} }`, nil)
	require.Equal(t, []string{"FORBIDDEN", "FORBIDDEN", "FORBIDDEN", "FORBIDDEN", "FORBIDDEN"}, resp.codes(), resp.Raw)
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE actor_subject = 'five-fields' AND action LIKE '%.forbidden'`),
		"one entry for the request: %v", s.actions("five-fields"))
	require.Equal(t, []string{"Customer.providerCustomerId.forbidden"}, s.actions("five-fields"))

	s.gql(tok, `{ me { subscriptions { providerSubscriptionId } } }`, nil)
	require.Len(t, s.actions("five-fields"), 2, "the next request is its own entry")
}
