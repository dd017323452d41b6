package notifications

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertest"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/database/dbtest"
)

func TestEnqueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("writes the notification and one send job in the caller's transaction", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		customerID := b.newCustomer(t, "ana@example.com")
		subID, payID := b.newPayment(t, customerID)
		data := map[string]string{DataAmount: "$24.00", DataURL: "https://invoice.stripe.com/i/test"}
		require.NoError(t, b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return Enqueue(ctx, tx, b.river, Notification{
				CustomerID: customerID, Kind: KindPaymentFailed, SubscriptionID: &subID, PaymentID: &payID,
				Data: data, DedupeKey: "evt_1:payment_failed",
			})
		}))

		var row struct {
			ID, CustomerID, Kind, SubscriptionID, PaymentID, DedupeKey string
			Data                                                       []byte
			Sent                                                       bool
		}
		require.NoError(t, b.db.Raw(`SELECT id, customer_id, kind, subscription_id, payment_id, dedupe_key, data,
			sent_at IS NOT NULL AS sent FROM notifications`).Scan(&row).Error)
		require.Equal(t, customerID, row.CustomerID)
		require.Equal(t, string(KindPaymentFailed), row.Kind)
		require.Equal(t, subID, row.SubscriptionID)
		require.Equal(t, payID, row.PaymentID)
		require.Equal(t, "evt_1:payment_failed", row.DedupeKey)
		require.False(t, row.Sent)
		var stored map[string]string
		require.NoError(t, json.Unmarshal(row.Data, &stored))
		require.Equal(t, data, stored)

		job := rivertest.RequireInserted(ctx, t, riverdatabasesql.New(b.sqlDB), &SendArgs{},
			&rivertest.RequireInsertedOpts{Queue: river.QueueDefault})
		require.Equal(t, row.ID, job.Args.NotificationID)
		b.requireCounts(t, 1, 1)
	})

	t.Run("the same dedupe key writes nothing more", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		n := Notification{CustomerID: b.newCustomer(t, "ana@example.com"), Kind: KindSubscriptionStarted, DedupeKey: "sub_1:started"}
		b.enqueue(t, n)
		b.enqueue(t, n) // a replayed cause, in a later transaction
		require.NoError(t, b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := Enqueue(ctx, tx, b.river, n); err != nil { // twice in one transaction
				return err
			}
			return Enqueue(ctx, tx, b.river, n)
		}))
		b.requireCounts(t, 1, 1)
	})

	t.Run("concurrent transactions with the same dedupe key write one", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		n := Notification{CustomerID: b.newCustomer(t, "ana@example.com"), Kind: KindPaymentSucceeded, DedupeKey: "evt_2:payment_succeeded"}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				errs <- b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
					return Enqueue(ctx, tx, b.river, n)
				})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		b.requireCounts(t, 1, 1)
	})

	t.Run("a rolled-back transaction leaves neither row nor job", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		customerID := b.newCustomer(t, "ana@example.com")
		rollback := errors.New("the change failed")
		err := b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := Enqueue(ctx, tx, b.river, Notification{CustomerID: customerID, Kind: KindSubscriptionCanceled, DedupeKey: "sub_1:canceled"}); err != nil {
				return err
			}
			return rollback
		})
		require.ErrorIs(t, err, rollback)
		b.requireCounts(t, 0, 0)
	})

	t.Run("outside a transaction it refuses", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		err := Enqueue(ctx, b.db, b.river, Notification{CustomerID: b.newCustomer(t, "ana@example.com"), Kind: KindSubscriptionPaused, DedupeKey: "k"})
		require.ErrorIs(t, err, errNotInTransaction)
		b.requireCounts(t, 0, 0)
	})

	t.Run("an invalid notification fails the transaction", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		customerID := b.newCustomer(t, "ana@example.com")
		valid := func() Notification {
			return Notification{CustomerID: customerID, Kind: KindPaymentFailed, DedupeKey: "evt_3:payment_failed"}
		}
		for _, tc := range []struct {
			name   string
			change func(n *Notification)
			want   string
		}{
			{"customer id", func(n *Notification) { n.CustomerID = "cus_123" }, "customer id"},
			{"unknown kind", func(n *Notification) { n.Kind = "birthday" }, "unknown kind"},
			{"subscription id", func(n *Notification) { n.SubscriptionID = ptr("sub_123") }, "subscription id"},
			{"payment id", func(n *Notification) { n.PaymentID = ptr("") }, "payment id"},
			{"empty dedupe key", func(n *Notification) { n.DedupeKey = "" }, "dedupe key"},
			{"long dedupe key", func(n *Notification) { n.DedupeKey = strings.Repeat("é", 301) }, "dedupe key"},
			{"unknown data key", func(n *Notification) { n.Data = map[string]string{"amuont": "$1"} }, "unknown data key"},
			{"url", func(n *Notification) { n.Data = map[string]string{DataURL: "javascript:alert(1)"} }, "URL"},
			{"time", func(n *Notification) { n.Data = map[string]string{DataNextAttempt: "tomorrow"} }, "RFC 3339"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n := valid()
				tc.change(&n)
				err := b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return Enqueue(ctx, tx, b.river, n) })
				require.ErrorContains(t, err, tc.want)
			})
		}
		b.enqueue(t, valid()) // the baseline itself is accepted
		b.requireCounts(t, 1, 1)
	})
}

// TestEnqueueWritesNothingForACustomerErasedWhileItWaits erases the customer
// (issuer changed under FOR UPDATE, as erasure does) while a caller that holds no
// lock of its own enqueues a notice for them, and commits the erasure once the
// enqueue waits on it: the enqueue must see the erasure and write nothing. The
// NOT EXISTS of one INSERT reads the snapshot taken before its wait, so it let
// the notice, invoice link included, in after the erasure.
func TestEnqueueWritesNothingForACustomerErasedWhileItWaits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	customerID := b.newCustomer(t, "ana@example.com")
	subID, payID := b.newPayment(t, customerID)

	erasure := b.db.Begin()
	defer erasure.Rollback()
	var xid string
	require.NoError(t, erasure.Raw("SELECT txid_current()::text").Scan(&xid).Error)
	require.NoError(t, erasure.Exec("SELECT id FROM customers WHERE id = ? FOR UPDATE", customerID).Error)
	require.NoError(t, erasure.Exec("UPDATE customers SET issuer = ?, subject = ? WHERE id = ?",
		customers.ErasedIssuer, uuid.NewString(), customerID).Error)

	done := make(chan error, 1)
	go func() {
		done <- b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return Enqueue(ctx, tx, b.river, Notification{
				CustomerID: customerID, Kind: KindPaymentFailed, SubscriptionID: &subID, PaymentID: &payID,
				Data: map[string]string{DataAmount: "$24.00", DataURL: "https://invoice.stripe.com/i/erased"}, DedupeKey: "evt_erased:payment_failed",
			})
		})
	}()
	dbtest.AwaitWaiter(t, b.db, xid, done) // the enqueue waits on the erasure's lock
	require.NoError(t, erasure.Commit().Error)
	require.NoError(t, <-done)
	var n int64
	require.NoError(t, b.db.Raw("SELECT count(*) FROM notifications WHERE customer_id = ?", customerID).Scan(&n).Error)
	require.Zero(t, n, "a notice was written for a customer erased while it waited")
}
