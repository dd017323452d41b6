package fulfilment

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/models"
)

// paidPeriod makes a customer, an active subscription and its paid payment of
// invoice, and returns the shipment that period owes.
func paidPeriod(t *testing.T, db *gorm.DB, invoice string) models.Shipment {
	t.Helper()
	var plan models.Plan
	require.NoError(t, db.Exec(`INSERT INTO products (name, description) VALUES ('Hot box', 'sauces')`).Error)
	require.NoError(t, db.Raw(`INSERT INTO plans (product_id, billing_interval, amount, currency)
		SELECT id, 'MONTH', 1500, 'USD' FROM products LIMIT 1 RETURNING id`).Scan(&plan.ID).Error)
	cust := models.Customer{Issuer: "https://id.example", Subject: "ship-" + invoice, Email: "ship@example.com"}
	require.NoError(t, db.Create(&cust).Error)
	addr := models.Address{Name: "Ada", Line1: "1 Pepper Lane", City: "Berlin", PostalCode: "10115", Country: "DE"}
	sub := models.Subscription{ID: uuid.NewString(), CustomerID: cust.ID, PlanID: plan.ID, Status: models.SubscriptionActive, ShippingAddress: addr}
	require.NoError(t, db.Create(&sub).Error)
	pay := models.Payment{SubscriptionID: sub.ID, CustomerID: cust.ID, AmountMinor: 1500, Currency: "USD",
		Status: models.PaymentSucceeded, StripeInvoiceID: invoice}
	require.NoError(t, db.Create(&pay).Error)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	return models.Shipment{SubscriptionID: sub.ID, CustomerID: cust.ID, PaymentID: pay.ID, PlanID: plan.ID,
		StripeInvoiceID: invoice, PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0), Address: addr}
}

func TestAPaidPeriodShipsOnce(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
	ctx := context.Background()
	want := paidPeriod(t, db, "in_ship_once")

	shipped, err := Exists(db, "in_ship_once")
	require.NoError(t, err)
	require.False(t, shipped)

	first := want
	first.Status = models.ShipmentCanceled // whatever the caller says, a new shipment is PENDING
	created, err := Create(ctx, db, &first, "Hot box")
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, models.ShipmentPending, first.Status)

	// A replay of the invoice, in its own transaction or in one that rolls back.
	again := want
	created, err = Create(ctx, db, &again, "Hot box")
	require.NoError(t, err)
	require.False(t, created, "a period ships once")
	require.Error(t, db.Transaction(func(tx *gorm.DB) error {
		again := want
		if _, err := Create(ctx, tx, &again, "Hot box"); err != nil {
			return err
		}
		return gorm.ErrInvalidTransaction // roll back
	}))

	var rows []models.Shipment
	require.NoError(t, db.Where("stripe_invoice_id = ?", "in_ship_once").Find(&rows).Error)
	require.Len(t, rows, 1)
	require.Equal(t, models.ShipmentPending, rows[0].Status)
	require.Equal(t, want.Address, rows[0].Address)
	shipped, err = Exists(db, "in_ship_once")
	require.NoError(t, err)
	require.True(t, shipped)
}
