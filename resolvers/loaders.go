package resolvers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/scoville/scoville/models"
)

// loaders batch the reads that list fields would otherwise repeat per row (N+1).
// They live for one request, so nothing is cached across callers.
type loaders struct {
	plans                 *dataloader.Loader[string, *models.Plan]
	customerSubscriptions *dataloader.Loader[string, []*models.Subscription]
	payments              *dataloader.Loader[pageKey, *models.PaymentConnection]
	shipments             *dataloader.Loader[pageKey, *models.ShipmentConnection]
}

// loaderWait is how long a loader gathers keys before its batch runs.
const loaderWait = time.Millisecond

type loadersKey struct{}

// errPlanMissing means a subscription points at a plan that no longer exists.
var errPlanMissing = errors.New("plan not found")

// Loaders is HTTP middleware that gives each request its own loaders.
func (r *Resolver) Loaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		l := &loaders{
			plans: dataloader.NewBatchedLoader(r.batchPlans, dataloader.WithWait[string, *models.Plan](time.Millisecond),
				dataloader.WithCache[string, *models.Plan](&dataloader.NoCache[string, *models.Plan]{})),
			customerSubscriptions: dataloader.NewBatchedLoader(r.batchCustomerSubscriptions,
				dataloader.WithWait[string, []*models.Subscription](time.Millisecond),
				dataloader.WithCache[string, []*models.Subscription](&dataloader.NoCache[string, []*models.Subscription]{})),
			payments:  newPageLoader(r.Subscriptions.PaymentsOf),
			shipments: newPageLoader(r.Subscriptions.ShipmentsOf),
		}
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), loadersKey{}, l)))
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
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok {
		return l.plans.Load(ctx, id)()
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
