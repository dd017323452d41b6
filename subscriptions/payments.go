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
	limit, cursor, err := paging.Args(first, after)
	if err != nil {
		return nil, err
	}
	q := s.db.WithContext(ctx).Where("subscription_id = ?", subscriptionID)
	if cursor != nil {
		q = q.Where("(created_at, id) < (?, ?)", cursor.CreatedAt, cursor.ID)
	}
	var rows []*models.Payment
	if err := q.Order("created_at DESC, id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("subscriptions: payments: %w", err)
	}
	conn := &models.PaymentConnection{Edges: []*models.PaymentEdge{}, PageInfo: &models.PageInfo{}}
	if len(rows) > limit {
		rows = rows[:limit]
		conn.PageInfo.HasNextPage = true
	}
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
