package notifications

import (
	"context"
	"database/sql"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/sealing"
)

// testBundle is one test's database with an insert-only River client on it.
type testBundle struct {
	db     *gorm.DB
	sqlDB  *sql.DB
	river  *river.Client[*sql.Tx]
	driver *riverdatabasesql.Driver
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db := dbtest.New(t)
	keys, err := sealing.Parse(sealing.DevelopmentKeys)
	require.NoError(t, err)
	require.NoError(t, sealing.Install(db, keys))
	sqlDB, err := db.DB()
	require.NoError(t, err)
	driver := riverdatabasesql.New(sqlDB)
	client, err := river.NewClient(driver, &river.Config{})
	require.NoError(t, err)
	return &testBundle{db: db, sqlDB: sqlDB, river: client, driver: driver}
}

// newCustomer inserts a customer with the given address and returns its id.
func (b *testBundle) newCustomer(t *testing.T, email string) string {
	t.Helper()
	name := "Ana Example"
	c := models.Customer{Issuer: "https://idp.example", Subject: uuid.NewString(), Email: email, Name: &name}
	require.NoError(t, b.db.Create(&c).Error) // e-mail and name are sealed, so through the model
	require.NotEmpty(t, c.ID)
	return c.ID
}

// newPayment inserts a product, plan, subscription and payment for customerID and
// returns the subscription and payment ids.
func (b *testBundle) newPayment(t *testing.T, customerID string) (subscriptionID, paymentID string) {
	t.Helper()
	row := b.db.Raw(`
		WITH p AS (INSERT INTO products (name) VALUES ('Hot box') RETURNING id),
		     pl AS (INSERT INTO plans (product_id, billing_interval, amount, currency)
		            SELECT id, 'MONTH', 2400, 'USD' FROM p RETURNING id),
		     s AS (INSERT INTO subscriptions (id, customer_id, plan_id, status, shipping_address)
		           SELECT gen_random_uuid(), ?, id, 'ACTIVE', '{}' FROM pl RETURNING id),
		     pay AS (INSERT INTO payments (subscription_id, customer_id, amount, currency, status, stripe_invoice_id)
		             SELECT id, ?, 2400, 'USD', 'FAILED', 'in_' || gen_random_uuid() FROM s RETURNING id, subscription_id)
		SELECT subscription_id, id FROM pay`, customerID, customerID).Row()
	require.NoError(t, row.Scan(&subscriptionID, &paymentID))
	return subscriptionID, paymentID
}

// enqueue commits n in its own transaction and returns its notification's id.
func (b *testBundle) enqueue(t *testing.T, n Notification) string {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return Enqueue(ctx, tx, b.river, n)
	}))
	var id string
	require.NoError(t, b.db.Raw("SELECT id FROM notifications WHERE dedupe_key = ?", n.DedupeKey).Row().Scan(&id))
	return id
}

// requireCounts requires exactly notifications notifications and jobs
// notification_send jobs to exist.
func (b *testBundle) requireCounts(t *testing.T, notifications, jobs int) {
	t.Helper()
	var gotNotifications, gotJobs int
	require.NoError(t, b.db.Raw(`SELECT (SELECT count(*) FROM notifications),
		(SELECT count(*) FROM river_job WHERE kind = 'notification_send')`).Row().Scan(&gotNotifications, &gotJobs))
	require.Equal(t, notifications, gotNotifications, "notifications")
	require.Equal(t, jobs, gotJobs, "notification_send jobs")
}

// fakeMailer records what it is asked to send and fails with err when set.
type fakeMailer struct {
	mu   sync.Mutex
	sent []Message
	err  error
}

func (f *fakeMailer) Send(_ context.Context, m Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.sent = append(f.sent, m)
	return nil
}

func (f *fakeMailer) messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.sent...)
}

func (f *fakeMailer) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func ptr[T any](v T) *T { return &v }
