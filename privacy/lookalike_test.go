package privacy

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/outbox"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// stripeGone is a provider that has nothing left to cancel and deletes anything.
type stripeGone struct{}

func (stripeGone) CancelSubscription(context.Context, string, string, bool) (gateway.Subscription, error) {
	return gateway.Subscription{}, gateway.ErrNotFound
}

func (stripeGone) GetSubscription(context.Context, string) (gateway.Subscription, error) {
	return gateway.Subscription{}, gateway.ErrNotFound
}

func (stripeGone) DeleteCustomer(context.Context, string, string) error { return nil }

// jobSink accepts the erasure's later scrubs without running them.
type jobSink struct{}

func (jobSink) InsertTx(context.Context, *sql.Tx, river.JobArgs, *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return &rivertype.JobInsertResult{Job: &rivertype.JobRow{}}, nil
}

// someone is a provisioned customer with a Stripe customer id and one stored
// invoice event quoting their e-mail and name, not applied (nor indexed) yet.
type someone struct {
	who        *auth.Principal
	id, stripe string
	event      string
}

func newSomeone(t *testing.T, db *gorm.DB, subject, email, name string) *someone {
	t.Helper()
	ctx := context.Background()
	p := &auth.Principal{Issuer: "https://id.example", Subject: subject, Email: email, Name: name, Roles: []auth.Role{auth.RoleCustomer}}
	c, err := customers.NewService(db).Provision(ctx, p)
	require.NoError(t, err)
	s := &someone{who: p, id: c.ID, stripe: "cus_" + subject, event: "evt_" + subject}
	require.NoError(t, db.Exec(`UPDATE customers SET stripe_customer_id = ? WHERE id = ?`, s.stripe, c.ID).Error)
	inv := webhooktest.Invoice{ID: "in_" + subject, Subscription: "sub_" + subject, Customer: s.stripe, Price: "price_1",
		Amount: 2400, Currency: "eur", PeriodStart: time.Now(), PeriodEnd: time.Now()}.Object()
	inv["customer_email"], inv["customer_name"] = email, name
	inv["description"] = fmt.Sprintf("Box for %s <%s>", name, email)
	ev := &models.WebhookEvent{ProviderEventID: s.event, Type: "invoice.paid", EventCreated: time.Now(), Status: models.WebhookReceived,
		Payload: webhooktest.Event(s.event, "invoice.paid", time.Now(), inv, nil)}
	require.NoError(t, db.Create(ev).Error)
	return s
}

func TestPrivacyFindsEventsByIdentifiersNotByText(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
	ctx := context.Background()
	p := New(db, stripeGone{}, idempotency.NewStore(db), jobSink{}, nil)
	alice := newSomeone(t, db, "alice", "alice@x.example", "Alice Victim")
	lookalikes := []*someone{
		newSomeone(t, db, "lice", "lice@x.example", "invoice"),
		newSomeone(t, db, "object", "object@x.example", "object"),
		newSomeone(t, db, "subscription", "subscription@x.example", "subscription"),
		newSomeone(t, db, "evt", "evt@x.example", "evt_"),
		newSomeone(t, db, "paid", "paid@x.example", "invoice.paid"),
	}

	for _, s := range lookalikes {
		out, err := p.Export(ctx, s.who)
		require.NoError(t, err)
		for _, v := range []string{"alice", "Alice", alice.id, alice.stripe, alice.event} {
			require.False(t, strings.Contains(out.JSON, v), "%q in the export of %s", v, s.who.Subject)
		}
		var doc struct{ ProviderEvents []struct{ ID string } }
		require.NoError(t, json.Unmarshal([]byte(out.JSON), &doc))
		require.Len(t, doc.ProviderEvents, 1)
		require.Equal(t, s.event, doc.ProviderEvents[0].ID)
	}

	for _, s := range lookalikes {
		before := dbtest.StoredEventPayloads(t, db)
		out, err := p.Delete(ctx, s.who, models.DeleteMyAccountInput{Confirm: true, IdempotencyKey: "del-" + s.who.Subject})
		require.NoError(t, err)
		require.True(t, out.Deleted, "%v", out.UserErrors)
		n, err := p.scrubErased(ctx, s.id) // the later scrubs match the same way
		require.NoError(t, err)
		require.Zero(t, n, "scrubbed once already")
		after := dbtest.StoredEventPayloads(t, db)
		require.NotEqual(t, before[s.event], after[s.event])
		for id, b := range before {
			if id != s.event {
				require.Equal(t, b, after[id], "%s changed by the erasure of %s", id, s.who.Subject)
			}
		}
	}

	// Alice's own export is whole, her event as Stripe sent it.
	out, err := p.Export(ctx, alice.who)
	require.NoError(t, err)
	require.Contains(t, out.JSON, `"customer_email":"alice@x.example"`)
	require.Contains(t, out.JSON, `"object":"invoice"`)
}

// sealedMessage reads outgoing messages with their payload opened.
type sealedMessage struct {
	ID      string
	Payload []byte `gorm:"serializer:sealed"`
}

func (sealedMessage) TableName() string { return "webhook_messages" }

// TestTheLaterScrubForgetsAShipmentMessageWrittenBesideTheErasure writes a
// shipment.created with the address after the erasure (as a path that did not
// wait for the customer's lock could): the scrub job removes the address.
func TestTheLaterScrubForgetsAShipmentMessageWrittenBesideTheErasure(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
	ctx := context.Background()
	p := New(db, stripeGone{}, idempotency.NewStore(db), jobSink{}, nil)
	erin := newSomeone(t, db, "erin", "erin@x.example", "Erin Late")
	admin := &auth.Principal{Issuer: "https://id.example", Subject: "ops", Roles: []auth.Role{auth.RoleAdmin}}
	_, _, err := outbox.NewService(db, idempotency.NewStore(db), outbox.Targets{}, time.Now).CreateEndpoint(ctx, admin,
		models.CreateWebhookEndpointInput{URL: "https://3pl.example/in", EventTypes: []string{outbox.EventShipmentCreated},
			Reason: "the 3PL goes live", IdempotencyKey: "ep-1"})
	require.NoError(t, err)
	out, err := p.Delete(ctx, erin.who, models.DeleteMyAccountInput{Confirm: true, IdempotencyKey: "del-erin"})
	require.NoError(t, err)
	require.True(t, out.Deleted)

	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		return outbox.ShipmentCreated(ctx, tx, &models.Shipment{ID: uuid.NewString(), CustomerID: erin.id, SubscriptionID: uuid.NewString(),
			PlanID: uuid.NewString(), PeriodStart: time.Now(), PeriodEnd: time.Now(),
			Address: models.Address{Name: "Erin Late", Line1: "9 Hidden Road", City: "Nowhere", PostalCode: "1", Country: "DE"}}, "Hot box")
	}))
	text := func() string {
		var msgs []sealedMessage
		require.NoError(t, db.Find(&msgs).Error)
		var b strings.Builder
		for _, m := range msgs {
			b.Write(m.Payload)
		}
		return b.String()
	}
	require.Contains(t, text(), "9 Hidden Road")
	_, err = p.scrubErased(ctx, erin.id)
	require.NoError(t, err)
	require.NotContains(t, text(), "9 Hidden Road")
	require.NotContains(t, text(), "Erin Late")
}
