package subscriptions

import (
	"context"
	"fmt"

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
	conn := &models.PaymentConnection{Edges: make([]*models.PaymentEdge, 0, len(rows)), PageInfo: &models.PageInfo{HasNextPage: more}}
	for _, p := range rows {
		conn.Edges = append(conn.Edges, &models.PaymentEdge{Node: p, Cursor: paging.Encode(p.CreatedAt, p.ID)})
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn, nil
}

// Shipments pages through a subscription's shipments, newest first. The caller must
// have been allowed to see the subscription.
func (s *Service) Shipments(ctx context.Context, subscriptionID string, first *int, after *string) (*models.ShipmentConnection, error) {
	rows, more, err := paging.Fetch[*models.Shipment](s.db.WithContext(ctx).Where("subscription_id = ?", subscriptionID), "created_at", first, after)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: shipments: %w", err)
	}
	conn := &models.ShipmentConnection{Edges: make([]*models.ShipmentEdge, 0, len(rows)), PageInfo: &models.PageInfo{HasNextPage: more}}
	for _, sh := range rows {
		conn.Edges = append(conn.Edges, &models.ShipmentEdge{Node: sh, Cursor: paging.Encode(sh.CreatedAt, sh.ID)})
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn, nil
}
