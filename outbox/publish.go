package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"gorm.io/gorm"

	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/sealing"
)

// Event types of API.md.
const (
	EventShipmentCreated     = "shipment.created"
	EventSubscriptionUpdated = "subscription.updated"
	EventPaymentSucceeded    = "payment.succeeded"
	EventPaymentFailed       = "payment.failed"
	EventPaymentRefunded     = "payment.refunded"
	EventCustomerErased      = "customer.erased"
	// AllEvents in an endpoint's eventTypes subscribes it to every type.
	AllEvents = "*"
)

// EventTypes is the catalogue an endpoint may subscribe to.
var EventTypes = []string{EventShipmentCreated, EventSubscriptionUpdated, EventPaymentSucceeded,
	EventPaymentFailed, EventPaymentRefunded, EventCustomerErased}

// messageNamespace derives message ids from facts.
var messageNamespace = uuid.MustParse("7f0c3a52-2d8e-4d4e-9c55-0b8e2a1f6c11")

// MessageID is the id of the message of type eventType about the fact factKey: the
// same fact always gives the same id, so it is written once.
func MessageID(eventType, factKey string) string {
	return uuid.NewSHA1(messageNamespace, []byte(eventType+"\x00"+factKey)).String()
}

// inserter enqueues deliveries inside the caller's transaction only (River needs
// no pool for InsertTx).
var inserter = func() *river.Client[*sql.Tx] {
	c, err := river.NewClient(riverdatabasesql.New(nil), &river.Config{})
	if err != nil {
		panic(err)
	}
	return c
}()

// Message is the body every attempt of a message sends.
type Message struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// Publish writes, inside tx (the transaction that commits the fact), the message of
// type eventType about the fact factKey, one delivery per enabled endpoint
// subscribed to the type, and a job per delivery. Nothing is written when no
// endpoint is subscribed, or when the fact's message exists already (the fact was
// recorded before). customerID names whose data the message carries (erasure finds
// it), or is empty.
func Publish(ctx context.Context, tx *gorm.DB, eventType, factKey, customerID string, data any) error {
	endpoints, err := subscribed(ctx, tx, eventType)
	if err != nil || len(endpoints) == 0 {
		return err
	}
	return publishTo(ctx, tx, endpoints, eventType, factKey, customerID, data)
}

// endpointsKey carries an endpointsRead in a context (WithEndpointsReadOnce).
type endpointsKey struct{}

// endpointsRead is the enabled endpoints as first read under one context.
type endpointsRead struct {
	mu     sync.Mutex
	loaded bool
	rows   []endpointRow // id and event types, in id order
}

// WithEndpointsReadOnce returns ctx under which every message published reads the
// enabled endpoints from the one read the first message made, instead of asking
// once per message type: for one unit of work (applying one event) inside one
// transaction, which sees those endpoints as that read did. Never carry it over
// to another transaction or a retry.
func WithEndpointsReadOnce(ctx context.Context) context.Context {
	return context.WithValue(ctx, endpointsKey{}, &endpointsRead{})
}

// subscribed returns the enabled endpoints subscribed to eventType.
func subscribed(ctx context.Context, tx *gorm.DB, eventType string) ([]string, error) {
	if read, ok := ctx.Value(endpointsKey{}).(*endpointsRead); ok {
		return read.subscribed(ctx, tx, eventType)
	}
	var endpoints []string
	err := tx.WithContext(ctx).Model(&endpointRow{}).
		Where("enabled AND (event_types @> to_jsonb(?::text) OR event_types @> to_jsonb(?::text))", eventType, AllEvents).
		Order("id").Pluck("id", &endpoints).Error
	if err != nil {
		return nil, fmt.Errorf("outbox: endpoints for %s: %w", eventType, err)
	}
	return endpoints, nil
}

// subscribed is subscribed of the endpoints read once.
func (r *endpointsRead) subscribed(ctx context.Context, tx *gorm.DB, eventType string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.loaded {
		err := tx.WithContext(ctx).Model(&endpointRow{}).Select("id", "event_types").Where("enabled").Order("id").Find(&r.rows).Error
		if err != nil {
			return nil, fmt.Errorf("outbox: endpoints: %w", err)
		}
		r.loaded = true
	}
	var endpoints []string
	for _, ep := range r.rows {
		if slices.Contains(ep.EventTypes, eventType) || slices.Contains(ep.EventTypes, AllEvents) {
			endpoints = append(endpoints, ep.ID)
		}
	}
	return endpoints, nil
}

// publishTo is Publish to the endpoints given.
func publishTo(ctx context.Context, tx *gorm.DB, endpoints []string, eventType, factKey, customerID string, data any) error {
	sqlTx, err := jobs.SQLTx(tx)
	if err != nil {
		return fmt.Errorf("outbox: publish %s: %w", eventType, err)
	}
	tx = tx.WithContext(ctx)
	body, err := json.Marshal(Message{Type: eventType, Timestamp: time.Now().UTC().Truncate(time.Millisecond), Data: data})
	if err != nil {
		return fmt.Errorf("outbox: encode %s: %w", eventType, err)
	}
	// The message and its deliveries in one statement: the deliveries are written
	// only when the message is, and none when it exists already (the fact was
	// recorded before). The payload is sealed here, bound to its row, as the
	// sealed field of messageRow would seal it.
	msgID := MessageID(eventType, factKey)
	sealed, err := sealing.SealColumn(tx, messageRow{}.TableName(), "payload", msgID, body)
	if err != nil {
		return fmt.Errorf("outbox: seal %s: %w", eventType, err)
	}
	var customer *string
	if customerID != "" {
		customer = &customerID
	}
	deliveries := make([]deliveryRow, len(endpoints))
	ids := make([]string, len(endpoints))
	for i, ep := range endpoints {
		deliveries[i] = deliveryRow{ID: uuid.NewString(), MessageID: msgID, EndpointID: ep, Status: statusPending}
		ids[i] = deliveries[i].ID
	}
	now := time.Now()
	// Both lists are of UUIDs (ours, and endpoint ids read from their table), so
	// they pass safely as array literals.
	res := tx.Exec(`WITH message AS (
			INSERT INTO webhook_messages (id, event_type, customer_id, payload, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING RETURNING id)
		INSERT INTO webhook_deliveries (id, message_id, endpoint_id, status, attempts, created_at, updated_at)
		SELECT d.id, message.id, d.endpoint_id, ?, 0, ?, ?
		FROM message CROSS JOIN unnest(?::uuid[], ?::uuid[]) AS d (id, endpoint_id)`,
		msgID, eventType, customer, sealed, now, statusPending, now, now,
		"{"+strings.Join(ids, ",")+"}", "{"+strings.Join(endpoints, ",")+"}")
	if res.Error != nil {
		return fmt.Errorf("outbox: insert %s: %w", eventType, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil // the fact's message exists: written when the fact was
	}
	if res.RowsAffected != int64(len(endpoints)) {
		return fmt.Errorf("outbox: insert %s: %d deliveries for %d endpoints", eventType, res.RowsAffected, len(endpoints))
	}
	for _, d := range deliveries {
		if err := enqueue(ctx, sqlTx, d.ID); err != nil {
			return err
		}
	}
	messages.WithLabelValues(eventType).Inc()
	return nil
}

// enqueue inserts the job delivering d in sqlTx, or defers it to the caller's one
// insert of its transaction's jobs (jobs.WithDeferredInserts).
func enqueue(ctx context.Context, sqlTx *sql.Tx, deliveryID string) error {
	err := jobs.InsertTx(ctx, inserter, sqlTx, DeliverArgs{DeliveryID: deliveryID}, &river.InsertOpts{
		Queue: jobs.QueueOutbox, MaxAttempts: len(RetrySchedule) + 1,
	})
	if err != nil {
		return fmt.Errorf("outbox: enqueue delivery: %w", err)
	}
	return nil
}

// Money is an amount as the API writes it.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// ShipmentData is shipment.created's data.
type ShipmentData struct {
	ShipmentID     string          `json:"shipmentId"`
	SubscriptionID string          `json:"subscriptionId"`
	CustomerID     string          `json:"customerId"`
	PlanID         string          `json:"planId"`
	PlanName       string          `json:"planName"`
	PeriodStart    time.Time       `json:"periodStart"`
	PeriodEnd      time.Time       `json:"periodEnd"`
	Address        *models.Address `json:"address"`
}

// ShipmentCreated publishes shipment.created for ship, created in tx. A shipment
// is created once per paid invoice, and the message id is the shipment's.
// planName is the name of ship's plan (its product's), as the caller read it.
func ShipmentCreated(ctx context.Context, tx *gorm.DB, ship *models.Shipment, planName string) error {
	endpoints, err := subscribed(ctx, tx, EventShipmentCreated)
	if err != nil || len(endpoints) == 0 {
		return err
	}
	addr := ship.Address
	return publishTo(ctx, tx, endpoints, EventShipmentCreated, ship.ID, ship.CustomerID, ShipmentData{
		ShipmentID: ship.ID, SubscriptionID: ship.SubscriptionID, CustomerID: ship.CustomerID,
		PlanID: ship.PlanID, PlanName: planName, PeriodStart: ship.PeriodStart.UTC(), PeriodEnd: ship.PeriodEnd.UTC(),
		Address: &addr,
	})
}

// PaymentData is the data of payment.succeeded, payment.failed and payment.refunded.
type PaymentData struct {
	PaymentID      string `json:"paymentId"`
	SubscriptionID string `json:"subscriptionId"`
	CustomerID     string `json:"customerId"`
	Amount         Money  `json:"amount"`
	AmountRefunded Money  `json:"amountRefunded"`
	Status         string `json:"status"`
}

// PaymentChanged publishes the outcome pay has after its save in tx:
// payment.succeeded, payment.failed, or payment.refunded (in full or in part). A
// message is about one outcome (status and amount refunded), so saving a payment
// again with the same outcome writes nothing; other statuses publish nothing.
func PaymentChanged(ctx context.Context, tx *gorm.DB, pay *models.Payment) error {
	var typ string
	switch pay.Status {
	case models.PaymentSucceeded:
		typ = EventPaymentSucceeded
	case models.PaymentFailed:
		typ = EventPaymentFailed
	case models.PaymentRefunded, models.PaymentPartiallyRefunded:
		typ = EventPaymentRefunded
	default:
		return nil
	}
	fact := pay.ID + ":" + string(pay.Status) + ":" + strconv.FormatInt(pay.AmountRefunded, 10)
	return Publish(ctx, tx, typ, fact, pay.CustomerID, PaymentData{
		PaymentID: pay.ID, SubscriptionID: pay.SubscriptionID, CustomerID: pay.CustomerID,
		Amount:         Money{Amount: pay.AmountMinor, Currency: pay.Currency},
		AmountRefunded: Money{Amount: pay.AmountRefunded, Currency: pay.Currency},
		Status:         string(pay.Status),
	})
}

// SubscriptionData is subscription.updated's data.
type SubscriptionData struct {
	SubscriptionID    string     `json:"subscriptionId"`
	CustomerID        string     `json:"customerId"`
	Status            string     `json:"status"`
	PlanID            string     `json:"planId"`
	CancelAtPeriodEnd bool       `json:"cancelAtPeriodEnd"`
	CurrentPeriodEnd  *time.Time `json:"currentPeriodEnd"`
	PausedUntil       *time.Time `json:"pausedUntil"`
	Sequence          int64      `json:"sequence"`
}

// SubscriptionUpdated publishes subscription.updated for sub, changed (or created)
// in tx, which holds its row locked. Its sequence grows by one with each change of
// the subscription, committed or not with the change.
func SubscriptionUpdated(ctx context.Context, tx *gorm.DB, sub *models.Subscription) error {
	tx = tx.WithContext(ctx)
	var seq int64
	err := tx.Raw(`INSERT INTO webhook_subscription_sequences (subscription_id, sequence) VALUES (?, 1)
		ON CONFLICT (subscription_id) DO UPDATE SET sequence = webhook_subscription_sequences.sequence + 1
		RETURNING sequence`, sub.ID).Scan(&seq).Error
	if err != nil {
		return fmt.Errorf("outbox: subscription sequence: %w", err)
	}
	return Publish(ctx, tx, EventSubscriptionUpdated, sub.ID+":"+strconv.FormatInt(seq, 10), sub.CustomerID, SubscriptionData{
		SubscriptionID: sub.ID, CustomerID: sub.CustomerID, Status: string(sub.Status), PlanID: sub.PlanID,
		CancelAtPeriodEnd: sub.CancelAtPeriodEnd, CurrentPeriodEnd: utc(sub.CurrentPeriodEnd), PausedUntil: utc(sub.PausedUntil),
		Sequence: seq,
	})
}

// ErasedData is customer.erased's data.
type ErasedData struct {
	CustomerID string `json:"customerId"`
}

// CustomerErased publishes customer.erased inside the erasure's transaction tx, and
// forgets the address every earlier message of the customer carried (ForgetCustomer).
func CustomerErased(ctx context.Context, tx *gorm.DB, customerID string) error {
	if err := ForgetCustomer(ctx, tx, customerID); err != nil {
		return err
	}
	return Publish(ctx, tx, EventCustomerErased, customerID, "", ErasedData{CustomerID: customerID})
}

// ForgetCustomer removes the personal data (the address) from the stored messages
// about customerID, inside tx: a delivery sent or re-sent afterwards carries ids
// and amounts only.
func ForgetCustomer(ctx context.Context, tx *gorm.DB, customerID string) error {
	tx = tx.WithContext(ctx)
	var rows []messageRow
	if err := tx.Where("customer_id = ? AND event_type = ?", customerID, EventShipmentCreated).Find(&rows).Error; err != nil {
		return fmt.Errorf("outbox: messages of customer: %w", err)
	}
	for i := range rows {
		var m map[string]any
		if err := json.Unmarshal(rows[i].Payload, &m); err != nil {
			return fmt.Errorf("outbox: read message: %w", err)
		}
		if data, ok := m["data"].(map[string]any); ok {
			data["address"] = nil
		}
		body, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("outbox: encode message: %w", err)
		}
		rows[i].Payload = body
		if err := tx.Model(&rows[i]).Select("payload").Updates(&rows[i]).Error; err != nil {
			return fmt.Errorf("outbox: forget message: %w", err)
		}
	}
	return nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
