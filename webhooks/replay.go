package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
)

// ActionReplay names replayWebhookEvent in the audit log.
const ActionReplay = "replayWebhookEvent"

// Replayer lets support run a stored event again (WH-5, OPS-4): a FAILED event gets
// a fresh set of attempts; a PROCESSED or IGNORED one is applied again, which the
// appliers make harmless (each effect is keyed on the object, never on the delivery).
type Replayer struct {
	db     *gorm.DB
	queue  *jobs.Client
	logger *slog.Logger
}

// NewReplayer builds the replayer; queue inserts the event's job.
func NewReplayer(db *gorm.DB, queue *jobs.Client, logger *slog.Logger) *Replayer {
	return &Replayer{db: db, queue: queue, logger: logger}
}

// eventSummary is what the audit log keeps of an event.
type eventSummary struct {
	Status   models.WebhookEventStatus `json:"status"`
	Attempts int                       `json:"attempts"`
}

// Replay re-arms the event (status RECEIVED) and enqueues its job, in one
// transaction with the audit entry. An event still waiting (RECEIVED) already has a
// job and is refused as INVALID_STATE.
func (r *Replayer) Replay(ctx context.Context, p *auth.Principal, eventID, reason string) (*models.WebhookEvent, error) {
	reason, err := subscriptions.Reason(reason, "input", "reason")
	if err != nil {
		return nil, err
	}
	notFound := models.NewUserError(models.UserErrorNotFound, "no such event", "input", "eventId")
	if uuid.Validate(eventID) != nil {
		return nil, notFound
	}
	var ev models.WebhookEvent
	err = r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Omit("payload").Take(&ev, "id = ?", eventID).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return notFound
		}
		if err != nil {
			return fmt.Errorf("webhooks: replay: lock: %w", err)
		}
		if ev.Status == models.WebhookReceived {
			return models.NewUserError(models.UserErrorInvalidState, "the event is waiting to be processed already", "input", "eventId")
		}
		before := eventSummary{Status: ev.Status, Attempts: ev.Attempts}
		if err := tx.Model(&models.WebhookEvent{}).Where("id = ?", ev.ID).Update("status", models.WebhookReceived).Error; err != nil {
			return fmt.Errorf("webhooks: replay: re-arm: %w", err)
		}
		ev.Status = models.WebhookReceived
		sqlTx, err := jobs.SQLTx(tx)
		if err != nil {
			return err
		}
		if _, err := r.queue.InsertTx(ctx, sqlTx, ProcessArgs{EventID: ev.ID, Replay: true}, nil); err != nil {
			return fmt.Errorf("webhooks: replay: enqueue: %w", err)
		}
		return audit.Record(ctx, tx, p, audit.Action{
			Name: ActionReplay, TargetType: audit.TargetWebhookEvent, TargetID: ev.ID, Reason: reason,
			Before: before, After: eventSummary{Status: ev.Status, Attempts: ev.Attempts},
		})
	})
	if err != nil {
		return nil, err
	}
	r.logger.InfoContext(ctx, "webhook event replayed", "event_id", ev.ProviderEventID, "event_type", ev.Type)
	return &ev, nil
}
