package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/models"
)

// EventLock is how EventsByID reads the stored events it returns.
type EventLock int

// The ways EventsByID reads: plainly (an export), locked FOR UPDATE waiting for
// whoever holds an event (the event worker applying it), or locked skipping those
// held.
const (
	ReadPlain EventLock = iota
	LockWait
	LockSkip
)

// EventsByID returns the stored events with the given ids (webhook_events.id, as
// eventindex.Find returns them), in id order, the order they are locked in. Every
// writer of a customer's rows takes the events first (eventindex.LockCustomers).
func EventsByID(ctx context.Context, db *gorm.DB, ids []string, lock EventLock) ([]*models.WebhookEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	q := db.WithContext(ctx).Where("id IN ?", ids).Order("id")
	switch lock {
	case LockWait:
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	case LockSkip:
		q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
	}
	var out []*models.WebhookEvent
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("webhooks: events: %w", err)
	}
	return out, nil
}

// ScrubPersonal rewrites, in tx, each of events (an erased customer's, locked by
// EventsByID) with its personal fields set to null by path (see scrubPayload), and
// returns how many it rewrote: an event scrubbed already is left as it is. The
// rewritten payload is no longer Stripe's signed bytes; it was verified when it
// arrived, and it still applies.
func ScrubPersonal(ctx context.Context, tx *gorm.DB, events []*models.WebhookEvent) (int, error) {
	n := 0
	for _, ev := range events {
		scrubbed := scrubPayload(ev.Payload)
		if string(scrubbed) == string(ev.Payload) {
			continue
		}
		ev.Payload = scrubbed
		if err := tx.WithContext(ctx).Model(ev).Select("payload").Updates(ev).Error; err != nil {
			return n, fmt.Errorf("webhooks: scrub event: %w", err)
		}
		n++
	}
	return n, nil
}

// personalFields are Stripe object fields that hold a person's data (name,
// e-mail, address, phone) or a bearer link to a page showing them (a hosted
// invoice); erasure sets them to null wherever they appear in the customer's
// events' data.object and data.previous_attributes, except inside metadata, which
// holds our ids.
var personalFields = map[string]bool{
	"email": true, "name": true, "phone": true, "address": true, "shipping": true,
	"billing_details": true, "customer_email": true, "customer_name": true, "customer_phone": true,
	"customer_address": true, "customer_shipping": true, "customer_details": true,
	"shipping_details": true, "receipt_email": true, "individual": true,
	"hosted_invoice_url": true, "invoice_pdf": true, "receipt_url": true,
}

// freeTextFields are an object's own free text, which may quote the person
// (an invoice's description, say); they are nulled at the top of the object only.
var freeTextFields = map[string]bool{"description": true, "statement_descriptor": true}

// scrubPayload returns an event of the erased customer with the personal fields of
// its data.object and data.previous_attributes set to null, by path, and
// "erased": true added; ids, types, amounts and statuses stay, so the event still
// says what happened and can still be applied. Scrubbing a scrubbed event again
// gives the same bytes. A payload that is not JSON is replaced whole.
func scrubPayload(payload []byte) []byte {
	var tree any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // amounts and timestamps stay exact
	if dec.Decode(&tree) != nil {
		return []byte(`{"erased":true}`)
	}
	root, ok := tree.(map[string]any)
	if !ok {
		return []byte(`{"erased":true}`)
	}
	if data, ok := root["data"].(map[string]any); ok {
		for _, key := range []string{"object", "previous_attributes"} {
			obj, ok := data[key].(map[string]any)
			if !ok {
				continue
			}
			for k := range obj {
				if freeTextFields[k] {
					obj[k] = nil
				}
			}
			nullPersonal(obj)
		}
	}
	root["erased"] = true
	out, err := json.Marshal(root)
	if err != nil {
		return []byte(`{"erased":true}`)
	}
	return out
}

// nullPersonal sets the personal fields to null in v and every object inside it,
// except inside metadata.
func nullPersonal(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			switch {
			case personalFields[k]:
				t[k] = nil
			case k != "metadata":
				nullPersonal(x)
			}
		}
	case []any:
		for _, x := range t {
			nullPersonal(x)
		}
	}
}
