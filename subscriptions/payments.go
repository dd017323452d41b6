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
	edges, info := paging.Edges(rows, more, func(p *models.Payment) (time.Time, string) { return p.CreatedAt, p.ID },
		func(p *models.Payment, cursor string) *models.PaymentEdge {
			return &models.PaymentEdge{Node: p, Cursor: cursor}
		})
	return &models.PaymentConnection{Edges: edges, PageInfo: info}, nil
}

// Shipments pages through a subscription's shipments, newest first. The caller must
// have been allowed to see the subscription.
func (s *Service) Shipments(ctx context.Context, subscriptionID string, first *int, after *string) (*models.ShipmentConnection, error) {
	rows, more, err := paging.Fetch[*models.Shipment](s.db.WithContext(ctx).Where("subscription_id = ?", subscriptionID), "created_at", first, after)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: shipments: %w", err)
	}
	edges, info := paging.Edges(rows, more, func(sh *models.Shipment) (time.Time, string) { return sh.CreatedAt, sh.ID },
		func(sh *models.Shipment, cursor string) *models.ShipmentEdge {
			return &models.ShipmentEdge{Node: sh, Cursor: cursor}
		})
	return &models.ShipmentConnection{Edges: edges, PageInfo: info}, nil
}

// PaymentsOf pages through the payments of several subscriptions in one statement,
// each newest first, every page of the same first/after, for a batching loader.
// Every subscription asked for has a connection, empty when it has no payments. The
// caller must have been allowed to see each subscription.
func (s *Service) PaymentsOf(ctx context.Context, subscriptionIDs []string, first *int, after *string) (map[string]*models.PaymentConnection, error) {
	pages, more, err := paging.FetchEach(s.db.WithContext(ctx), "subscriptions", "payments", "subscription_id", "created_at",
		subscriptionIDs, func(p *models.Payment) string { return p.SubscriptionID }, first, after)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: payments: %w", err)
	}
	out := make(map[string]*models.PaymentConnection, len(subscriptionIDs))
	for _, id := range subscriptionIDs {
		edges, info := paging.Edges(pages[id], more[id], func(p *models.Payment) (time.Time, string) { return p.CreatedAt, p.ID },
			func(p *models.Payment, cursor string) *models.PaymentEdge {
				return &models.PaymentEdge{Node: p, Cursor: cursor}
			})
		out[id] = &models.PaymentConnection{Edges: edges, PageInfo: info}
	}
	return out, nil
}

// ShipmentsOf pages through the shipments of several subscriptions in one statement,
// like PaymentsOf.
func (s *Service) ShipmentsOf(ctx context.Context, subscriptionIDs []string, first *int, after *string) (map[string]*models.ShipmentConnection, error) {
	pages, more, err := paging.FetchEach(s.db.WithContext(ctx), "subscriptions", "shipments", "subscription_id", "created_at",
		subscriptionIDs, func(sh *models.Shipment) string { return sh.SubscriptionID }, first, after)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: shipments: %w", err)
	}
	out := make(map[string]*models.ShipmentConnection, len(subscriptionIDs))
	for _, id := range subscriptionIDs {
		edges, info := paging.Edges(pages[id], more[id], func(sh *models.Shipment) (time.Time, string) { return sh.CreatedAt, sh.ID },
			func(sh *models.Shipment, cursor string) *models.ShipmentEdge {
				return &models.ShipmentEdge{Node: sh, Cursor: cursor}
			})
		out[id] = &models.ShipmentConnection{Edges: edges, PageInfo: info}
	}
	return out, nil
}
