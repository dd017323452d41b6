package resolvers

import (
	"context"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/scoville/scoville/models"
)

// batchCustomerSubscriptions answers in key order, as dataloader requires: one query
// for every customer of a listed page.
func (r *Resolver) batchCustomerSubscriptions(ctx context.Context, customerIDs []string) []*dataloader.Result[[]*models.Subscription] {
	found, err := r.Subscriptions.ForCustomers(ctx, customerIDs)
	out := make([]*dataloader.Result[[]*models.Subscription], len(customerIDs))
	for i, id := range customerIDs {
		if err != nil {
			out[i] = &dataloader.Result[[]*models.Subscription]{Error: err}
			continue
		}
		subs := found[id]
		if subs == nil {
			subs = []*models.Subscription{}
		}
		out[i] = &dataloader.Result[[]*models.Subscription]{Data: subs}
	}
	return out
}

// customerSubscriptions loads a customer's subscriptions, newest first, through the
// request's loader, or directly when there is none.
func (r *Resolver) customerSubscriptions(ctx context.Context, customerID string) ([]*models.Subscription, error) {
	if l, ok := ctx.Value(loadersSlot).(*loaders); ok {
		return l.customerSubscriptionsLoader().Load(ctx, customerID)()
	}
	return r.Subscriptions.ForCustomer(ctx, customerID)
}
