package subscriptions

import (
	"context"
	"fmt"
	"time"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
)

// Payments pages through a subscription's payments, newest first. The caller must
// have been allowed to see the subscription (Get) before asking for its payments.
func (s *Service) Payments(ctx context.Context, subscriptionID string, first *int, after *string) (*models.PaymentConnection, error) {
	rows, more, err := paging.Fetch[*models.Payment](s.db.WithContext(ctx).Where("subscription_id = ?", subscriptionID), "created_at", first, after)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: payments: %w", err)
	}
	return paging.Connection[models.PaymentConnection](rows, more, func(p *models.Payment) (time.Time, string) { return p.CreatedAt, p.ID }), nil
}

// Shipments pages through a subscription's shipments, newest first. The caller must
// have been allowed to see the subscription.
func (s *Service) Shipments(ctx context.Context, subscriptionID string, first *int, after *string) (*models.ShipmentConnection, error) {
	rows, more, err := paging.Fetch[*models.Shipment](s.db.WithContext(ctx).Where("subscription_id = ?", subscriptionID), "created_at", first, after)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: shipments: %w", err)
	}
	return paging.Connection[models.ShipmentConnection](rows, more, func(sh *models.Shipment) (time.Time, string) { return sh.CreatedAt, sh.ID }), nil
}

// PaymentsOf pages through the payments of several subscriptions in one statement,
// each newest first, every page of the same first/after, for a batching loader.
// Every subscription asked for has a connection, empty when it has no payments. The
// caller must have been allowed to see each subscription.
func (s *Service) PaymentsOf(ctx context.Context, subscriptionIDs []string, first *int, after *string) (map[string]*models.PaymentConnection, error) {
	return connectionsOf[models.PaymentConnection](ctx, s, "payments", subscriptionIDs,
		func(p *models.Payment) (string, time.Time, string) { return p.SubscriptionID, p.CreatedAt, p.ID }, first, after)
}

// ShipmentsOf pages through the shipments of several subscriptions in one statement,
// like PaymentsOf.
func (s *Service) ShipmentsOf(ctx context.Context, subscriptionIDs []string, first *int, after *string) (map[string]*models.ShipmentConnection, error) {
	return connectionsOf[models.ShipmentConnection](ctx, s, "shipments", subscriptionIDs,
		func(sh *models.Shipment) (string, time.Time, string) { return sh.SubscriptionID, sh.CreatedAt, sh.ID }, first, after)
}

// connectionsOf reads the rows of table (whose subscription_id names their
// subscription) of every subscription in ids in one statement, newest first by
// created_at, and returns a connection for each id, empty when it has none. place
// gives a row's subscription and its place in the list.
func connectionsOf[C paging.Conn[E], E paging.Edge[N], N any](ctx context.Context, s *Service, table string, ids []string,
	place func(N) (subscriptionID string, at time.Time, id string), first *int, after *string,
) (map[string]*C, error) {
	parentOf := func(r N) string { sub, _, _ := place(r); return sub }
	pages, more, err := paging.FetchEach(s.db.WithContext(ctx), "subscriptions", table, "subscription_id", "created_at", ids, parentOf, first, after)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: %s: %w", table, err)
	}
	pos := func(r N) (time.Time, string) { _, at, id := place(r); return at, id }
	out := make(map[string]*C, len(ids))
	for _, id := range ids {
		out[id] = paging.Connection[C](pages[id], more[id], pos)
	}
	return out, nil
}
