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
