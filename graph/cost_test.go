package graph

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
)

// TestBoundedListsArePricedByTheirSize: Customer.subscriptions has no first argument
// but is bounded by paging.MaxList, so the complexity limit prices it as that many
// subscriptions, each with what it selects, through the real handler.
func TestBoundedListsArePricedByTheirSize(t *testing.T) {
	t.Parallel()
	e := newTestEndpoint(t, HandlerConfig{MaxComplexity: 1})
	// Objects cost 1, scalars 0; payments without first is a page of DefaultFirst.
	perSubscription := 1 + paging.DefaultFirst*(1+1) // payments { edges { node { id } } }
	cases := map[string]int{
		`{ me { subscriptions { id } } }`:                                                                                         1 + (1 + paging.MaxList*1),
		`{ me { subscriptions { payments { edges { node { id } } } } } }`:                                                         1 + (1 + paging.MaxList*perSubscription),
		`{ me { subscriptions { payments { edges { node { id } } } shipments { edges { node { id } } } } } }`:                     1 + (1 + paging.MaxList*2*perSubscription),
		`{ me { subscriptions { payments(first: 2) { edges { node { id } } } shipments(first: 2) { edges { node { id } } } } } }`: 1 + (1 + paging.MaxList*2*(1+2*2)),
	}
	for q, want := range cases {
		res := e.query(q, nil, customer)
		require.Equal(t, models.CodeComplexityLimit, res.code(), res.Raw)
		require.Equal(t, fmt.Sprintf("operation has complexity %d, which exceeds the limit of 1", want), res.Errors[0].Message, q)
	}
	// The customer dashboard (every subscription with its default pages) stays within
	// the default limit.
	d := newTestEndpoint(t, HandlerConfig{})
	res := d.query(`{ me { subscriptions { id plan { id } payments { edges { node { id amount { amount } } } } shipments { edges { node { id address { city } } } } } } }`, nil, customer)
	require.NotEqual(t, models.CodeComplexityLimit, res.code(), res.Raw)
}
