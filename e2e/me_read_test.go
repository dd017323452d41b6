package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/models"
)

// meQuery is make bench-read's query.
const meQuery = `{ me { id email name subscriptions { id status plan { id name interval price { amount currency } } } } }`

// meSubscriptionIDs returns the ids of me.subscriptions in the answer, in order.
func meSubscriptionIDs(t *testing.T, res gqlResponse) []string {
	t.Helper()
	require.Empty(t, res.Errors, res.Raw)
	var ids []string
	for _, s := range res.Data["me"].(map[string]any)["subscriptions"].([]any) {
		ids = append(ids, s.(map[string]any)["id"].(string))
	}
	return ids
}

// addSubscription gives the customer one more subscription on plan, created at.
func (a *testApp) addSubscription(customerID, plan string, status models.SubscriptionStatus, at time.Time) string {
	a.t.Helper()
	sub := models.Subscription{ID: uuid.NewString(), CustomerID: customerID, PlanID: plan, Status: status, CreatedAt: at, UpdatedAt: at,
		ShippingAddress: models.Address{Name: "Buyer", Line1: "2 Chili Rd", City: "Oaxaca", PostalCode: "68000", Country: "MX"}}
	require.NoError(a.t, a.db.Create(&sub).Error)
	return sub.ID
}

// TestMeIsOneStatementOfTheCallersOwnRows: the customer, their subscriptions and
// each one's plan are read in one statement, write nothing when the token brings
// nothing new, and hold only the caller's rows: not those of a customer with the
// same subject at another issuer, nor of another customer of the same plan.
func TestMeIsOneStatementOfTheCallersOwnRows(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	mine := a.fixture("price_me_mine", "cus_me_mine", "sub_me_mine")
	a.issuerSubject(mine.customerID, "me-reader")
	t0 := time.Now().UTC().Add(-time.Hour)
	retired := a.otherPlan("price_me_retired", 5100)
	require.NoError(t, a.db.Exec(`UPDATE plans SET active = false WHERE id = ?`, retired).Error)
	older := a.addSubscription(mine.customerID, retired, models.SubscriptionCanceled, t0)
	require.NoError(t, a.db.Exec(`UPDATE subscriptions SET created_at = ? WHERE id = ?`, t0.Add(time.Minute), mine.subscriptionID).Error)

	// The look-alike: the same subject at another issuer, on the same plans.
	twin := a.fixture("price_me_twin", "cus_me_twin", "sub_me_twin")
	require.NoError(t, a.db.Exec(`UPDATE customers SET issuer = 'https://twin.test', subject = 'me-reader' WHERE id = ?`, twin.customerID).Error)
	a.addSubscription(twin.customerID, mine.planID, models.SubscriptionActive, t0.Add(2*time.Minute))
	// Another customer on the caller's plan, at the caller's issuer.
	other := a.fixture("price_me_other", "cus_me_other", "sub_me_other")
	a.issuerSubject(other.customerID, "me-reader-2")
	a.addSubscription(other.customerID, retired, models.SubscriptionActive, t0.Add(3*time.Minute))

	token := a.token("me-reader")
	first := a.gql(token, meQuery, nil) // takes the token's e-mail and name: one write
	require.Equal(t, []string{mine.subscriptionID, older}, meSubscriptionIDs(t, first))
	var xmin string
	require.NoError(t, a.db.Raw(`SELECT xmin::text FROM customers WHERE id = ?`, mine.customerID).Scan(&xmin).Error)

	statements := countStatements(t, a.db)
	res := a.gql(token, meQuery, nil)
	require.EqualValues(t, 1, statements.Load(), "the customer, their subscriptions and plans in one statement")
	require.Equal(t, []string{mine.subscriptionID, older}, meSubscriptionIDs(t, res), "the caller's own, newest first")
	var after string
	require.NoError(t, a.db.Raw(`SELECT xmin::text FROM customers WHERE id = ?`, mine.customerID).Scan(&after).Error)
	require.Equal(t, xmin, after, "a read writes nothing")

	me := res.Data["me"].(map[string]any)
	require.Equal(t, mine.customerID, me["id"])
	require.Equal(t, "me-reader@example.com", me["email"], "the sealed e-mail opens")
	require.Equal(t, "Test me-reader", me["name"])
	subs := me["subscriptions"].([]any)
	plan := func(i int) map[string]any { return subs[i].(map[string]any)["plan"].(map[string]any) }
	require.Equal(t, "ACTIVE", subs[0].(map[string]any)["status"])
	require.Equal(t, mine.planID, plan(0)["id"])
	require.Equal(t, map[string]any{"amount": float64(2400), "currency": "USD"}, plan(0)["price"])
	require.Equal(t, "Hot box", plan(0)["name"])
	require.Equal(t, "CANCELED", subs[1].(map[string]any)["status"])
	require.Equal(t, retired, plan(1)["id"], "a retired plan still shows")
	require.Equal(t, map[string]any{"amount": float64(5100), "currency": "USD"}, plan(1)["price"])

	t.Run("a selection through fragments is one statement too", func(t *testing.T) {
		for _, q := range []string{
			`{ me { ... on Customer { subscriptions { id plan { name } } } } }`,
			`query { me { ...C } } fragment C on Customer { ... { subscriptions { id plan { name } } } }`,
		} {
			before := statements.Load()
			res := a.gql(token, q, nil)
			require.EqualValues(t, 1, statements.Load()-before, q)
			require.Equal(t, []string{mine.subscriptionID, older}, meSubscriptionIDs(t, res))
		}
	})
	t.Run("a new e-mail in the token is written", func(t *testing.T) {
		res := a.gql(a.token2("me-reader"), meQuery, nil)
		require.Equal(t, []string{mine.subscriptionID, older}, meSubscriptionIDs(t, res))
		require.Equal(t, "me-reader@elsewhere.example", res.Data["me"].(map[string]any)["email"])
		var c models.Customer
		require.NoError(t, a.db.Take(&c, "id = ?", mine.customerID).Error)
		require.Equal(t, "me-reader@elsewhere.example", c.Email)
	})
	t.Run("the other customer sees only theirs", func(t *testing.T) {
		res := a.gql(a.token("me-reader-2"), meQuery, nil)
		ids := meSubscriptionIDs(t, res)
		require.Len(t, ids, 2)
		require.Contains(t, ids, other.subscriptionID)
		require.NotContains(t, ids, mine.subscriptionID)
		require.NotContains(t, ids, older)
	})
	t.Run("someone never seen gets a new customer and no subscriptions", func(t *testing.T) {
		res := a.gql(a.token("me-newcomer"), meQuery, nil)
		require.Empty(t, meSubscriptionIDs(t, res))
		require.Equal(t, "me-newcomer@example.com", res.Data["me"].(map[string]any)["email"])
	})
}

// TestMeAfterErasureShowsNothingOfTheErasedCustomer: once a customer is erased, the
// same identity's next read is a new customer: none of the erased one's
// subscriptions, e-mail or name, however recently the erased one was read.
func TestMeAfterErasureShowsNothingOfTheErasedCustomer(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	f := a.fixture("price_me_erased", "cus_me_erased", "sub_me_erased")
	a.issuerSubject(f.customerID, "me-erased")
	token := a.token("me-erased")
	require.Equal(t, []string{f.subscriptionID}, meSubscriptionIDs(t, a.gql(token, meQuery, nil)))
	require.Equal(t, []string{f.subscriptionID}, meSubscriptionIDs(t, a.gql(token, meQuery, nil)))

	// What an erasure does to the customer row (package privacy), in its transaction.
	require.NoError(t, a.db.Transaction(func(tx *gorm.DB) error {
		c, err := customers.LockForErasure(context.Background(), tx, f.customerID)
		if err != nil {
			return err
		}
		return customers.Pseudonymize(context.Background(), tx, c, time.Now())
	}))

	res := a.gql(token, meQuery, nil)
	require.Empty(t, meSubscriptionIDs(t, res), "none of the erased customer's subscriptions")
	me := res.Data["me"].(map[string]any)
	require.NotEqual(t, f.customerID, me["id"], "a new customer, not the erased one")
	require.Equal(t, "me-erased@example.com", me["email"], "the token's e-mail, not the erased customer's")
	require.NotContains(t, res.Raw, f.subscriptionID)
}

// TestMeAnswersAsTheLoaderDoes: for a customer with more subscriptions than a list
// holds, several created in the same instant, with addresses, periods, pauses and
// plans of their own, me's one statement gives the answer staff get for the same
// customer through the loaders (adminCustomers): the same newest subscriptions, in
// the same order (ties by id), with the same fields; under two aliases and through
// @include and @skip too.
func TestMeAnswersAsTheLoaderDoes(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	f := a.fixture("price_me_many", "cus_me_many", "sub_me_many")
	a.issuerSubject(f.customerID, "me-many")
	retired := a.otherPlan("price_me_many_retired", 5100)
	require.NoError(t, a.db.Exec(`UPDATE plans SET active = false WHERE id = ?`, retired).Error)
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	for i := range 30 {
		plan, status := f.planID, models.SubscriptionActive
		if i%3 == 0 {
			plan, status = retired, models.SubscriptionCanceled
		}
		id := a.addSubscription(f.customerID, plan, status, t0.Add(time.Duration(i/4)*time.Minute)) // four per instant
		if i%2 == 0 {
			require.NoError(t, a.db.Exec(`UPDATE subscriptions SET current_period_end = ?, paused_until = ?, cancel_at_period_end = true WHERE id = ?`,
				t0.AddDate(0, 1, i), t0.AddDate(0, 0, i), id).Error)
		}
	}
	const fields = `id status cancelAtPeriodEnd currentPeriodEnd pausedUntil createdAt updatedAt
		shippingAddress { name line1 line2 city postalCode region country }
		plan { id name description interval active price { amount currency } }`
	token := a.token("me-many")
	require.Empty(t, a.gql(token, `{ me { id } }`, nil).Errors) // the token's e-mail, for staff to find

	staff := a.gql(a.token("me-many-support", "support"), `query($email: String) { adminCustomers(email: $email) {
		edges { node { subscriptions { `+fields+` } } } } }`, map[string]any{"email": "me-many@example.com"})
	require.Empty(t, staff.Errors, staff.Raw)
	edges := staff.Data["adminCustomers"].(map[string]any)["edges"].([]any)
	require.Len(t, edges, 1)
	want := edges[0].(map[string]any)["node"].(map[string]any)["subscriptions"].([]any)
	require.Len(t, want, 25, "a list holds the newest 25")

	for _, q := range []string{
		`{ me { subscriptions { ` + fields + ` } } }`,
		`{ me { a: subscriptions { id } subscriptions { ` + fields + ` } } }`,
		`query($yes: Boolean = true, $no: Boolean = false) { me { subscriptions @include(if: $yes) { ` + fields + ` } x: subscriptions @skip(if: $no) { id } } }`,
		`{ me { ... on Customer { subscriptions { ` + fields + ` } } } }`,
	} {
		res := a.gql(token, q, nil)
		require.Empty(t, res.Errors, res.Raw)
		require.Equal(t, want, res.Data["me"].(map[string]any)["subscriptions"], q)
	}
}

// TestMeOpensShippingAddressesOnlyWhenAsked: me reads its subscriptions' sealed
// addresses only for a query that selects them (directly, under an alias, in a
// fragment). A value that cannot be opened shows which queries open it: those that
// do not select the address answer; those that do fail, as before.
func TestMeOpensShippingAddressesOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	f := a.fixture("price_me_sealed", "cus_me_sealed", "sub_me_sealed")
	a.issuerSubject(f.customerID, "me-sealed")
	token := a.token("me-sealed")
	require.NoError(t, a.db.Exec(`UPDATE subscriptions SET shipping_address = convert_to('not sealed', 'UTF8') WHERE id = ?`, f.subscriptionID).Error)

	for _, q := range []string{
		meQuery,
		`{ me { subscriptions { id status } a: subscriptions { cancelAtPeriodEnd } } }`,
		`{ me { ...C } } fragment C on Customer { subscriptions { ... on Subscription { id } } }`,
		`{ me { __typename subscriptions { __typename id } } }`,
		`{ me { subscriptions { id } } ...Q } fragment Q on Query { me { subscriptions { status } } }`,
	} {
		require.Equal(t, []string{f.subscriptionID}, meSubscriptionIDsAny(t, a.gql(token, q, nil)), q)
	}
	for _, q := range []string{
		`{ me { subscriptions { id shippingAddress { city } } } }`,
		`{ me { subscriptions { id } a: subscriptions { shippingAddress { city } } } }`,
		`{ me { ...C } } fragment C on Customer { subscriptions { ...S } } fragment S on Subscription { shippingAddress { city } }`,
		`{ me { subscriptions { ... on Subscription { shippingAddress { city } } } } }`,
		// Look-alikes: me selected twice under one key (merged) or two, a fragment
		// spread at two places, fragments nested in fragments.
		`{ me { subscriptions { id } } ...Q } fragment Q on Query { me { subscriptions { shippingAddress { city } } } }`,
		`{ me { subscriptions { id } } me { subscriptions { shippingAddress { city } } } }`,
		`{ a: me { subscriptions { id } } b: me { subscriptions { shippingAddress { city } } } }`,
		`{ me { ...C subscriptions { id } } } fragment C on Customer { subscriptions { ...S } x: subscriptions { ...S } } fragment S on Subscription { shippingAddress { city } }`,
		`{ me { ... { ... on Customer { subscriptions { ... { ... on Subscription { addr: shippingAddress { city } } } } } } } }`,
		`query($yes: Boolean = true) { me { subscriptions { id } s: subscriptions @include(if: $yes) { shippingAddress @skip(if: false) { city } } } }`,
	} {
		res := a.gql(token, q, nil)
		require.NotEmpty(t, res.Errors, q)
	}
}

// meSubscriptionIDsAny is meSubscriptionIDs for answers whose subscriptions may
// come under an alias: the ids in any list of the answer's me.
func meSubscriptionIDsAny(t *testing.T, res gqlResponse) []string {
	t.Helper()
	require.Empty(t, res.Errors, res.Raw)
	var ids []string
	for _, v := range res.Data["me"].(map[string]any) {
		list, _ := v.([]any)
		for _, s := range list {
			if id, ok := s.(map[string]any)["id"].(string); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// TestMeShowsACatalogChangeAtOnce: me takes plans from the process's copy of the
// catalog, but a rename, a retirement or a new trial written a moment before is in
// the very next answer, and a read with nothing changed is one statement again.
func TestMeShowsACatalogChangeAtOnce(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	f := a.fixture("price_me_cat", "cus_me_cat", "sub_me_cat")
	a.issuerSubject(f.customerID, "me-catalog")
	token := a.token("me-catalog")
	const q = `{ me { subscriptions { id plan { id name active trialDays } } } }`
	plan := func(res gqlResponse) map[string]any {
		t.Helper()
		require.Empty(t, res.Errors, res.Raw)
		subs := res.Data["me"].(map[string]any)["subscriptions"].([]any)
		require.Len(t, subs, 1)
		return subs[0].(map[string]any)["plan"].(map[string]any)
	}
	require.Equal(t, "Hot box", plan(a.gql(token, q, nil))["name"])
	statements := countStatements(t, a.db)

	for _, change := range []struct {
		sql, field string
		want       any
	}{
		{`UPDATE products SET name = 'Hotter box'`, "name", "Hotter box"},
		{`UPDATE plans SET active = false WHERE id = '` + f.planID + `'`, "active", false},
		{`UPDATE plans SET trial_days = 7 WHERE id = '` + f.planID + `'`, "trialDays", float64(7)},
	} {
		require.NoError(t, a.db.Exec(change.sql).Error)
		before := statements.Load()
		require.Equal(t, change.want, plan(a.gql(token, q, nil))[change.field], change.sql)
		require.EqualValues(t, 2, statements.Load()-before, "the changed plans are read again")
		before = statements.Load()
		require.Equal(t, change.want, plan(a.gql(token, q, nil))[change.field], change.sql)
		require.EqualValues(t, 1, statements.Load()-before, "and kept")
	}
}
