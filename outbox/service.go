package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/audit"
	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
)

// Operations, which scope idempotency keys and name audit entries.
const (
	OpCreateEndpoint = "createWebhookEndpoint"
	OpUpdateEndpoint = "updateWebhookEndpoint"
	OpRotateSecret   = "rotateWebhookEndpointSecret"
	OpRedeliver      = "redeliverWebhook"
)

// RotationOverlap is how long the previous secret keeps signing after a rotation.
const RotationOverlap = 24 * time.Hour

// maxDescriptionRunes bounds an endpoint's description.
const maxDescriptionRunes = 2000

// Service manages endpoints (ADMIN) and deliveries (SUPPORT). Every change is
// audited with its reason in the change's transaction.
type Service struct {
	db      *gorm.DB
	idem    *idempotency.Store
	targets Targets
	now     func() time.Time
}

// NewService builds the service; now is its clock (nil: time.Now), which dates a
// rotation's overlap.
func NewService(db *gorm.DB, idem *idempotency.Store, targets Targets, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, idem: idem, targets: targets, now: now}
}

// endpointOutcome is what the endpoint mutations store with their idempotency key.
type endpointOutcome struct {
	EndpointID string              `json:"endpointId,omitempty"`
	Secret     string              `json:"secret,omitempty"`
	UserErrors []*models.UserError `json:"userErrors,omitempty"`
}

// CreateEndpoint registers an endpoint and returns it with its secret, which is
// shown only in this answer (and its replay).
func (s *Service) CreateEndpoint(ctx context.Context, p *auth.Principal, in models.CreateWebhookEndpointInput) (*models.WebhookEndpoint, string, error) {
	reason, err := audit.Reason(in.Reason, "input", "reason")
	if err != nil {
		return nil, "", err
	}
	desc := ""
	if in.Description != nil {
		desc = strings.TrimSpace(*in.Description)
	}
	if err := checkDescription(desc); err != nil {
		return nil, "", err
	}
	types, err := checkEventTypes(in.EventTypes)
	if err != nil {
		return nil, "", err
	}
	scope := idempotency.ScopeFor(p.Issuer, p.Subject, OpCreateEndpoint, in.IdempotencyKey)
	out, _, err := idempotency.Run(ctx, s.idem, scope, in, func(ctx context.Context) (endpointOutcome, error) {
		// Checked for a new request only: the answer of a used key replays.
		if err := s.targets.Check(ctx, in.URL); err != nil {
			return endpointOutcome{}, idempotency.NothingDone{Err: urlError()}
		}
		secret, err := newSecret()
		if err != nil {
			return endpointOutcome{}, err
		}
		row := endpointRow{ID: scope.DerivedID(), URL: in.URL, Description: desc, EventTypes: types, Enabled: true, Secret: secret}
		err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			// A retry after a crash before the answer was kept: the earlier secret
			// was never shown, so this run's replaces it.
			err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}},
				DoUpdates: clause.AssignmentColumns([]string{"secret", "updated_at"})}).Create(&row).Error
			if err != nil {
				return err
			}
			return audit.Record(ctx, tx, p, audit.Action{
				Name: OpCreateEndpoint, TargetType: audit.TargetWebhookEndpoint, TargetID: row.ID, Reason: reason,
				After: audited(&row),
			})
		})
		if err != nil {
			return endpointOutcome{}, fmt.Errorf("outbox: create endpoint: %w", err)
		}
		return endpointOutcome{EndpointID: row.ID, Secret: secret}, nil
	})
	return s.answer(ctx, out, err)
}

// UpdateEndpoint changes the fields given; enabling an endpoint clears why it was
// disabled and its failing time.
func (s *Service) UpdateEndpoint(ctx context.Context, p *auth.Principal, in models.UpdateWebhookEndpointInput) (*models.WebhookEndpoint, error) {
	reason, err := audit.Reason(in.Reason, "input", "reason")
	if err != nil {
		return nil, err
	}
	if !models.ValidID(in.EndpointID) {
		return nil, notFound()
	}
	var desc *string
	if in.Description != nil {
		d := strings.TrimSpace(*in.Description)
		if err := checkDescription(d); err != nil {
			return nil, err
		}
		desc = &d
	}
	var types []string
	if in.EventTypes != nil {
		if types, err = checkEventTypes(in.EventTypes); err != nil {
			return nil, err
		}
	}
	scope := idempotency.ScopeFor(p.Issuer, p.Subject, OpUpdateEndpoint, in.IdempotencyKey)
	out, _, err := idempotency.Run(ctx, s.idem, scope, in, func(ctx context.Context) (endpointOutcome, error) {
		if in.URL != nil {
			if err := s.targets.Check(ctx, *in.URL); err != nil {
				return endpointOutcome{}, idempotency.NothingDone{Err: urlError()}
			}
		}
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			row, err := lockEndpoint(tx, in.EndpointID)
			if err != nil {
				return err
			}
			before := audited(row)
			if in.URL != nil {
				row.URL = *in.URL
			}
			if desc != nil {
				row.Description = *desc
			}
			if types != nil {
				row.EventTypes = types
			}
			if in.Enabled != nil && *in.Enabled != row.Enabled {
				row.Enabled = *in.Enabled
				row.FailingSince = nil
				row.DisabledReason = nil
				if !row.Enabled {
					r := "disabled by staff"
					row.DisabledReason = &r
				}
			}
			row.UpdatedAt = time.Now()
			err = tx.Model(row).Select("url", "description", "event_types", "enabled", "disabled_reason", "failing_since", "updated_at").
				Updates(row).Error
			if err != nil {
				return err
			}
			return audit.Record(ctx, tx, p, audit.Action{
				Name: OpUpdateEndpoint, TargetType: audit.TargetWebhookEndpoint, TargetID: row.ID, Reason: reason,
				Before: before, After: audited(row),
			})
		})
		if err != nil {
			return endpointOutcome{}, err
		}
		return endpointOutcome{EndpointID: in.EndpointID}, nil
	})
	ep, _, err := s.answer(ctx, out, err)
	return ep, err
}

// RotateSecret gives the endpoint a new secret, returned only in this answer; the
// previous one keeps signing beside it for RotationOverlap.
func (s *Service) RotateSecret(ctx context.Context, p *auth.Principal, in models.RotateWebhookEndpointSecretInput) (*models.WebhookEndpoint, string, error) {
	reason, err := audit.Reason(in.Reason, "input", "reason")
	if err != nil {
		return nil, "", err
	}
	if !models.ValidID(in.EndpointID) {
		return nil, "", notFound()
	}
	scope := idempotency.ScopeFor(p.Issuer, p.Subject, OpRotateSecret, in.IdempotencyKey)
	out, _, err := idempotency.Run(ctx, s.idem, scope, in, func(ctx context.Context) (endpointOutcome, error) {
		secret, err := newSecret()
		if err != nil {
			return endpointOutcome{}, err
		}
		err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			row, err := lockEndpoint(tx, in.EndpointID)
			if err != nil {
				return err
			}
			until := s.now().Add(RotationOverlap)
			prev := row.Secret
			row.PreviousSecret, row.PreviousSecretExpiresAt, row.Secret, row.UpdatedAt = &prev, &until, secret, time.Now()
			if err := tx.Model(row).Select("secret", "previous_secret", "previous_secret_expires_at", "updated_at").Updates(row).Error; err != nil {
				return err
			}
			return audit.Record(ctx, tx, p, audit.Action{
				Name: OpRotateSecret, TargetType: audit.TargetWebhookEndpoint, TargetID: row.ID, Reason: reason,
				After: map[string]any{"previousSecretSignsUntil": until.UTC()},
			})
		})
		if err != nil {
			return endpointOutcome{}, err
		}
		return endpointOutcome{EndpointID: in.EndpointID, Secret: secret}, nil
	})
	return s.answer(ctx, out, err)
}

// answer turns an endpoint mutation's outcome into its payload's parts.
func (s *Service) answer(ctx context.Context, out endpointOutcome, err error) (*models.WebhookEndpoint, string, error) {
	if errors.Is(err, errNotFound) {
		return nil, "", notFound()
	}
	if err != nil {
		return nil, "", idempotency.AsUserError(err)
	}
	if len(out.UserErrors) > 0 {
		errs := make([]error, len(out.UserErrors))
		for i, ue := range out.UserErrors {
			errs[i] = ue
		}
		return nil, "", errors.Join(errs...)
	}
	var row endpointRow
	if err := s.db.WithContext(ctx).Omit("secret", "previous_secret").Take(&row, "id = ?", out.EndpointID).Error; err != nil {
		return nil, "", fmt.Errorf("outbox: read endpoint: %w", err)
	}
	return endpointModel(&row), out.Secret, nil
}

// Endpoints pages through the endpoints, newest first.
func (s *Service) Endpoints(ctx context.Context, first *int, after *string) (*models.WebhookEndpointConnection, error) {
	q := s.db.WithContext(ctx).Model(&endpointRow{}).Omit("secret", "previous_secret")
	return newestFirst[models.WebhookEndpointConnection](q, first, after, endpointModel,
		func(e *models.WebhookEndpoint) (time.Time, string) { return e.CreatedAt, e.ID })
}

// newestFirst pages through q's rows by created_at, newest first, and shapes the
// page as the connection C of their models.
func newestFirst[C paging.Conn[E], E paging.Edge[N], R, N any](q *gorm.DB, first *int, after *string,
	model func(R) N, pos func(N) (time.Time, string),
) (*C, error) {
	rows, more, err := paging.Fetch[R](q, "created_at", first, after)
	if err != nil {
		return nil, err
	}
	nodes := make([]N, len(rows))
	for i, r := range rows {
		nodes[i] = model(r)
	}
	return paging.Connection[C](nodes, more, pos), nil
}

// deliveryView is a delivery with its message's type (a named field: gorm does
// not fill an unexported embedded struct).
type deliveryView struct {
	Delivery  deliveryRow `gorm:"embedded"`
	EventType string
}

const deliveryColumns = "webhook_deliveries.*, (SELECT event_type FROM webhook_messages m WHERE m.id = webhook_deliveries.message_id) AS event_type"

// Deliveries pages through deliveries, newest first, of one endpoint or all,
// optionally of one status.
func (s *Service) Deliveries(ctx context.Context, endpointID *string, status *models.WebhookDeliveryStatus, first *int, after *string) (*models.WebhookDeliveryConnection, error) {
	q := s.db.WithContext(ctx).Table("webhook_deliveries").Select(deliveryColumns)
	if endpointID != nil {
		if !models.ValidID(*endpointID) {
			return &models.WebhookDeliveryConnection{Edges: []*models.WebhookDeliveryEdge{}, PageInfo: &models.PageInfo{}}, nil
		}
		q = q.Where("endpoint_id = ?", *endpointID)
	}
	if status != nil {
		q = q.Where("status = ?", string(*status))
	}
	return newestFirst[models.WebhookDeliveryConnection](q, first, after, deliveryModel,
		func(d *models.WebhookDelivery) (time.Time, string) { return d.CreatedAt, d.ID })
}

// Redeliver sends the delivery's message again, with the same webhook-id, now: on
// a fresh retry schedule, or, when its job still waits for a retry, on that job's
// (one job per delivery). The endpoint must be enabled.
func (s *Service) Redeliver(ctx context.Context, p *auth.Principal, in models.RedeliverWebhookInput) (*models.WebhookDelivery, error) {
	reason, err := audit.Reason(in.Reason, "input", "reason")
	if err != nil {
		return nil, err
	}
	if !models.ValidID(in.DeliveryID) {
		return nil, models.NewUserError(models.UserErrorNotFound, "no such delivery", "input", "deliveryId")
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var d deliveryRow
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&d, "id = ?", in.DeliveryID).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return models.NewUserError(models.UserErrorNotFound, "no such delivery", "input", "deliveryId")
		}
		if err != nil {
			return err
		}
		var enabled bool
		if err := tx.Model(&endpointRow{}).Where("id = ?", d.EndpointID).Pluck("enabled", &enabled).Error; err != nil {
			return err
		}
		if !enabled {
			return models.NewUserError(models.UserErrorInvalidState, "the endpoint is disabled; enable it first", "input", "deliveryId")
		}
		before := map[string]any{"status": d.Status, "attempts": d.Attempts}
		now := time.Now()
		if err := tx.Model(&d).Updates(map[string]any{"status": statusPending, "next_attempt_at": now, "updated_at": now}).Error; err != nil {
			return err
		}
		sqlTx, err := jobs.SQLTx(tx)
		if err != nil {
			return err
		}
		if err := bringForward(ctx, tx, sqlTx, d.ID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, p, audit.Action{
			Name: OpRedeliver, TargetType: audit.TargetWebhookDelivery, TargetID: d.ID, Reason: reason,
			Before: before, After: map[string]any{"status": statusPending, "messageId": d.MessageID, "endpointId": d.EndpointID},
		})
	})
	if err != nil {
		return nil, err
	}
	var v deliveryView
	if err := s.db.WithContext(ctx).Table("webhook_deliveries").Select(deliveryColumns).Where("id = ?", in.DeliveryID).Take(&v).Error; err != nil {
		return nil, fmt.Errorf("outbox: read delivery: %w", err)
	}
	return deliveryModel(&v), nil
}

// bringForward makes the delivery's job due now: the job still waiting for a retry,
// if there is one (a second job would run a second retry chain against the
// receiver), or a new one. A job running now is left to finish its attempt.
func bringForward(ctx context.Context, tx *gorm.DB, sqlTx *sql.Tx, deliveryID string) error {
	args, err := json.Marshal(DeliverArgs{DeliveryID: deliveryID})
	if err != nil {
		return err
	}
	var jobs []struct {
		ID    int64
		State string
	}
	err = tx.WithContext(ctx).Raw(`SELECT id, state FROM river_job WHERE kind = ? AND args @> ?::jsonb
		AND state IN ('available', 'pending', 'scheduled', 'retryable', 'running') ORDER BY id`,
		DeliverArgs{}.Kind(), string(args)).Scan(&jobs).Error
	if err != nil {
		return fmt.Errorf("outbox: find delivery job: %w", err)
	}
	if len(jobs) == 0 {
		return enqueue(ctx, sqlTx, deliveryID)
	}
	for _, j := range jobs {
		if j.State == "running" {
			continue
		}
		if _, err := inserter.JobRetryTx(ctx, sqlTx, j.ID); err != nil {
			return fmt.Errorf("outbox: bring delivery job forward: %w", err)
		}
	}
	return nil
}

var errNotFound = errors.New("outbox: no such endpoint")

func notFound() error {
	return models.NewUserError(models.UserErrorNotFound, "no such webhook endpoint", "input", "endpointId")
}

func urlError() error {
	return models.NewUserError(models.UserErrorInvalid,
		"must be an absolute https URL whose host resolves to public addresses only", "input", "url")
}

func lockEndpoint(tx *gorm.DB, id string) (*endpointRow, error) {
	var row endpointRow
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&row, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, idempotency.NothingDone{Err: errNotFound}
	}
	return &row, err
}

func checkDescription(d string) error {
	switch {
	case !utf8.ValidString(d) || strings.ContainsFunc(d, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }):
		return models.NewUserError(models.UserErrorInvalid, "contains characters that are not allowed", "input", "description")
	case utf8.RuneCountInString(d) > maxDescriptionRunes:
		return models.NewUserError(models.UserErrorInvalid, fmt.Sprintf("is too long (at most %d characters)", maxDescriptionRunes), "input", "description")
	}
	return nil
}

// checkEventTypes returns the types sorted and without repeats, or an INVALID
// user error for an empty list or an unknown type.
func checkEventTypes(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, models.NewUserError(models.UserErrorInvalid, "name at least one event type, or \"*\"", "input", "eventTypes")
	}
	out := make([]string, 0, len(in))
	for _, t := range in {
		if t != AllEvents && !slices.Contains(EventTypes, t) {
			return nil, models.NewUserError(models.UserErrorInvalid,
				"unknown event type; known: \"*\", "+strings.Join(EventTypes, ", "), "input", "eventTypes")
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// audited is what the audit log keeps of an endpoint: no secret, and the URL
// without its query (which may carry a receiver's token).
func audited(r *endpointRow) map[string]any {
	u := r.URL
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	return map[string]any{"url": u, "eventTypes": r.EventTypes, "enabled": r.Enabled, "description": r.Description}
}

func endpointModel(r *endpointRow) *models.WebhookEndpoint {
	return &models.WebhookEndpoint{ID: r.ID, URL: r.URL, Description: r.Description, EventTypes: r.EventTypes,
		Enabled: r.Enabled, DisabledReason: r.DisabledReason, CreatedAt: r.CreatedAt}
}

func deliveryModel(v *deliveryView) *models.WebhookDelivery {
	r := &v.Delivery
	return &models.WebhookDelivery{ID: r.ID, MessageID: r.MessageID, EventType: v.EventType,
		Status: models.WebhookDeliveryStatus(r.Status), Attempts: r.Attempts, LastStatusCode: r.LastStatusCode,
		LastError: r.LastError, CreatedAt: r.CreatedAt, DeliveredAt: r.DeliveredAt, NextAttemptAt: r.NextAttemptAt}
}
