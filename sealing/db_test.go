package sealing_test

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/sealing"
)

// The personal data the rows below hold; no raw column may contain any of it.
const (
	email  = "Ana.Canary@Example.com"
	name   = "Ana Canary-Person"
	street = "17 Capsaicin Canary Lane"
	city   = "Scovilleburg"
	// payloadCanary is in the stored webhook body.
	payloadCanary = "payload.canary@example.com"
	// secretCanary is in a stored idempotent result (a PaymentIntent's client secret).
	secretCanary = "pi_canary_secret_capsaicin"
)

var canaries = []string{email, "ana.canary@example.com", name, street, city, payloadCanary, secretCanary}

// rows is one of each sealed model, linked as the application links them.
type rows struct {
	customer     models.Customer
	subscription models.Subscription
	shipment     models.Shipment
	event        models.WebhookEvent
	// keyID is the idempotency_keys row holding a sealed result; key is its scope.
	keyID int64
	key   idempotency.Scope
	// endpointID and messageID are outgoing webhook rows (package outbox), written
	// here with raw statements: their sealed columns are read back with OpenColumn.
	endpointID, messageID string
}

// idemResult is what a mutation stores with its idempotency key.
type idemResult struct {
	ClientSecret string `json:"clientSecret"`
}

func keysFor(t *testing.T) (string, *sealing.Keyring) {
	t.Helper()
	v, err := sealing.Generate()
	require.NoError(t, err)
	k, err := sealing.Parse(v)
	require.NoError(t, err)
	return v, k
}

// sealedDB is a fresh migrated database with k installed.
func sealedDB(t *testing.T, k *sealing.Keyring) *gorm.DB {
	t.Helper()
	db := dbtest.New(t)
	require.NoError(t, sealing.Install(db, k))
	return db
}

func writeRows(t *testing.T, db *gorm.DB, suffix string) rows {
	t.Helper()
	var r rows
	var productID, planID, paymentID string
	require.NoError(t, db.Raw(`INSERT INTO products (name) VALUES ('Hot box') RETURNING id`).Scan(&productID).Error)
	require.NoError(t, db.Raw(`INSERT INTO plans (product_id, billing_interval, amount, currency) VALUES (?, 'MONTH', 2400, 'USD') RETURNING id`,
		productID).Scan(&planID).Error)
	n := name
	r.customer = models.Customer{Issuer: "https://idp.test", Subject: "ana-" + suffix, Email: email, Name: &n}
	require.NoError(t, db.Create(&r.customer).Error)
	line2 := "Flat 3"
	addr := models.Address{Name: name, Line1: street, Line2: &line2, City: city, PostalCode: "12345", Country: "US"}
	r.subscription = models.Subscription{ID: uuid.NewString(), CustomerID: r.customer.ID, PlanID: planID,
		Status: models.SubscriptionActive, ShippingAddress: addr}
	require.NoError(t, db.Create(&r.subscription).Error)
	require.NoError(t, db.Raw(`INSERT INTO payments (subscription_id, customer_id, amount, currency, status, stripe_invoice_id)
		VALUES (?, ?, 2400, 'USD', 'SUCCEEDED', ?) RETURNING id`, r.subscription.ID, r.customer.ID, "in_"+suffix).Scan(&paymentID).Error)
	now := time.Now().UTC().Truncate(time.Second)
	r.shipment = models.Shipment{SubscriptionID: r.subscription.ID, CustomerID: r.customer.ID, PaymentID: paymentID, PlanID: planID,
		StripeInvoiceID: "in_" + suffix, PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0), Address: addr, Status: models.ShipmentPending}
	require.NoError(t, db.Create(&r.shipment).Error)
	r.event = models.WebhookEvent{ProviderEventID: "evt_" + suffix, Type: "customer.updated", EventCreated: now,
		Payload: []byte(`{"id":"evt_` + suffix + `","data":{"object":{"email":"` + payloadCanary + `"}}}`), Status: models.WebhookReceived}
	require.NoError(t, db.Create(&r.event).Error)
	// The statement context carries the keys a test put on the handle (a rotated set).
	r.key = idempotency.Scope{Principal: "https://idp.test|ana-" + suffix, Operation: "createSubscription", Key: "k-" + suffix}
	_, _, err := idempotency.Run(db.Statement.Context, idempotency.NewStore(db), r.key, suffix,
		func(context.Context) (idemResult, error) {
			return idemResult{ClientSecret: secretCanary + "_" + suffix}, nil
		})
	require.NoError(t, err)
	require.NoError(t, db.Raw(`SELECT id FROM idempotency_keys WHERE key = ?`, r.key.Key).Scan(&r.keyID).Error)
	r.endpointID, r.messageID = uuid.NewString(), uuid.NewString()
	// Sealed with the keys the statement context carries, as a model write is.
	k, ok := sealing.FromContext(db.Statement.Context)
	if !ok {
		k, _ = sealing.FromDB(db)
	}
	seal := func(table, column, id string, plain []byte) ([]byte, error) {
		return k.Seal(sealing.AAD(table, column, id), plain)
	}
	secret, err := seal("webhook_endpoints", "secret", r.endpointID, []byte(secretCanary+"_whsec_"+suffix))
	require.NoError(t, err)
	previous, err := seal("webhook_endpoints", "previous_secret", r.endpointID, []byte(secretCanary+"_old_"+suffix))
	require.NoError(t, err)
	require.NoError(t, db.Exec(`INSERT INTO webhook_endpoints (id, url, event_types, secret, previous_secret) VALUES (?, 'https://3pl.example/in', '["*"]', ?, ?)`,
		r.endpointID, secret, previous).Error)
	payload, err := seal("webhook_messages", "payload", r.messageID, []byte(`{"data":{"address":{"line1":"`+street+`"}}}`))
	require.NoError(t, err)
	require.NoError(t, db.Exec(`INSERT INTO webhook_messages (id, event_type, payload) VALUES (?, 'shipment.created', ?)`, r.messageID, payload).Error)
	return r
}

// openRaw reads a sealed column of a row that no model of this package maps.
func openRaw(db *gorm.DB, c sealing.Column, id string) error {
	var sealed []byte
	if err := db.Raw(`SELECT `+c.Name+` FROM `+c.Table+` WHERE id = ?`, id).Row().Scan(&sealed); err != nil {
		return err
	}
	_, err := sealing.OpenColumn(db, c.Table, c.Name, id, sealed)
	return err
}

// replay reads a stored idempotent result back through the idempotency store.
func replay(db *gorm.DB, ctx context.Context, w rows) (idemResult, error) {
	got, replayed, err := idempotency.Run(ctx, idempotency.NewStore(db), w.key, strings.TrimPrefix(w.key.Key, "k-"),
		func(context.Context) (idemResult, error) {
			return idemResult{}, errors.New("the stored result must be replayed")
		})
	if err == nil && !replayed {
		err = errors.New("not replayed")
	}
	return got, err
}

// takeByID reads the row of T with id through db (opening what is sealed).
func takeByID[T any](t *testing.T, db *gorm.DB, id string) T {
	t.Helper()
	var row T
	require.NoError(t, db.Take(&row, "id = ?", id).Error)
	return row
}

// rawRows returns every row of every table holding sealed data, as PostgreSQL's text
// form of the whole row, plus the raw bytes of each sealed column.
func rawRows(t *testing.T, db *gorm.DB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, table := range []string{"customers", "subscriptions", "shipments", "webhook_events", "notifications", "payments", "idempotency_keys"} {
		var texts []string
		require.NoError(t, db.Raw(`SELECT t::text FROM `+table+` t`).Scan(&texts).Error)
		for _, s := range texts {
			out = append(out, []byte(s))
		}
	}
	for _, c := range sealing.Columns {
		var vals [][]byte
		require.NoError(t, db.Raw(`SELECT `+c.Name+` FROM `+c.Table+` WHERE `+c.Name+` IS NOT NULL`).Scan(&vals).Error)
		out = append(out, vals...)
	}
	return out
}

func requireNoPlaintext(t *testing.T, db *gorm.DB) {
	t.Helper()
	raw := rawRows(t, db)
	require.NotEmpty(t, raw)
	for _, row := range raw {
		for _, c := range canaries {
			require.False(t, bytes.Contains(bytes.ToLower(row), bytes.ToLower([]byte(c))), "plaintext %q stored in %q", c, row)
		}
	}
}

func TestSealedColumnsHoldNoPlaintextAndReadBack(t *testing.T) {
	_, k := keysFor(t)
	db := sealedDB(t, k)
	w := writeRows(t, db, "1")
	requireNoPlaintext(t, db)

	c := takeByID[models.Customer](t, db, w.customer.ID)
	require.Equal(t, email, c.Email)
	require.Equal(t, name, *c.Name)
	want, err := k.EmailIndex(email)
	require.NoError(t, err)
	require.Equal(t, want, c.EmailHash, "the blind index is written with the e-mail")

	s := takeByID[models.Subscription](t, db, w.subscription.ID)
	require.Equal(t, w.subscription.ShippingAddress, s.ShippingAddress)
	sh := takeByID[models.Shipment](t, db, w.shipment.ID)
	require.Equal(t, street, sh.Address.Line1)
	ev := takeByID[models.WebhookEvent](t, db, w.event.ID)
	require.Equal(t, w.event.Payload, ev.Payload)
	res, err := replay(db, context.Background(), w)
	require.NoError(t, err)
	require.Equal(t, secretCanary+"_1", res.ClientSecret)

	// An update re-seals and keeps the index in step.
	c.Email = "new.canary@example.com"
	require.NoError(t, db.Select("email", "email_hash").Updates(&c).Error)
	again := takeByID[models.Customer](t, db, c.ID)
	require.Equal(t, "new.canary@example.com", again.Email)
	idx, err := k.EmailIndex("NEW.canary@example.com")
	require.NoError(t, err)
	require.Equal(t, idx, again.EmailHash)

	// No e-mail and no name are NULL, not sealed empties.
	none := models.Customer{Issuer: "https://idp.test", Subject: "nobody"}
	require.NoError(t, db.Create(&none).Error)
	var nulls struct{ Email, Name, EmailHash []byte }
	require.NoError(t, db.Raw(`SELECT email, name, email_hash FROM customers WHERE id = ?`, none.ID).Scan(&nulls).Error)
	require.Nil(t, nulls.Email)
	require.Nil(t, nulls.Name)
	require.Nil(t, nulls.EmailHash)
	require.NoError(t, db.Take(&none, "id = ?", none.ID).Error)
	require.Empty(t, none.Email)
	require.Nil(t, none.Name)
}

func TestCiphertextMovedToAnotherRowDoesNotOpen(t *testing.T) {
	_, k := keysFor(t)
	db := sealedDB(t, k)
	a, b := writeRows(t, db, "a"), writeRows(t, db, "b")
	ids := map[string][2]string{
		"customers":         {a.customer.ID, b.customer.ID},
		"subscriptions":     {a.subscription.ID, b.subscription.ID},
		"shipments":         {a.shipment.ID, b.shipment.ID},
		"webhook_events":    {a.event.ID, b.event.ID},
		"idempotency_keys":  {strconv.FormatInt(a.keyID, 10), strconv.FormatInt(b.keyID, 10)},
		"webhook_endpoints": {a.endpointID, b.endpointID},
		"webhook_messages":  {a.messageID, b.messageID},
	}
	byID := map[string]rows{ids["idempotency_keys"][0]: a, ids["idempotency_keys"][1]: b}
	for _, c := range sealing.Columns {
		t.Run(c.Table+"."+c.Name, func(t *testing.T) {
			idA, idB := ids[c.Table][0], ids[c.Table][1]
			// Copy a's value over b's, as someone with write access to the database might.
			require.NoError(t, db.Exec(`UPDATE `+c.Table+` SET `+c.Name+` = (SELECT `+c.Name+` FROM `+c.Table+` WHERE id = ?) WHERE id = ?`,
				idA, idB).Error)
			var err error
			switch c.Table {
			case "customers":
				err = db.Take(&models.Customer{}, "id = ?", idB).Error
			case "subscriptions":
				err = db.Take(&models.Subscription{}, "id = ?", idB).Error
			case "shipments":
				err = db.Take(&models.Shipment{}, "id = ?", idB).Error
			case "webhook_events":
				err = db.Take(&models.WebhookEvent{}, "id = ?", idB).Error
			case "idempotency_keys":
				_, err = replay(db, context.Background(), byID[idB])
			default:
				err = openRaw(db, c, idB)
			}
			require.Error(t, err)
			require.True(t, errors.Is(err, sealing.ErrUnopenable), "clear error, got %v", err)
			require.Contains(t, err.Error(), c.Table+"."+c.Name)
			require.Contains(t, err.Error(), idB, "names the row")
			require.NotContains(t, err.Error(), street)

			// The row it came from still opens.
			switch c.Table {
			case "customers":
				require.NoError(t, db.Take(&models.Customer{}, "id = ?", idA).Error)
			case "subscriptions":
				require.NoError(t, db.Take(&models.Subscription{}, "id = ?", idA).Error)
			case "shipments":
				require.NoError(t, db.Take(&models.Shipment{}, "id = ?", idA).Error)
			case "webhook_events":
				require.NoError(t, db.Take(&models.WebhookEvent{}, "id = ?", idA).Error)
			case "idempotency_keys":
				_, err := replay(db, context.Background(), byID[idA])
				require.NoError(t, err)
			default:
				require.NoError(t, openRaw(db, c, idA))
			}
		})
	}
	t.Run("a raw read opens only for its own row", func(t *testing.T) {
		var sealed []byte
		require.NoError(t, db.Raw(`SELECT payload FROM webhook_events WHERE id = ?`, a.event.ID).Row().Scan(&sealed))
		plain, err := sealing.OpenColumn(db, "webhook_events", "payload", a.event.ID, sealed)
		require.NoError(t, err)
		require.Equal(t, a.event.Payload, plain)
		_, err = sealing.OpenColumn(db, "webhook_events", "payload", b.event.ID, sealed)
		require.ErrorIs(t, err, sealing.ErrUnopenable)
	})
}

func TestWritesWithoutKeysOrIDAreRefused(t *testing.T) {
	db := dbtest.New(t) // no Install
	err := db.Create(&models.Customer{Issuer: "https://idp.test", Subject: "x", Email: email}).Error
	require.ErrorContains(t, err, "sealing.Install")

	_, k := keysFor(t)
	withKeys := sealedDB(t, k)
	// A subscription's id is chosen by the caller; without one there is nothing to bind to.
	err = withKeys.Create(&models.Subscription{CustomerID: uuid.NewString(), PlanID: uuid.NewString(),
		Status: models.SubscriptionActive, ShippingAddress: models.Address{Line1: street}}).Error
	require.ErrorContains(t, err, "subscriptions.shipping_address")
	_, err = sealing.SealColumn(withKeys, "webhook_events", "payload", "", []byte("x"))
	require.Error(t, err)
}

func TestRotationThenReencrypt(t *testing.T) {
	v1, k1 := keysFor(t)
	db := sealedDB(t, k1)
	var written []rows
	for _, s := range []string{"r1", "r2", "r3"} {
		written = append(written, writeRows(t, db, s))
	}

	v2, err := sealing.Rotate(v1)
	require.NoError(t, err)
	k2, err := sealing.Parse(v2)
	require.NoError(t, err)
	// The rotated keys on a new handle, as after a restart with the new value.
	ctx2 := sealing.WithKeyring(context.Background(), k2)
	db2 := db.WithContext(ctx2)

	// Old rows still read; a new write uses the new primary.
	c := takeByID[models.Customer](t, db2, written[0].customer.ID)
	require.Equal(t, email, c.Email)
	fresh := writeRows(t, db2, "new")
	census, err := sealing.Census(context.Background(), db)
	require.NoError(t, err)
	customers := census[sealing.Column{Table: "customers", Name: "email"}]
	require.Equal(t, 3, customers[k1.PrimaryKeyID()], "the old rows are under the old key")
	require.Equal(t, 1, customers[k2.PrimaryKeyID()], "the new row is under the new one")

	// Interrupted after the first batch that moved a value: what was done stays done.
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	_, err = sealing.Reencrypt(ctx, db, k2, 1, func(r sealing.ColumnReport) {
		if r.Resealed > 0 {
			once.Do(cancel)
		}
	})
	require.Error(t, err, "the cancelled run stops")
	partial, err := sealing.Census(context.Background(), db)
	require.NoError(t, err)
	require.Equal(t, 2, partial[sealing.Column{Table: "customers", Name: "email"}][k2.PrimaryKeyID()], "one batch of one row was moved")

	// Resumed: everything moves, and the counts say so.
	reports, err := sealing.Reencrypt(context.Background(), db, k2, 2, nil)
	require.NoError(t, err)
	got := map[string][2]int{}
	for _, r := range reports {
		got[r.Table+"."+r.Name] = [2]int{r.Scanned, r.Resealed}
	}
	require.Equal(t, map[string][2]int{
		"customers.email":                   {4, 2}, // one was new, one moved before the interruption
		"customers.name":                    {4, 3},
		"subscriptions.shipping_address":    {4, 3},
		"shipments.address":                 {4, 3},
		"webhook_events.payload":            {4, 3},
		"idempotency_keys.response":         {4, 3},
		"webhook_endpoints.secret":          {4, 3},
		"webhook_endpoints.previous_secret": {4, 3},
		"webhook_messages.payload":          {4, 3},
	}, got)

	after, err := sealing.Census(context.Background(), db)
	require.NoError(t, err)
	for _, col := range sealing.Columns {
		require.Equal(t, map[uint32]int{k2.PrimaryKeyID(): 4}, after[col], "%s.%s: nothing left under the old key", col.Table, col.Name)
	}
	requireNoPlaintext(t, db)

	// Proof by the keys themselves: the old set alone opens nothing now; the new one everything.
	_, err = sealing.Reencrypt(context.Background(), db, k2, 10, nil)
	require.NoError(t, err)
	oldOnly := db.WithContext(sealing.WithKeyring(context.Background(), k1))
	require.ErrorIs(t, oldOnly.Take(&models.Customer{}, "id = ?", written[1].customer.ID).Error, sealing.ErrUnopenable)
	for _, w := range append(written, fresh) {
		c := takeByID[models.Customer](t, db2, w.customer.ID)
		require.Equal(t, email, c.Email)
		s := takeByID[models.Subscription](t, db2, w.subscription.ID)
		require.Equal(t, street, s.ShippingAddress.Line1)
		ev := takeByID[models.WebhookEvent](t, db2, w.event.ID)
		require.Equal(t, w.event.Payload, ev.Payload)
		res, err := replay(db2, ctx2, w)
		require.NoError(t, err)
		require.Contains(t, res.ClientSecret, secretCanary)
	}
	_, err = replay(oldOnly, oldOnly.Statement.Context, written[1])
	require.ErrorIs(t, err, sealing.ErrUnopenable, "the stored result too is under the new key only")
	again, err := sealing.Reencrypt(context.Background(), db, k2, 10, nil)
	require.NoError(t, err)
	for _, r := range again {
		require.Zero(t, r.Resealed, "a second run has nothing to do")
	}
}

func TestColumnsListEverySealedModelField(t *testing.T) {
	var fromModels []string
	cache := &sync.Map{}
	for _, m := range []any{&models.Customer{}, &models.Subscription{}, &models.Shipment{}, &models.WebhookEvent{},
		&models.Payment{}, &models.Plan{}, &models.Product{}} {
		s, err := schema.Parse(m, cache, schema.NamingStrategy{})
		require.NoError(t, err)
		for _, f := range s.Fields {
			if f.TagSettings["SERIALIZER"] == sealing.SerializerName {
				fromModels = append(fromModels, s.Table+"."+f.DBName)
			}
		}
	}
	// Written by package idempotency's raw statements (sealed with SealColumn's
	// scheme); TestSealedColumnsHoldNoPlaintextAndReadBack proves they are sealed.
	fromModels = append(fromModels, "idempotency_keys.response")
	// Package outbox's own row types (TestOutboxSealedColumnsAreListed there).
	fromModels = append(fromModels, "webhook_endpoints.secret", "webhook_endpoints.previous_secret", "webhook_messages.payload")
	var listed []string
	for _, c := range sealing.Columns {
		listed = append(listed, c.Table+"."+c.Name)
	}
	sort.Strings(fromModels)
	sort.Strings(listed)
	require.Equal(t, listed, fromModels, "sealing.Columns (what reencrypt moves) must match the sealed model fields")
}
