package webhooks

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
)

// Events is the staff's view of the inbox (WH-5): what came in, and what became of it.
type Events struct{ db *gorm.DB }

// NewEvents builds the view.
func NewEvents(db *gorm.DB) *Events { return &Events{db: db} }

// List pages through stored events newest first, optionally of one status. The
// payload is not loaded: it is the provider's raw data, not for listing.
func (e *Events) List(ctx context.Context, status *models.WebhookEventStatus, first *int, after *string) (*models.WebhookEventConnection, error) {
	q := e.db.WithContext(ctx).Omit("payload")
	if status != nil {
		q = q.Where("status = ?", *status)
	}
	rows, more, err := paging.Fetch[*models.WebhookEvent](q, "received_at", first, after)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list: %w", err)
	}
	return paging.Connection[models.WebhookEventConnection](rows, more, func(ev *models.WebhookEvent) (time.Time, string) { return ev.ReceivedAt, ev.ID }), nil
}
