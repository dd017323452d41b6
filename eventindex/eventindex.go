// Package eventindex knows whom a stored provider event is about: the identifiers
// its object names at known places, kept in webhook_event_subjects. A customer's
// events are found there by exact value (DAT-3), never by searching the payloads'
// text, which would also find whoever's name or e-mail contains theirs.
//
// The route stores events without reading further than the envelope; the event
// worker indexes an event in the transaction that applies it (Record), and
// IndexPending indexes whatever is still waiting, so that a lookup (Find) sees every
// stored event.
package eventindex

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/models"
)

// Kind is what an identifier identifies.
type Kind string

// The kinds an event is indexed by.
const (
	Customer       Kind = "customer" // our customers.id
	StripeCustomer Kind = "stripe_customer"
	Subscription   Kind = "subscription"
	Invoice        Kind = "invoice"
	PaymentIntent  Kind = "payment_intent"
	Charge         Kind = "charge"
)

// Subject is one identifier an event names.
type Subject struct {
	Kind  Kind
	Value string
}

// maxValue is the longest identifier kept (the column's limit); Stripe's are far shorter.
const maxValue = 255

// object is the part of a Stripe object read for its subjects. A reference is a
// string id, or the object itself when expanded, or null.
type object struct {
	ID                  string            `json:"id"`
	Object              string            `json:"object"`
	Customer            json.RawMessage   `json:"customer"`
	Subscription        json.RawMessage   `json:"subscription"`
	Invoice             json.RawMessage   `json:"invoice"`
	PaymentIntent       json.RawMessage   `json:"payment_intent"`
	Charge              json.RawMessage   `json:"charge"`
	LatestInvoice       json.RawMessage   `json:"latest_invoice"`
	LatestCharge        json.RawMessage   `json:"latest_charge"`
	ClientReferenceID   string            `json:"client_reference_id"`
	Metadata            map[string]string `json:"metadata"`
	SubscriptionDetails struct {
		Metadata map[string]string `json:"metadata"`
	} `json:"subscription_details"`
}

// ownKind is the kind of an object's own id, by its type; other types' ids name
// nobody we look up.
var ownKind = map[string]Kind{
	"customer": StripeCustomer, "subscription": Subscription, "invoice": Invoice,
	"payment_intent": PaymentIntent, "charge": Charge,
}

// FromObject returns the subjects a Stripe event's data.object names: its own id
// (for customers, subscriptions, invoices, payment intents and charges), the
// customer, subscription, invoice, payment intent and charge it refers to, and our
// customer id where we put it (metadata, a subscription's metadata on its invoice,
// a Checkout session's client_reference_id). Nothing else in the object counts:
// free text never makes an event anybody's. An object that cannot be read names
// nobody.
func FromObject(raw json.RawMessage) []Subject {
	var o object
	if len(raw) == 0 || json.Unmarshal(raw, &o) != nil {
		return nil
	}
	var out []Subject
	seen := map[Subject]bool{}
	add := func(k Kind, v string) {
		s := Subject{k, v}
		if v == "" || len(v) > maxValue || seen[s] {
			return
		}
		if k == Customer && uuid.Validate(v) != nil {
			return
		}
		seen[s] = true
		out = append(out, s)
	}
	if k, ok := ownKind[o.Object]; ok {
		add(k, o.ID)
	}
	add(StripeCustomer, refID(o.Customer))
	add(Subscription, refID(o.Subscription))
	add(Invoice, refID(o.Invoice))
	add(Invoice, refID(o.LatestInvoice))
	add(PaymentIntent, refID(o.PaymentIntent))
	add(Charge, refID(o.Charge))
	add(Charge, refID(o.LatestCharge))
	add(Customer, o.Metadata[gateway.MetadataCustomerID])
	add(Customer, o.SubscriptionDetails.Metadata[gateway.MetadataCustomerID])
	if o.Object == "checkout.session" {
		add(Customer, o.ClientReferenceID)
	}
	return out
}

// FromEvent is FromObject of a whole event's data.object.
func FromEvent(payload []byte) []Subject {
	var ev struct {
		Data struct {
			Object json.RawMessage `json:"object"`
		} `json:"data"`
	}
	if json.Unmarshal(payload, &ev) != nil {
		return nil
	}
	return FromObject(ev.Data.Object)
}

// refID is the id of a reference: the string itself, or an expanded object's id.
func refID(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.ID
	}
	return ""
}

// Record stores an event's subjects in tx. Recording the same ones again adds
// nothing. The caller marks the event indexed (webhook_events.subjects_indexed_at)
// in the same transaction.
func Record(ctx context.Context, tx *gorm.DB, eventID string, subjects []Subject) error {
	if len(subjects) == 0 {
		return nil
	}
	rows := make([][]any, len(subjects))
	for i, s := range subjects {
		rows[i] = []any{string(s.Kind), s.Value, eventID}
	}
	return recordRows(ctx, tx, rows)
}

func recordRows(ctx context.Context, tx *gorm.DB, rows [][]any) error {
	values := strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(rows)), ", ")
	args := make([]any, 0, 3*len(rows))
	for _, r := range rows {
		args = append(args, r...)
	}
	err := tx.WithContext(ctx).Exec(`INSERT INTO webhook_event_subjects (kind, value, event_id) VALUES `+values+`
		ON CONFLICT DO NOTHING`, args...).Error
	if err != nil {
		return fmt.Errorf("eventindex: record: %w", err)
	}
	return nil
}

// PendingBatch bounds how many events IndexPending opens in one transaction.
const PendingBatch = 100

// IndexPending indexes every stored event not indexed yet (RECEIVED ones the worker
// has not applied, FAILED ones, and any stored before the index existed), a batch
// per transaction, and returns how many it indexed. Each event is opened once: an
// indexed event is never read here again. An event being applied is waited for
// (the worker indexes it itself). Only events are locked, in id order, as the
// worker and erasure lock them first (see LockCustomers).
func IndexPending(ctx context.Context, db *gorm.DB) (int, error) {
	total := 0
	for {
		n, err := indexBatch(ctx, db)
		total += n
		if err != nil || n < PendingBatch {
			return total, err
		}
	}
}

func indexBatch(ctx context.Context, db *gorm.DB) (int, error) {
	n := 0
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var ids []string
		// The two halves are the two indexes: RECEIVED by status, the rest by the
		// partial index of unindexed events.
		err := tx.Raw(`SELECT id FROM webhook_events
			WHERE id IN (
				SELECT id FROM webhook_events WHERE status = ? AND subjects_indexed_at IS NULL
				UNION ALL
				SELECT id FROM webhook_events WHERE subjects_indexed_at IS NULL AND status <> ?)
			AND subjects_indexed_at IS NULL
			ORDER BY id LIMIT ? FOR UPDATE`, models.WebhookReceived, models.WebhookReceived, PendingBatch).Scan(&ids).Error
		if err != nil {
			return fmt.Errorf("eventindex: pending: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		var events []*models.WebhookEvent
		if err := tx.Select("id", "payload").Where("id IN ?", ids).Find(&events).Error; err != nil {
			return fmt.Errorf("eventindex: pending: read: %w", err)
		}
		var rows [][]any
		for _, ev := range events {
			for _, s := range FromEvent(ev.Payload) {
				rows = append(rows, []any{string(s.Kind), s.Value, ev.ID})
			}
		}
		if len(rows) > 0 {
			if err := recordRows(ctx, tx, rows); err != nil {
				return err
			}
		}
		if err := tx.Exec(`UPDATE webhook_events SET subjects_indexed_at = now() WHERE id IN ?`, ids).Error; err != nil {
			return fmt.Errorf("eventindex: pending: mark: %w", err)
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// Find returns the ids (webhook_events.id) of the indexed events that name any of
// subjects, in id order, and of the events that name a charge one of those names
// (a refund or dispute of the customer's payment names only its charge and
// payment intent). Call IndexPending first to see events not indexed yet.
func Find(ctx context.Context, db *gorm.DB, subjects []Subject) ([]string, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	pairs := make([][]any, len(subjects))
	for i, s := range subjects {
		pairs[i] = []any{string(s.Kind), s.Value}
	}
	var ids []string
	err := db.WithContext(ctx).Raw(`WITH direct AS (
			SELECT DISTINCT event_id FROM webhook_event_subjects WHERE (kind, value) IN ?
		), charges AS (
			SELECT DISTINCT s.value FROM webhook_event_subjects s JOIN direct d ON d.event_id = s.event_id
			WHERE s.kind = ?
		)
		SELECT event_id FROM direct
		UNION
		SELECT s.event_id FROM webhook_event_subjects s JOIN charges c ON s.kind = ? AND s.value = c.value
		ORDER BY event_id`, pairs, string(Charge), string(Charge)).Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("eventindex: find: %w", err)
	}
	return ids, nil
}

// LockCustomers takes a FOR KEY SHARE lock, in id order, on every customer that
// subjects name: directly, or through their subscription or payment. It is the
// event worker's second lock, after the event and before any subscription,
// payment, shipment or notification row.
//
// The order every writer of a customer's rows follows is: provider events (in id
// order), then the customer, then their subscriptions, payments, shipments and
// notifications. Erasure changes the customer's key columns (FOR UPDATE), which
// conflicts with the KEY SHARE every insert referencing the customer takes; taken
// here, early, an event waits for an erasure (or the erasure for it) before
// holding anything the other needs, so the two never deadlock.
//
// erased reports whether any customer named has been erased
// (customers.ErasedIssuer), read under the lock, so it holds for the rest of tx:
// the worker then scrubs the event it applies, as erasure scrubbed the others.
func LockCustomers(ctx context.Context, tx *gorm.DB, subjects []Subject) (erased bool, err error) {
	return recordAndLock(ctx, tx, "", subjects)
}

// RecordAndLockCustomers is Record of eventID's subjects, then LockCustomers of
// them, in one statement: the event worker's indexing and its second lock, in that
// order, in one round trip.
func RecordAndLockCustomers(ctx context.Context, tx *gorm.DB, eventID string, subjects []Subject) (erased bool, err error) {
	return recordAndLock(ctx, tx, eventID, subjects)
}

// RecordAndLockEach is RecordAndLockCustomers, reporting for each customer it
// locked (by id) whether that customer is erased: read under the lock, so each
// answer holds for the rest of tx (customers.WithLocked passes them on).
func RecordAndLockEach(ctx context.Context, tx *gorm.DB, eventID string, subjects []Subject) (erased map[string]bool, err error) {
	return recordAndLockEach(ctx, tx, eventID, subjects)
}

// recordAndLock records subjects for eventID (none when eventID is empty), then
// locks the customers they name.
func recordAndLock(ctx context.Context, tx *gorm.DB, eventID string, subjects []Subject) (erased bool, err error) {
	each, err := recordAndLockEach(ctx, tx, eventID, subjects)
	for _, e := range each {
		erased = erased || e
	}
	return erased, err
}

// recordAndLockEach is recordAndLock, reporting each customer locked.
func recordAndLockEach(ctx context.Context, tx *gorm.DB, eventID string, subjects []Subject) (erased map[string]bool, err error) {
	by := map[Kind][]string{}
	for _, s := range subjects {
		by[s.Kind] = append(by[s.Kind], s.Value)
	}
	lockable := len(by[Customer])+len(by[StripeCustomer])+len(by[Subscription])+len(by[Invoice])+len(by[PaymentIntent]) > 0
	record := eventID != "" && len(subjects) > 0
	if !lockable {
		if record {
			return nil, Record(ctx, tx, eventID, subjects)
		}
		return nil, nil
	}
	// IN over an empty list is not SQL: a value no row has stands in.
	or := func(k Kind) []string {
		if v := by[k]; len(v) > 0 {
			return v
		}
		if k == Customer {
			return []string{uuid.Nil.String()}
		}
		return []string{""}
	}
	var prefix string
	var args []any
	if record {
		// A data-modifying WITH runs to completion whether or not the query reads
		// it. Its order against the lock does not matter: it writes only the
		// event's own index rows, under the event's lock.
		prefix = `WITH recorded AS (INSERT INTO webhook_event_subjects (kind, value, event_id) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(subjects)), ", ") + ` ON CONFLICT DO NOTHING) `
		for _, s := range subjects {
			args = append(args, string(s.Kind), s.Value, eventID)
		}
	}
	args = append(args, or(Customer), or(StripeCustomer), or(Subscription), or(Invoice), or(PaymentIntent))
	var locked []struct{ ID, Issuer string }
	err = tx.WithContext(ctx).Raw(prefix+`SELECT id, issuer FROM customers WHERE id IN (
			SELECT id FROM customers WHERE id IN ? OR stripe_customer_id IN ?
			UNION SELECT customer_id FROM subscriptions WHERE stripe_subscription_id IN ?
			UNION SELECT customer_id FROM payments WHERE stripe_invoice_id IN ? OR stripe_payment_intent_id IN ?)
		ORDER BY id FOR KEY SHARE`, args...).Scan(&locked).Error
	if err != nil {
		return nil, fmt.Errorf("eventindex: lock customers: %w", err)
	}
	erased = make(map[string]bool, len(locked))
	for _, c := range locked {
		erased[c.ID] = c.Issuer == customers.ErasedIssuer
	}
	return erased, nil
}
