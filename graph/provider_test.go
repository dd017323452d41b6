package graph

import (
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/scoville/scoville/ratelimit"
)

// callsProvider classifies every root field by whether its resolver calls the payment
// gateway (Stripe) while it runs. It must name every Query and Mutation field exactly:
// a field added or renamed fails the test below until it is classified here and the
// schema agrees. Marking a field false is a decision to make in review.
var callsProvider = map[string]bool{
	"Mutation.startCheckout":              true, // checkout session, customer, promotion code
	"Mutation.createSubscription":         true,
	"Mutation.changeSubscriptionPlan":     true,
	"Mutation.pauseSubscription":          true,
	"Mutation.resumeSubscription":         true,
	"Mutation.cancelSubscription":         true,
	"Mutation.createBillingPortalSession": true,
	"Mutation.resyncSubscription":         true, // reads the subscription at Stripe
	"Mutation.refundPayment":              true,
	"Mutation.adminCancelSubscription":    true,
	"Mutation.createPlan":                 true, // product and price
	"Mutation.deleteMyAccount":            true, // cancels and deletes at Stripe
	"Mutation.updateShippingAddress":      false,
	"Mutation.replayWebhookEvent":         false, // enqueues; the worker's calls are not the caller's
	"Query.plans":                         false,
	"Query.me":                            false,
	"Query.subscription":                  false,
	"Query.adminSubscriptions":            false,
	"Query.adminCustomers":                false,
	"Query.auditLog":                      false,
	"Query.exportMyData":                  false,
	"Query.webhookEvents":                 false,
	"Live.subscriptionUpdated":            false, // reads our database only
	// Outgoing webhooks: our database and queue only.
	"Query.webhookEndpoints":               false,
	"Query.webhookDeliveries":              false,
	"Mutation.createWebhookEndpoint":       false,
	"Mutation.updateWebhookEndpoint":       false,
	"Mutation.rotateWebhookEndpointSecret": false,
	"Mutation.redeliverWebhook":            false,
}

// TestFieldsThatCallTheProviderCarryTheDirective pins the payment allowance to the
// schema: every root field that calls Stripe carries @provider, which the rate limit
// reads from the parsed schema, and no other does.
func TestFieldsThatCallTheProviderCarryTheDirective(t *testing.T) {
	t.Parallel()
	schema := NewExecutableSchema(Config{}).Schema()
	require.NotNil(t, schema.Directives[ratelimit.ProviderDirective], "the schema declares @%s", ratelimit.ProviderDirective)
	var seen []string
	for _, def := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		for _, f := range def.Fields {
			if len(f.Name) >= 2 && f.Name[:2] == "__" {
				continue
			}
			name := def.Name + "." + f.Name
			seen = append(seen, name)
			want, ok := callsProvider[name]
			require.True(t, ok, "%s is not classified in callsProvider: does its resolver call the payment gateway?", name)
			marked := f.Directives.ForName(ratelimit.ProviderDirective) != nil
			require.Equal(t, want, marked, "%s: calls the provider %v, carries @%s %v", name, want, ratelimit.ProviderDirective, marked)
		}
	}
	var listed []string
	for name := range callsProvider {
		listed = append(listed, name)
	}
	sort.Strings(seen)
	sort.Strings(listed)
	require.Equal(t, listed, seen, "callsProvider names exactly the schema's root fields")
	for _, typ := range schema.Types {
		if typ == schema.Query || typ == schema.Mutation || typ == schema.Subscription {
			continue
		}
		require.False(t, slices.ContainsFunc(typ.Fields, func(f *ast.FieldDefinition) bool {
			return f.Directives.ForName(ratelimit.ProviderDirective) != nil
		}), "%s: @%s is charged on root fields only", typ.Name, ratelimit.ProviderDirective)
	}
}
