package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/privacy"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// person is a customer with distinctive personal data, so that any copy of it left
// anywhere can be found by a plain text search.
type person struct {
	subject, email, name, street, city string
	token                              string // recent login
	customerID, subscriptionID         string
	stripeCustomer, stripeSub          string
	invoice, event                     string
}

// newPrivacyShop is the app with its workers running, in front of the stateful
// fake Stripe, with the catalog seeded there.
func newPrivacyShop(t *testing.T) *shop {
	t.Helper()
	fake := newFakeStripe(t)
	a := newTestApp(t, appOptions{
		env:  map[string]string{"STRIPE_API_BASE": fake.URL},
		jobs: true,
		options: []app.Option{app.WithStripeTimeouts(300*time.Millisecond, 2*time.Second),
			app.WithMailer(&recordingMailer{}), app.WithJobRetryPolicy(fastRetry{})},
	})
	a.seedAt(fake.URL)
	fake.SetNewSubscriptionStatus("active")
	return &shop{testApp: a, stripe: fake}
}

// tokenFor mints a token carrying the person's e-mail and name, logged in authAge ago.
func (s *shop) tokenFor(p *person, authAge time.Duration) string {
	s.t.Helper()
	tok, err := s.issuer.Mint(devidp.Claims{Subject: p.subject, Email: p.email, Name: p.name, AuthTime: time.Now().Add(-authAge)})
	require.NoError(s.t, err)
	return tok
}

// enrol signs the person in, subscribes them with their address, and has Stripe
// report a paid invoice that quotes their e-mail, name and address, so that they
// have a payment, a shipment, a notification and a stored provider event.
func (s *shop) enrol(p *person, n int) {
	s.t.Helper()
	p.token = s.tokenFor(p, time.Minute)
	resp, payload := s.mutate(p.token, "createSubscription", "CreateSubscriptionInput", map[string]any{
		"planId": hotMonthly, "idempotencyKey": "enrol-" + p.subject,
		"shippingAddress": map[string]any{"name": p.name, "line1": p.street, "city": p.city, "postalCode": "10115", "country": "DE"},
	}, "subscription { id }")
	require.Empty(s.t, resp.Errors, resp.Raw)
	require.Empty(s.t, userErrorCodes(payload), resp.Raw)
	p.subscriptionID = payload["subscription"].(map[string]any)["id"].(string)
	require.NoError(s.t, s.db.Raw(`SELECT s.customer_id, c.stripe_customer_id, s.stripe_subscription_id
		FROM subscriptions s JOIN customers c ON c.id = s.customer_id WHERE s.id = ?`, p.subscriptionID).
		Row().Scan(&p.customerID, &p.stripeCustomer, &p.stripeSub))

	var plan models.Plan
	require.NoError(s.t, s.db.Take(&plan, "id = ?", hotMonthly).Error)
	p.invoice, p.event = fmt.Sprintf("in_privacy_%d", n), fmt.Sprintf("evt_privacy_%d", n)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	inv := webhooktest.Invoice{ID: p.invoice, Subscription: p.stripeSub, Customer: p.stripeCustomer, Price: *plan.StripePriceID,
		Amount: plan.Amount, Currency: strings.ToLower(plan.Currency), PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0)}.Object()
	inv["customer_email"], inv["customer_name"] = p.email, p.name
	inv["customer_address"] = map[string]any{"line1": p.street, "city": p.city, "postal_code": "10115", "country": "DE"}
	inv["description"] = "Box for " + p.name + " <" + p.email + ">"
	require.Equal(s.t, 200, s.deliver(webhooktest.Event(p.event, "invoice.paid", start, inv, nil)))
	if st := s.awaitEvent(p.event); st != "PROCESSED" {
		var lastErr string
		_ = s.db.Raw(`SELECT coalesce(last_error, '') FROM webhook_events WHERE provider_event_id = ?`, p.event).Scan(&lastErr).Error
		s.t.Fatalf("event %s is %s: %s", p.event, st, lastErr)
	}
	require.EqualValues(s.t, 1, s.count(`SELECT count(*) FROM payments WHERE customer_id = ?`, p.customerID))
	require.EqualValues(s.t, 1, s.count(`SELECT count(*) FROM shipments WHERE customer_id = ?`, p.customerID))
	require.Eventually(s.t, func() bool {
		return s.count(`SELECT count(*) FROM notifications WHERE customer_id = ?`, p.customerID) > 0
	}, 10*time.Second, 20*time.Millisecond)
}

func newPeople(s *shop) (erin, olga *person) {
	erin = &person{subject: "erin-privacy", email: "erin.erasable@privacy.example", name: "Erin Erasable",
		street: "42 Forgetme Street", city: "Erasetown"}
	olga = &person{subject: "olga-privacy", email: "olga.otherperson@privacy.example", name: "Olga Otherperson",
		street: "7 Keepme Road", city: "Staysville"}
	s.enrol(erin, 1)
	s.enrol(olga, 2)
	return erin, olga
}

func (s *shop) export(token string) (string, gqlResponse) {
	s.t.Helper()
	resp := s.gql(token, `{ exportMyData { generatedAt json } }`, nil)
	if len(resp.Errors) > 0 {
		return "", resp
	}
	return resp.Data["exportMyData"].(map[string]any)["json"].(string), resp
}

func TestExportHasAllOfTheCallersDataAndNobodyElses(t *testing.T) {
	t.Parallel()
	s := newPrivacyShop(t)
	erin, olga := newPeople(s)

	raw, resp := s.export(erin.token)
	require.Empty(t, resp.Errors, resp.Raw)
	var doc struct {
		Customer struct {
			ID, Email, Name string
		}
		Subscriptions []struct {
			ID              string
			ShippingAddress struct{ Name, Line1, City string }
		}
		Payments []struct {
			StripeInvoiceID string
			Amount          struct {
				Amount   int64
				Currency string
			}
		}
		Shipments      []struct{ ID, PaymentID string }
		Notifications  []struct{ Kind string }
		ProviderEvents []struct {
			ID      string
			Payload json.RawMessage
		}
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &doc))
	require.Equal(t, erin.customerID, doc.Customer.ID)
	require.Equal(t, erin.email, doc.Customer.Email)
	require.Equal(t, erin.name, doc.Customer.Name)
	require.Len(t, doc.Subscriptions, 1)
	require.Equal(t, erin.subscriptionID, doc.Subscriptions[0].ID)
	require.Equal(t, erin.street, doc.Subscriptions[0].ShippingAddress.Line1)
	require.Len(t, doc.Payments, 1)
	require.Equal(t, erin.invoice, doc.Payments[0].StripeInvoiceID)
	require.NotZero(t, doc.Payments[0].Amount.Amount)
	require.Len(t, doc.Shipments, 1)
	require.NotEmpty(t, doc.Notifications)
	require.Len(t, doc.ProviderEvents, 1, "the provider event about Erin, and only it")
	require.Equal(t, erin.event, doc.ProviderEvents[0].ID)
	require.Contains(t, string(doc.ProviderEvents[0].Payload), erin.email)

	for _, other := range []string{olga.email, olga.name, olga.street, olga.city, olga.customerID, olga.subscriptionID, olga.invoice, olga.event, olga.stripeCustomer} {
		require.NotContains(t, raw, other, "Olga's data in Erin's export")
	}

	// Someone never seen gets an empty document, not an error or anybody's data.
	stranger := s.token("stranger-privacy")
	raw, resp = s.export(stranger)
	require.Empty(t, resp.Errors, resp.Raw)
	require.Contains(t, raw, `"customer":null`)
	require.Contains(t, raw, `"subscriptions":[]`)
	require.NotContains(t, raw, "@privacy.example")

	// Anonymous callers get nothing.
	_, resp = s.export("")
	require.Equal(t, []string{"UNAUTHENTICATED"}, resp.codes())
	s.requireNoLeak(erin.email, erin.name, erin.street, olga.email, olga.name, olga.street)
}

const deleteSelection = "deleted"

func (s *shop) deleteAccount(token, key string, confirm bool) (gqlResponse, map[string]any) {
	s.t.Helper()
	return s.mutate(token, "deleteMyAccount", "DeleteMyAccountInput", map[string]any{"confirm": confirm, "idempotencyKey": key}, deleteSelection)
}

// tableText returns every row of every table in the schema as text, bytea columns
// decoded, one string per table.
func (s *shop) tableText() map[string]string {
	s.t.Helper()
	var tables []string
	require.NoError(s.t, s.db.Raw(`SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`).Scan(&tables).Error)
	require.Contains(s.t, tables, "customers")
	require.Contains(s.t, tables, "webhook_events")
	out := map[string]string{}
	for _, table := range tables {
		var cols []struct{ ColumnName, DataType string }
		require.NoError(s.t, s.db.Raw(`SELECT column_name, data_type FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`, table).Scan(&cols).Error)
		exprs := make([]string, 0, len(cols))
		for _, c := range cols {
			col := `"` + c.ColumnName + `"`
			if c.DataType == "bytea" {
				exprs = append(exprs, "coalesce(encode("+col+", 'escape'), '')")
			} else {
				exprs = append(exprs, "coalesce("+col+"::text, '')")
			}
		}
		var rows []string
		require.NoError(s.t, s.db.Raw(`SELECT concat_ws(' | ', `+strings.Join(exprs, ", ")+`) FROM "`+table+`"`).Scan(&rows).Error)
		out[table] = strings.Join(rows, "\n")
	}
	return out
}

// requireNowhere fails when any of values is in any table (case-insensitive).
func (s *shop) requireNowhere(values ...string) {
	s.t.Helper()
	for table, text := range s.tableText() {
		lower := strings.ToLower(text)
		for _, v := range values {
			require.NotContains(s.t, lower, strings.ToLower(v), "%q is still in table %s", v, table)
		}
	}
}

// requireSomewhere fails unless value is in some table: the scan sees the data.
func (s *shop) requireSomewhere(value string) {
	s.t.Helper()
	for _, text := range s.tableText() {
		if strings.Contains(text, value) {
			return
		}
	}
	s.t.Fatalf("%q is in no table: the scan does not read the rows", value)
}

func TestDeleteMyAccount(t *testing.T) {
	t.Parallel()
	s := newPrivacyShop(t)
	erin, olga := newPeople(s)
	erinPersonal := []string{erin.email, erin.name, erin.street, erin.city}
	// unchanged checks that nothing of Erin's was erased and nothing recorded.
	unchanged := func(t *testing.T) {
		t.Helper()
		raw, resp := s.export(erin.token)
		require.Empty(t, resp.Errors, resp.Raw)
		for _, v := range erinPersonal {
			require.Contains(t, raw, v, "nothing of Erin's was erased")
		}
		require.Contains(t, raw, `"notifications":[{`)
		require.Zero(t, s.count(`SELECT count(*) FROM audit_log WHERE action = ?`, privacy.OpDeleteMyAccount))
	}
	refusedEarly := func(t *testing.T) {
		t.Helper()
		unchanged(t)
		require.Zero(t, s.stripe.Count(http.MethodDelete, "/v1/"), "nothing was sent to Stripe")
	}

	t.Run("needs a recent login", func(t *testing.T) {
		resp, _ := s.deleteAccount(s.tokenFor(erin, time.Hour), "del-stale", true)
		require.Equal(t, []string{"STEP_UP_REQUIRED"}, resp.codes(), resp.Raw)
		refusedEarly(t)
	})
	t.Run("needs confirm", func(t *testing.T) {
		resp, payload := s.deleteAccount(erin.token, "del-noconfirm", false)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, []string{"INVALID"}, userErrorCodes(payload))
		require.Equal(t, false, payload["deleted"])
		refusedEarly(t)
	})
	t.Run("anonymous", func(t *testing.T) {
		resp, _ := s.deleteAccount("", "del-anon", true)
		require.Equal(t, []string{"UNAUTHENTICATED"}, resp.codes(), resp.Raw)
		refusedEarly(t)
	})
	t.Run("a declined card is PAYMENT_DECLINED, as everywhere, and erases nothing", func(t *testing.T) {
		s.stripe.FailNext(stripefake.Fault{Status: http.StatusPaymentRequired, Code: "card_declined"})
		resp, payload := s.deleteAccount(erin.token, "del-declined", true)
		s.stripe.ClearFaults()
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, []string{"PAYMENT_DECLINED"}, userErrorCodes(payload), resp.Raw)
		require.Equal(t, false, payload["deleted"])
		unchanged(t)
	})
	t.Run("a status Stripe does not document is not taken as ended", func(t *testing.T) {
		// Stripe refuses the cancellation and its re-read shows a status this code
		// does not know: the subscription may still bill, so nothing is erased.
		s.stripe.SetSubscriptionStatus(erin.stripeSub, "on_hold")
		s.stripe.FailNext(stripefake.Fault{Status: http.StatusBadRequest, Code: "subscription_not_cancelable"})
		resp, payload := s.deleteAccount(erin.token, "del-unknown-status", true)
		s.stripe.ClearFaults()
		s.stripe.SetSubscriptionStatus(erin.stripeSub, "active")
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, []string{"PROVIDER_REJECTED"}, userErrorCodes(payload), resp.Raw)
		require.Equal(t, false, payload["deleted"])
		unchanged(t)
	})
	t.Run("Stripe down erases nothing", func(t *testing.T) {
		// The subscription's cancellation goes through; deleting the customer finds
		// Stripe down until the retry budget is spent.
		faults := []stripefake.Fault{{}}
		for range 40 {
			faults = append(faults, stripefake.Fault{Status: http.StatusServiceUnavailable})
		}
		s.stripe.FailNext(faults...)
		resp, _ := s.deleteAccount(erin.token, "del-1", true)
		s.stripe.ClearFaults()
		require.Equal(t, []string{"PROVIDER_UNAVAILABLE"}, resp.codes(), resp.Raw)
		require.GreaterOrEqual(t, s.stripe.Count(http.MethodDelete, "/v1/subscriptions/"+erin.stripeSub), 1, "the cancellation went through")
		require.GreaterOrEqual(t, s.stripe.Count(http.MethodDelete, "/v1/customers/"+erin.stripeCustomer), 1, "the customer's deletion was tried")
		unchanged(t)
	})

	t.Run("erases the person and keeps pseudonymous financial records", func(t *testing.T) {
		s.requireSomewhere(erin.stripeCustomer) // the scan below reads real rows
		resp, payload := s.deleteAccount(erin.token, "del-1", true)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Empty(t, userErrorCodes(payload), resp.Raw)
		require.Equal(t, true, payload["deleted"])

		// At Stripe: the live subscription canceled now, the customer deleted; Olga's untouched.
		require.GreaterOrEqual(t, s.stripe.Count(http.MethodDelete, "/v1/subscriptions/"+erin.stripeSub), 1)
		require.GreaterOrEqual(t, s.stripe.Count(http.MethodDelete, "/v1/customers/"+erin.stripeCustomer), 1)
		require.Zero(t, s.stripe.Count(http.MethodDelete, "/v1/subscriptions/"+olga.stripeSub))
		require.Zero(t, s.stripe.Count(http.MethodDelete, "/v1/customers/"+olga.stripeCustomer))

		// Nothing personal of Erin's is left in any table, by plain text...
		s.requireNowhere(erinPersonal...)
		// ...nor as the application reads it (personal columns may be sealed at rest).
		var c models.Customer
		require.NoError(t, s.db.Take(&c, "id = ?", erin.customerID).Error)
		require.Equal(t, customers.ErasedIssuer, c.Issuer)
		require.NotEqual(t, erin.subject, c.Subject)
		require.Empty(t, c.Email)
		require.Nil(t, c.Name)
		var sub models.Subscription
		require.NoError(t, s.db.Take(&sub, "id = ?", erin.subscriptionID).Error)
		require.Equal(t, models.Address{Country: "DE"}, sub.ShippingAddress)
		require.Equal(t, models.SubscriptionCanceled, sub.Status)
		var ship models.Shipment
		require.NoError(t, s.db.Take(&ship, "customer_id = ?", erin.customerID).Error)
		require.Equal(t, models.Address{Country: "DE"}, ship.Address)
		var ev models.WebhookEvent
		require.NoError(t, s.db.Take(&ev, "provider_event_id = ?", erin.event).Error)
		for _, v := range erinPersonal {
			require.NotContains(t, string(ev.Payload), v)
		}
		require.Contains(t, string(ev.Payload), erin.invoice, "the event still says what happened")
		require.Zero(t, s.count(`SELECT count(*) FROM notifications WHERE customer_id = ?`, erin.customerID))

		// The payment stays, with its amount, under the pseudonymous customer.
		var pay models.Payment
		require.NoError(t, s.db.Take(&pay, "stripe_invoice_id = ?", erin.invoice).Error)
		require.Equal(t, erin.customerID, pay.CustomerID)
		require.Equal(t, models.PaymentSucceeded, pay.Status)
		require.NotZero(t, pay.AmountMinor)

		// The audit entry names Erin as the actor and the customer as the target.
		var entry models.AuditEntry
		require.NoError(t, s.db.Take(&entry, "action = ?", privacy.OpDeleteMyAccount).Error)
		require.Equal(t, erin.subject, entry.ActorSubject)
		require.Equal(t, erin.customerID, entry.TargetID)

		// Olga is untouched.
		raw, resp := s.export(olga.token)
		require.Empty(t, resp.Errors, resp.Raw)
		for _, v := range []string{olga.email, olga.name, olga.street, olga.event} {
			require.Contains(t, raw, v)
		}
	})

	t.Run("a replay with the same key answers the same and does nothing more", func(t *testing.T) {
		before := len(s.stripe.Requests())
		resp, payload := s.deleteAccount(erin.token, "del-1", true)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, true, payload["deleted"])
		require.Len(t, s.stripe.Requests(), before)
		require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE action = ?`, privacy.OpDeleteMyAccount))
	})

	t.Run("events Stripe sends after the erasure are scrubbed by the scheduled jobs", func(t *testing.T) {
		require.EqualValues(t, len(privacy.ScrubDelays), s.count(`SELECT count(*) FROM river_job
			WHERE kind = 'privacy_scrub' AND state = 'scheduled' AND scheduled_at > now() + interval '30 minutes'`))
		late := webhooktest.Event("evt_privacy_customer_deleted", "customer.deleted", time.Now(), webhooktest.Object{
			"id": erin.stripeCustomer, "object": "customer", "email": erin.email, "name": erin.name,
			"description": "Account of " + erin.name, "metadata": map[string]string{"scoville_customer_id": erin.customerID},
			"address": map[string]any{"line1": erin.street, "city": erin.city, "country": "DE"},
		}, nil)
		require.Equal(t, 200, s.deliver(late))
		s.awaitEvent("evt_privacy_customer_deleted")
		var ev models.WebhookEvent
		require.NoError(t, s.db.Take(&ev, "provider_event_id = ?", "evt_privacy_customer_deleted").Error)
		for _, v := range erinPersonal {
			require.NotContains(t, string(ev.Payload), v, "an event about an erased customer is scrubbed once applied")
		}

		// Bring the scheduled scrubs forward instead of waiting an hour.
		require.NoError(t, s.db.Exec(`UPDATE river_job SET scheduled_at = now() WHERE kind = 'privacy_scrub'`).Error)
		require.Eventually(t, func() bool {
			return s.count(`SELECT count(*) FROM river_job WHERE kind = 'privacy_scrub' AND state = 'completed'`) == int64(len(privacy.ScrubDelays))
		}, 30*time.Second, 50*time.Millisecond, "jobs:\n%s", s.dumpJobs())
		require.NoError(t, s.db.Take(&ev, "provider_event_id = ?", "evt_privacy_customer_deleted").Error)
		for _, v := range erinPersonal {
			require.NotContains(t, string(ev.Payload), v)
		}
		require.Contains(t, string(ev.Payload), erin.stripeCustomer)
		s.requireNowhere(erinPersonal...)
	})

	t.Run("signing in again starts a fresh customer", func(t *testing.T) {
		me := s.gql(erin.token, `{ me { id email subscriptions { id } } }`, nil)
		require.Empty(t, me.Errors, me.Raw)
		got := me.Data["me"].(map[string]any)
		require.NotEqual(t, erin.customerID, got["id"])
		require.Empty(t, got["subscriptions"])
	})
	s.requireNoLeak(erin.email, erin.name, erin.street, olga.email, olga.name, olga.street)
}
