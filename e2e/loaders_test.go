package e2e

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
)

// countStatements counts every statement gorm runs on db from now on.
func countStatements(t *testing.T, db *gorm.DB) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	afterEveryStatement(t, db, "test:count", func(*gorm.DB) { n.Add(1) })
	return &n
}

// afterEveryStatement registers fn under name to run after every statement gorm runs
// on db: creates, queries, updates, deletes, rows and raw statements.
func afterEveryStatement(t *testing.T, db *gorm.DB, name string, fn func(*gorm.DB)) {
	t.Helper()
	cb := db.Callback()
	require.NoError(t, cb.Create().After("gorm:create").Register(name, fn))
	require.NoError(t, cb.Query().After("gorm:query").Register(name, fn))
	require.NoError(t, cb.Update().After("gorm:update").Register(name, fn))
	require.NoError(t, cb.Delete().After("gorm:delete").Register(name, fn))
	require.NoError(t, cb.Row().After("gorm:row").Register(name, fn))
	require.NoError(t, cb.Raw().After("gorm:raw").Register(name, fn))
}

// paidWithShipment gives customer one more active subscription with a paid payment
// and its shipment, and returns the subscription's id.
func (s *shop) paidWithShipment(customer string) string {
	s.t.Helper()
	payID, _ := s.paidPayment(customer, 1500)
	var pay models.Payment
	require.NoError(s.t, s.db.Take(&pay, "id = ?", payID).Error)
	var sub models.Subscription
	require.NoError(s.t, s.db.Take(&sub, "id = ?", pay.SubscriptionID).Error)
	now := time.Now().UTC()
	require.NoError(s.t, s.db.Create(&models.Shipment{SubscriptionID: sub.ID, CustomerID: sub.CustomerID, PaymentID: pay.ID, PlanID: sub.PlanID,
		StripeInvoiceID: pay.StripeInvoiceID, PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0),
		Address: sub.ShippingAddress, Status: models.ShipmentPending}).Error)
	return sub.ID
}

const dashboardQuery = `{ me { subscriptions {
	id
	payments { edges { node { id amount { amount currency } } } pageInfo { hasNextPage } }
	shipments { edges { node { id address { city } } } }
	first: payments(first: 1) { edges { cursor } }
} } }`

// TestSubscriptionChildrenAreBatched: a customer's subscriptions with their payments
// and shipments cost the same number of SQL statements whether they have one
// subscription or three, and each subscription gets its own rows.
func TestSubscriptionChildrenAreBatched(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, nil)
	one := s.token("batch-one")
	s.paidWithShipment("batch-one")
	three := s.token("batch-three")
	var subs []string
	for range 3 {
		subs = append(subs, s.paidWithShipment("batch-three"))
	}
	statements := countStatements(t, s.db)

	run := func(tok string, want int) (int64, []any) {
		t.Helper()
		// The caller is provisioned, and their plans are in the process's
		// catalog, before counting.
		s.gql(tok, `{ me { id subscriptions { plan { id } } } }`, nil)
		before := statements.Load()
		res := s.gql(tok, dashboardQuery, nil)
		n := statements.Load() - before
		require.Empty(t, res.Errors, res.Raw)
		list := res.Data["me"].(map[string]any)["subscriptions"].([]any)
		require.Len(t, list, want)
		return n, list
	}
	nOne, _ := run(one, 1)
	nThree, list := run(three, 3)
	require.Equal(t, nOne, nThree, "statements do not grow with the number of subscriptions")
	require.LessOrEqual(t, nThree, int64(6), "me, its subscriptions, one page of payments per page shape, shipments, plans")

	for _, item := range list {
		sub := item.(map[string]any)
		id := sub["id"].(string)
		require.Contains(t, subs, id)
		var pay models.Payment
		require.NoError(t, s.db.Take(&pay, "subscription_id = ?", id).Error)
		payments := sub["payments"].(map[string]any)["edges"].([]any)
		require.Len(t, payments, 1, "each subscription has its own payment: %v", sub)
		require.Equal(t, pay.ID, payments[0].(map[string]any)["node"].(map[string]any)["id"])
		shipments := sub["shipments"].(map[string]any)["edges"].([]any)
		require.Len(t, shipments, 1)
		require.Equal(t, "Berlin", shipments[0].(map[string]any)["node"].(map[string]any)["address"].(map[string]any)["city"], "sealed columns open")
		require.Len(t, sub["first"].(map[string]any)["edges"].([]any), 1)
	}
}

// TestBatchedPagesAndTheSubscriptionBound: pages read through the batching loaders
// are each subscription's own, with first/after honoured per subscription, and
// Customer.subscriptions holds the paging.MaxList newest, for the customer and in
// the staff's customer list alike.
func TestBatchedPagesAndTheSubscriptionBound(t *testing.T) {
	t.Parallel()
	s := newAdminShop(t, false, nil)
	tok := s.token("pages")
	a := s.paidWithShipment("pages")
	b := s.paidWithShipment("pages")
	var subA models.Subscription
	require.NoError(t, s.db.Take(&subA, "id = ?", a).Error)
	var older []string
	for i := range 2 { // two older payments of a
		p := models.Payment{ID: uuid.NewString(), SubscriptionID: a, CustomerID: subA.CustomerID, AmountMinor: 100, Currency: "USD",
			Status: models.PaymentFailed, StripeInvoiceID: fmt.Sprintf("in_pages_%d", i), CreatedAt: time.Now().Add(-time.Duration(i+1) * time.Hour)}
		require.NoError(t, s.db.Create(&p).Error)
		older = append(older, p.ID)
	}

	res := s.gql(tok, `{ me { subscriptions { id payments(first: 2) { edges { node { id } } pageInfo { hasNextPage endCursor } } } } }`, nil)
	require.Empty(t, res.Errors, res.Raw)
	pages := map[string]map[string]any{}
	for _, item := range res.Data["me"].(map[string]any)["subscriptions"].([]any) {
		sub := item.(map[string]any)
		pages[sub["id"].(string)] = sub["payments"].(map[string]any)
	}
	require.Len(t, pages[a]["edges"], 2)
	require.Equal(t, true, pages[a]["pageInfo"].(map[string]any)["hasNextPage"])
	require.Len(t, pages[b]["edges"], 1)
	require.Equal(t, false, pages[b]["pageInfo"].(map[string]any)["hasNextPage"])
	require.Equal(t, older[0], pages[a]["edges"].([]any)[1].(map[string]any)["node"].(map[string]any)["id"], "newest first")

	cursor := pages[a]["pageInfo"].(map[string]any)["endCursor"].(string)
	res = s.gql(tok, `query($a: ID!, $b: ID!, $after: String) {
		x: subscription(id: $a) { payments(first: 2, after: $after) { edges { node { id } } pageInfo { hasNextPage } } }
		y: subscription(id: $b) { payments(first: 2) { edges { node { id } } } }
	}`, map[string]any{"a": a, "b": b, "after": cursor})
	require.Empty(t, res.Errors, res.Raw)
	next := res.Data["x"].(map[string]any)["payments"].(map[string]any)
	require.Len(t, next["edges"], 1)
	require.Equal(t, older[1], next["edges"].([]any)[0].(map[string]any)["node"].(map[string]any)["id"])
	require.Equal(t, false, next["pageInfo"].(map[string]any)["hasNextPage"])
	require.Len(t, res.Data["y"].(map[string]any)["payments"].(map[string]any)["edges"], 1)

	// More subscriptions than the bound: the newest paging.MaxList are listed.
	base := time.Now().Add(-48 * time.Hour)
	var newest []string
	for i := range paging.MaxList {
		sub := subA
		sub.ID, sub.StripeSubscriptionID, sub.StripeItemID = uuid.NewString(), nil, nil
		sub.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		require.NoError(t, s.db.Create(&sub).Error)
		newest = append(newest, sub.ID)
	}
	require.NoError(t, s.db.Model(&models.Subscription{}).Where("id IN ?", []string{a, b}).Update("created_at", base.Add(-time.Hour)).Error)
	slices.Reverse(newest)
	for _, q := range []struct{ tok, query, path string }{
		{tok, `{ me { subscriptions { id } } }`, "me"},
		{s.token("pages-support", "support"), `query($e: String) { adminCustomers(email: $e) { edges { node { subscriptions { id } } } } }`, "admin"},
	} {
		res := s.gql(q.tok, q.query, map[string]any{"e": "pages@example.com"})
		require.Empty(t, res.Errors, res.Raw)
		var list []any
		if q.path == "me" {
			list = res.Data["me"].(map[string]any)["subscriptions"].([]any)
		} else {
			edges := res.Data["adminCustomers"].(map[string]any)["edges"].([]any)
			require.Len(t, edges, 1)
			list = edges[0].(map[string]any)["node"].(map[string]any)["subscriptions"].([]any)
		}
		var ids []string
		for _, item := range list {
			ids = append(ids, item.(map[string]any)["id"].(string))
		}
		require.Equal(t, newest, ids, q.path)
	}
}
