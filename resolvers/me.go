package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
)

// customerImplementors are the type conditions a selection on Customer satisfies.
var customerImplementors = []string{"Customer"}

// selectsSubscriptions reports whether the field being resolved (a Customer) has
// subscriptions in its selection, so that they can be read with the customer.
func selectsSubscriptions(ctx context.Context) bool {
	if graphql.GetFieldContext(ctx) == nil {
		return false
	}
	for _, f := range graphql.CollectFieldsCtx(ctx, customerImplementors) {
		if f.Name == "subscriptions" {
			return true
		}
	}
	return false
}
