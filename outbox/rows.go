package outbox

import (
	"time"
)

// Delivery statuses, the GraphQL enum WebhookDeliveryStatus.
const (
	statusPending   = "PENDING"
	statusDelivered = "DELIVERED"
	statusFailed    = "FAILED"
)

// endpointRow is a webhook_endpoints row. The secrets are the whole "whsec_..."
// strings, sealed.
type endpointRow struct {
	ID                      string `gorm:"type:uuid;primaryKey"`
	URL                     string
	Description             string
	EventTypes              []string `gorm:"serializer:json;type:jsonb"`
	Enabled                 bool
	DisabledReason          *string
	Secret                  string  `gorm:"serializer:sealed"`
	PreviousSecret          *string `gorm:"serializer:sealed"`
	PreviousSecretExpiresAt *time.Time
	FailingSince            *time.Time
	CreatedAt               time.Time
	UpdatedAt               time.Time
}

func (endpointRow) TableName() string { return "webhook_endpoints" }

// messageRow is a webhook_messages row; Payload is the body sent, sealed.
type messageRow struct {
	ID         string `gorm:"type:uuid;primaryKey"`
	EventType  string
	CustomerID *string `gorm:"type:uuid"`
	Payload    []byte  `gorm:"serializer:sealed"`
	CreatedAt  time.Time
}

func (messageRow) TableName() string { return "webhook_messages" }

// deliveryRow is a webhook_deliveries row.
type deliveryRow struct {
	ID             string `gorm:"type:uuid;primaryKey;default:gen_random_uuid()"`
	MessageID      string `gorm:"type:uuid"`
	EndpointID     string `gorm:"type:uuid"`
	Status         string
	Attempts       int
	LastStatusCode *int
	LastError      *string
	NextAttemptAt  *time.Time
	DeliveredAt    *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (deliveryRow) TableName() string { return "webhook_deliveries" }

// attemptRow is a webhook_delivery_attempts row.
type attemptRow struct {
	ID         int64 `gorm:"primaryKey"`
	DeliveryID string
	StatusCode *int
	Error      *string
	DurationMS int `gorm:"column:duration_ms"`
	CreatedAt  time.Time
}

func (attemptRow) TableName() string { return "webhook_delivery_attempts" }
