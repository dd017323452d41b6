package eventindex

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

func TestFromObjectNamesIdsAtKnownPlacesOnly(t *testing.T) {
	t.Parallel()
	ours := uuid.NewString()
	inv := webhooktest.Invoice{ID: "in_1", Subscription: "sub_1", Customer: "cus_1", Price: "price_1", Amount: 2400,
		Currency: "eur", PeriodStart: time.Unix(1700000000, 0), PeriodEnd: time.Unix(1702592000, 0)}.Object()
	// Free text quoting other people's ids and words that are JSON keys names nobody.
	inv["description"] = "cus_2 sub_2 in_2 " + uuid.NewString() + " invoice object subscription"
	inv["customer_email"], inv["customer_name"] = "alice@x.example", "invoice"
	inv["subscription_details"] = map[string]any{"metadata": map[string]any{"scoville_customer_id": ours}}
	raw, err := json.Marshal(inv)
	require.NoError(t, err)
	require.ElementsMatch(t, []Subject{
		{Invoice, "in_1"}, {StripeCustomer, "cus_1"}, {Subscription, "sub_1"},
		{PaymentIntent, "pi_in_1"}, {Charge, "ch_in_1"}, {Customer, ours},
	}, FromObject(raw))

	for name, tc := range map[string]struct {
		obj  string
		want []Subject
	}{
		"a customer by its own id and our metadata": {`{"id":"cus_9","object":"customer","email":"x@y","metadata":{"scoville_customer_id":"` + ours + `"}}`,
			[]Subject{{StripeCustomer, "cus_9"}, {Customer, ours}}},
		"an expanded reference": {`{"id":"ch_1","object":"charge","customer":{"id":"cus_3","object":"customer"},"invoice":null}`,
			[]Subject{{Charge, "ch_1"}, {StripeCustomer, "cus_3"}}},
		"a dispute names its charge and payment intent, not itself": {`{"id":"dp_1","object":"dispute","charge":"ch_1","payment_intent":"pi_1"}`,
			[]Subject{{Charge, "ch_1"}, {PaymentIntent, "pi_1"}}},
		"checkout's client reference": {`{"id":"cs_1","object":"checkout.session","client_reference_id":"` + ours + `","customer":null}`,
			[]Subject{{Customer, ours}}},
		"a client reference elsewhere is not ours": {`{"id":"x_1","object":"other","client_reference_id":"` + ours + `"}`, nil},
		"our id must be a uuid":                    {`{"id":"cus_9","object":"customer","metadata":{"scoville_customer_id":"invoice"}}`, []Subject{{StripeCustomer, "cus_9"}}},
		"not JSON":                                 {`not json`, nil},
		"not an object":                            {`"cus_1"`, nil},
	} {
		t.Run(name, func(t *testing.T) {
			require.ElementsMatch(t, tc.want, FromObject(json.RawMessage(tc.obj)))
		})
	}
}

// store saves an event as the route does: RECEIVED, not indexed.
func store(t *testing.T, db *gorm.DB, id string, obj map[string]any, status models.WebhookEventStatus) string {
	t.Helper()
	ev := &models.WebhookEvent{ProviderEventID: id, Type: "invoice.paid", EventCreated: time.Now(), Status: status,
		Payload: webhooktest.Event(id, "invoice.paid", time.Now(), obj, nil)}
	require.NoError(t, db.Create(ev).Error)
	return ev.ID
}

func TestIndexPendingOpensEachEventOnceAndFindMatchesWholeValues(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
	ctx := context.Background()
	inv := func(id, cus string) map[string]any {
		return webhooktest.Invoice{ID: id, Subscription: "sub_" + cus, Customer: cus, Price: "price_1", Amount: 100, Currency: "eur",
			PeriodStart: time.Now(), PeriodEnd: time.Now()}.Object()
	}
	received := store(t, db, "evt_1", inv("in_alice", "cus_alice"), models.WebhookReceived)
	failed := store(t, db, "evt_2", inv("in_lice", "cus_lice"), models.WebhookFailed)
	legacy := store(t, db, "evt_3", inv("in_alice2", "cus_alice"), models.WebhookProcessed)
	refund := store(t, db, "evt_4", map[string]any{"id": "ch_in_alice", "object": "charge", "payment_intent": "pi_x"}, models.WebhookReceived)
	broken := &models.WebhookEvent{ProviderEventID: "evt_5", Type: "x", EventCreated: time.Now(), Status: models.WebhookFailed, Payload: []byte("not json")}
	require.NoError(t, db.Create(broken).Error)

	n, err := IndexPending(ctx, db)
	require.NoError(t, err)
	require.Equal(t, 5, n, "every event not indexed, whatever its status")
	n, err = IndexPending(ctx, db)
	require.NoError(t, err)
	require.Zero(t, n, "an indexed event is never opened again, even one that names nobody")

	ids, err := Find(ctx, db, []Subject{{StripeCustomer, "cus_alice"}})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{received, legacy, refund}, ids, "by customer, and the refund of a charge her invoice names")
	ids, err = Find(ctx, db, []Subject{{StripeCustomer, "cus_lice"}})
	require.NoError(t, err)
	require.Equal(t, []string{failed}, ids, "a tail of another id is another id")
	for _, s := range []Subject{{StripeCustomer, "alice"}, {StripeCustomer, "cus_"}, {Invoice, "cus_alice"}, {StripeCustomer, "invoice"}} {
		ids, err = Find(ctx, db, []Subject{s})
		require.NoError(t, err)
		require.Empty(t, ids, "%v", s)
	}
}

// RecordAndLockCustomers indexes the event (Find sees it once committed), reports
// an erased customer, and holds each named customer's KEY SHARE lock until the
// transaction ends: an erasure's FOR UPDATE cannot have the row meanwhile. A
// look-alike Stripe id locks nobody.
func TestRecordAndLockCustomersIndexesThenLocks(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
	ctx := context.Background()
	var alice, erased string
	require.NoError(t, db.Raw(`INSERT INTO customers (issuer, subject, stripe_customer_id) VALUES ('https://idp.test', 'alice', 'cus_alice') RETURNING id`).Scan(&alice).Error)
	require.NoError(t, db.Raw(`INSERT INTO customers (issuer, subject, stripe_customer_id) VALUES (?, 'gone', 'cus_gone') RETURNING id`,
		customers.ErasedIssuer).Scan(&erased).Error)
	obj := webhooktest.Invoice{ID: "in_1", Subscription: "sub_1", Customer: "cus_alice", Price: "price_1", Amount: 100, Currency: "eur",
		PeriodStart: time.Now(), PeriodEnd: time.Now()}.Object()
	event := store(t, db, "evt_1", obj, models.WebhookReceived)
	subjects := FromObject(mustJSON(t, obj))

	tx := db.Begin()
	defer tx.Rollback()
	gone, err := RecordAndLockCustomers(ctx, tx, event, subjects)
	require.NoError(t, err)
	require.False(t, gone)
	lockedOut := func(id string) bool {
		return db.Transaction(func(other *gorm.DB) error {
			return other.Exec(`SELECT 1 FROM customers WHERE id = ? FOR UPDATE NOWAIT`, id).Error
		}) != nil
	}
	require.True(t, lockedOut(alice), "the customer the event names is locked")
	require.False(t, lockedOut(erased), "a customer the event does not name is not")
	require.NoError(t, tx.Commit().Error)
	ids, err := Find(ctx, db, []Subject{{StripeCustomer, "cus_alice"}})
	require.NoError(t, err)
	require.Equal(t, []string{event}, ids, "indexed by the same statement")

	gone, err = RecordAndLockCustomers(ctx, db, event, []Subject{{StripeCustomer, "cus_gone"}, {StripeCustomer, "cus_alic"}})
	require.NoError(t, err)
	require.True(t, gone, "an erased customer named is reported")
	_, err = RecordAndLockCustomers(ctx, db, event, subjects)
	require.NoError(t, err, "recording the same subjects again adds nothing and fails nothing")
	var n int64
	require.NoError(t, db.Raw(`SELECT count(*) FROM webhook_event_subjects WHERE event_id = ?`, event).Scan(&n).Error)
	require.EqualValues(t, len(subjects)+2, n)
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
