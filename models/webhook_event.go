package models

import (
	"io"
	"time"
)

// WebhookEventStatus is how far processing of a stored provider event got.
type WebhookEventStatus string

// The webhook event statuses of API.md.
const (
	WebhookReceived  WebhookEventStatus = "RECEIVED"
	WebhookProcessed WebhookEventStatus = "PROCESSED"
	WebhookFailed    WebhookEventStatus = "FAILED"
	WebhookIgnored   WebhookEventStatus = "IGNORED"
)

var webhookEventStatuses = newEnum("WebhookEventStatus", WebhookReceived, WebhookProcessed, WebhookFailed, WebhookIgnored)

// IsValid reports whether s is one of the statuses.
func (s WebhookEventStatus) IsValid() bool { return webhookEventStatuses.has(s) }

// UnmarshalGQL binds the schema enum.
func (s *WebhookEventStatus) UnmarshalGQL(v any) error { return webhookEventStatuses.unmarshal(v, s) }

// MarshalGQL writes the enum value.
func (s WebhookEventStatus) MarshalGQL(w io.Writer) { marshalEnum(w, s) }

// WebhookEvent is one verified provider event, kept with its outcome for audit and
// replay (WH-5). Payload is the body exactly as Stripe signed it, sealed at rest
// (package sealing: it holds names, e-mails and addresses).
type WebhookEvent struct {
	ID              string `gorm:"type:uuid;primaryKey;default:gen_random_uuid()"`
	Seq             int64  `gorm:"->"`
	ProviderEventID string
	Type            string
	APIVersion      string
	Livemode        bool
	ObjectID        *string
	EventCreated    time.Time
	Payload         []byte `gorm:"serializer:sealed"`
	Status          WebhookEventStatus
	Attempts        int
	LastError       *string
	Outcome         *string
	ReceivedAt      time.Time
	ProcessedAt     *time.Time
}
