package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
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
// transaction with the audit entry. An event still waiting (RECEIVED with a job that
// will run) is refused as INVALID_STATE; one RECEIVED with no such job (its job was
// discarded) is stuck and is replayed.
func (r *Replayer) Replay(ctx context.Context, p *auth.Principal, eventID, reason string) (*models.WebhookEvent, error) {
	reason, err := audit.Reason(reason, "input", "reason")
	if err != nil {
		return nil, err
	}
	notFound := models.NewUserError(models.UserErrorNotFound, "no such event", "input", "eventId")
	if !models.ValidID(eventID) {
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
			waiting, err := hasLiveJob(tx, ev.ID)
			if err != nil {
				return err
			}
			if waiting {
				return models.NewUserError(models.UserErrorInvalidState, "the event is waiting to be processed already", "input", "eventId")
			}
			// RECEIVED with no job left to apply it: stuck, so replayable.
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

// hasLiveJob reports whether a job that has not finished will apply the event: its
// own ProcessArgs job, or the batch job that is to give it one.
func hasLiveJob(tx *gorm.DB, eventID string) (bool, error) {
	var live bool
	err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM river_job
		WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
		AND ((kind = ? AND args @> jsonb_build_object('eventId', ?::text))
		  OR (kind = ? AND args @> jsonb_build_object('eventIds', jsonb_build_array(?::text)))))`,
		ProcessArgs{}.Kind(), eventID, EnqueueArgs{}.Kind(), eventID).Scan(&live).Error
	if err != nil {
		return false, fmt.Errorf("webhooks: replay: jobs of the event: %w", err)
	}
	return live, nil
}
