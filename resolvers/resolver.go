// Package resolvers maps GraphQL fields to service calls. Resolvers hold no business
// rules: they read the caller from the context, call one service method and return its
// result; access rules live in schema directives and in the services.
package resolvers

import (
	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/catalog"
	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/live"
	"github.com/scoville/scoville/outbox"
	"github.com/scoville/scoville/privacy"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks"
)

// Resolver is the root resolver; it holds only the services the fields call.
type Resolver struct {
	Catalog       *catalog.Service
	Customers     *customers.Service
	Subscriptions *subscriptions.Service
	Inbox         *webhooks.Events
	Audit         *audit.Log
	Admin         *subscriptions.Admin
	// Syncer re-reads subscriptions from Stripe (resyncSubscription).
	Syncer *subscriptions.Syncer
	// Replayer runs stored webhook events again (replayWebhookEvent).
	Replayer *webhooks.Replayer
	// Privacy serves exportMyData and deleteMyAccount (DAT-3).
	Privacy *privacy.Service
	// Live fans committed changes out to subscriptionUpdated operations.
	Updates *live.Hub
	// Outbox manages outgoing webhook endpoints and deliveries.
	Outbox *outbox.Service
}
