package resolvers

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/requestscope"
)

// loaders batch the reads that list fields would otherwise repeat per row (N+1).
// They live for one request, so nothing is cached across callers. Each loader is
// built the first time a resolver of the request asks for it: most requests use
// none (Me reads its subscriptions and plans itself).
type loaders struct {
	r *Resolver

	mu                    sync.Mutex
	plans                 *dataloader.Loader[string, *models.Plan]
	customerSubscriptions *dataloader.Loader[string, []*models.Subscription]
	payments              *dataloader.Loader[pageKey, *models.PaymentConnection]
	shipments             *dataloader.Loader[pageKey, *models.ShipmentConnection]
}

// lazy returns *field, built by build the first time; resolvers run concurrently.
func lazy[T any](l *loaders, field **T, build func() *T) *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if *field == nil {
		*field = build()
	}
	return *field
}

func (l *loaders) planLoader() *dataloader.Loader[string, *models.Plan] {
	return lazy(l, &l.plans, func() *dataloader.Loader[string, *models.Plan] {
		return dataloader.NewBatchedLoader(l.r.batchPlans, dataloader.WithWait[string, *models.Plan](loaderWait),
			dataloader.WithCache[string, *models.Plan](&dataloader.NoCache[string, *models.Plan]{}))
	})
}

func (l *loaders) customerSubscriptionsLoader() *dataloader.Loader[string, []*models.Subscription] {
	return lazy(l, &l.customerSubscriptions, func() *dataloader.Loader[string, []*models.Subscription] {
		return dataloader.NewBatchedLoader(l.r.batchCustomerSubscriptions,
			dataloader.WithWait[string, []*models.Subscription](loaderWait),
			dataloader.WithCache[string, []*models.Subscription](&dataloader.NoCache[string, []*models.Subscription]{}))
	})
}

func (l *loaders) paymentsLoader() *dataloader.Loader[pageKey, *models.PaymentConnection] {
	return lazy(l, &l.payments, func() *dataloader.Loader[pageKey, *models.PaymentConnection] {
		return newPageLoader(l.r.Subscriptions.PaymentsOf)
	})
}

func (l *loaders) shipmentsLoader() *dataloader.Loader[pageKey, *models.ShipmentConnection] {
	return lazy(l, &l.shipments, func() *dataloader.Loader[pageKey, *models.ShipmentConnection] {
		return newPageLoader(l.r.Subscriptions.ShipmentsOf)
	})
}

// loaderWait is how long a loader gathers keys before its batch runs.
const loaderWait = time.Millisecond

// loadersSlot holds the request's loaders.
var loadersSlot = requestscope.NewSlot()

// errPlanMissing means a subscription points at a plan that no longer exists.
var errPlanMissing = errors.New("plan not found")

// Loaders is HTTP middleware that gives each request its own loaders, each built
// when the request first needs it.
func (r *Resolver) Loaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		next.ServeHTTP(w, requestscope.Set(req, loadersSlot, &loaders{r: r}))
	})
}

// batchPlans answers in key order, as dataloader requires.
func (r *Resolver) batchPlans(ctx context.Context, ids []string) []*dataloader.Result[*models.Plan] {
	found, err := r.Catalog.PlansByID(ctx, ids)
	out := make([]*dataloader.Result[*models.Plan], len(ids))
	for i, id := range ids {
		switch p, ok := found[id]; {
		case err != nil:
			out[i] = &dataloader.Result[*models.Plan]{Error: err}
		case !ok:
			out[i] = &dataloader.Result[*models.Plan]{Error: errPlanMissing}
		default:
			out[i] = &dataloader.Result[*models.Plan]{Data: p}
		}
	}
	return out
}

// plan loads one plan through the request's loader, or directly when there is none.
func (r *Resolver) plan(ctx context.Context, id string) (*models.Plan, error) {
	if l, ok := ctx.Value(loadersSlot).(*loaders); ok {
		return l.planLoader().Load(ctx, id)()
	}
	found, err := r.Catalog.PlansByID(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if p, ok := found[id]; ok {
		return p, nil
	}
	return nil, errPlanMissing
}
