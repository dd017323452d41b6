package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// hookApplier is the real applier with hooks run first for the events they name
// (by Stripe's event id): before Prepare, which holds no lock, and before Apply,
// inside the transaction that holds the event's lock.
type hookApplier struct {
	webhooks.Applier
	mu            sync.Mutex
	beforePrepare map[string]func()
	beforeApply   map[string]func(tx *gorm.DB)
}

func (h *hookApplier) onPrepare(eventID string, f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.beforePrepare[eventID] = f
}

func (h *hookApplier) onApply(eventID string, f func(tx *gorm.DB)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.beforeApply[eventID] = f
}

func (h *hookApplier) Prepare(ctx context.Context, ev subscriptions.Event) (*subscriptions.Prepared, error) {
	h.mu.Lock()
	f := h.beforePrepare[ev.ProviderEventID]
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return h.Applier.Prepare(ctx, ev)
}

func (h *hookApplier) Apply(ctx context.Context, tx *gorm.DB, ev subscriptions.Event, p *subscriptions.Prepared) (subscriptions.Effect, error) {
	h.mu.Lock()
	f := h.beforeApply[ev.ProviderEventID]
	h.mu.Unlock()
	if f != nil {
		f(tx)
	}
	return h.Applier.Apply(ctx, tx, ev, p)
}

// newHookedPrivacyShop is newPrivacyShop with hooks on the event applier, and
// beforeErase (may be nil) run inside each erasure before it looks up the events.
func newHookedPrivacyShop(t *testing.T, beforeErase ...func()) (*shop, *hookApplier) {
	t.Helper()
	var eraseHook func()
	if len(beforeErase) > 0 {
		eraseHook = beforeErase[0]
	}
	fake := newFakeStripe(t)
	hooks := &hookApplier{beforePrepare: map[string]func(){}, beforeApply: map[string]func(*gorm.DB){}}
	a := newTestApp(t, appOptions{
		env:  map[string]string{"STRIPE_API_BASE": fake.URL},
		jobs: true,
		options: []app.Option{app.WithStripeTimeouts(300*time.Millisecond, 2*time.Second),
			app.WithMailer(&recordingMailer{}), app.WithJobRetryPolicy(fastRetry{}),
			app.WithApplierWrapper(func(inner webhooks.Applier) webhooks.Applier { hooks.Applier = inner; return hooks }),
			app.WithBeforeEraseLookup(eraseHook)},
	})
	a.seedAt(fake.URL)
	fake.SetNewSubscriptionStatus("active")
	return &shop{testApp: a, stripe: fake}, hooks
}

// paidInvoice is a signed invoice.paid event of the person's subscription that
// quotes their e-mail, name and address.
func (s *shop) paidInvoice(p *person, eventID, invoiceID string) []byte {
	s.t.Helper()
	var plan models.Plan
	require.NoError(s.t, s.db.Take(&plan, "id = ?", hotMonthly).Error)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	inv := webhooktest.Invoice{ID: invoiceID, Subscription: p.stripeSub, Customer: p.stripeCustomer, Price: *plan.StripePriceID,
		Amount: plan.Amount, Currency: strings.ToLower(plan.Currency), PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0)}.Object()
	inv["customer_email"], inv["customer_name"] = p.email, p.name
	inv["customer_address"] = map[string]any{"line1": p.street, "city": p.city, "postal_code": "10115", "country": "DE"}
	inv["customer_shipping"] = map[string]any{"name": p.name,
		"address": map[string]any{"line1": p.street, "city": p.city, "postal_code": "10115", "country": "DE"}}
	inv["description"] = "Box for " + p.name + " <" + p.email + ">"
	return webhooktest.Event(eventID, "invoice.paid", start, inv, nil)
}

// Customers whose name is a JSON key or a Stripe type, or whose e-mail is the tail
// of another's, get only their own events, and erasing them leaves every other
// customer's events as they were: byte for byte, and still applicable.
func TestPrivacyLookAlikeNamesReachNobodyElse(t *testing.T) {
	t.Parallel()
	s, hooks := newHookedPrivacyShop(t)
	alice := &person{subject: "alice-lookalike", email: "alice@lookalike.example", name: "Alice Original",
		street: "1 Original Lane", city: "Sourceville"}
	s.enrol(alice, 21)
	attackers := []*person{
		{subject: "lice", email: "lice@lookalike.example", name: "invoice", street: "2 Tail Street", city: "Tailtown"},
		{subject: "object", email: "object@lookalike.example", name: "object", street: "3 Key Street", city: "Keytown"},
		{subject: "subscription", email: "subscription@lookalike.example", name: "subscription", street: "4 Type Street", city: "Typetown"},
		{subject: "evt", email: "evt_@lookalike.example", name: "evt_", street: "5 Prefix Street", city: "Prefixtown"},
	}
	for i, p := range attackers {
		s.enrol(p, 22+i)
	}

	// Alice has an event that is stored and not applied yet while all this happens.
	release := make(chan struct{})
	hooks.onPrepare("evt_lookalike_pending", func() { <-release })
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	require.Equal(t, 200, s.deliver(s.paidInvoice(alice, "evt_lookalike_pending", "in_lookalike_pending")))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM webhook_events WHERE provider_event_id = 'evt_lookalike_pending' AND status = 'RECEIVED'`))

	aliceData := []string{alice.email, alice.name, alice.street, alice.city, alice.customerID, alice.subscriptionID,
		alice.stripeCustomer, alice.stripeSub, alice.invoice, alice.event, "in_lookalike_pending", "evt_lookalike_pending"}
	for _, p := range attackers {
		raw, resp := s.export(p.token)
		require.Empty(t, resp.Errors, resp.Raw)
		for _, v := range aliceData {
			require.False(t, strings.Contains(raw, v), "Alice's %q in the export of %q", v, p.name)
		}
		var doc struct{ ProviderEvents []struct{ ID string } }
		require.NoError(t, json.Unmarshal([]byte(raw), &doc))
		require.Len(t, doc.ProviderEvents, 1, "only the event about %q", p.name)
		require.Equal(t, p.event, doc.ProviderEvents[0].ID)
	}

	for _, p := range attackers {
		before := dbtest.StoredEventPayloads(t, s.db)
		resp, payload := s.deleteAccount(s.tokenFor(p, time.Minute), "del-"+p.subject, true)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, true, payload["deleted"], resp.Raw)
		after := dbtest.StoredEventPayloads(t, s.db)
		require.NotEqual(t, before[p.event], after[p.event], "the erased customer's own event is scrubbed")
		for id, b := range before {
			if id != p.event {
				require.Equal(t, b, after[id], "event %s changed by the erasure of %q", id, p.name)
			}
		}
	}

	// Alice's pending event applies as if nothing had happened.
	close(release)
	released = true
	require.Equal(t, "PROCESSED", s.awaitEvent("evt_lookalike_pending"))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id = 'in_lookalike_pending'
		AND customer_id = ? AND status = 'SUCCEEDED'`, alice.customerID))
	raw, resp := s.export(alice.token)
	require.Empty(t, resp.Errors, resp.Raw)
	for _, v := range []string{alice.email, alice.name, alice.street, "evt_lookalike_pending", alice.event} {
		require.Contains(t, raw, v)
	}
}

// An erasure and the application of the customer's event take their locks in one
// order (the event, then the customer's rows), so neither ever fails with a
// deadlock, even when the erasure starts while the event is being applied.
func TestPrivacyEraseWhileTheCustomersEventApplies(t *testing.T) {
	t.Parallel()
	s, hooks := newHookedPrivacyShop(t)
	for i := range 3 {
		p := &person{subject: fmt.Sprintf("race-%d", i), email: fmt.Sprintf("race%d@lock.example", i), name: "Racing Customer",
			street: "9 Lock Street", city: "Waitville"}
		s.enrol(p, 40+i)
		eventID := fmt.Sprintf("evt_lock_%d", i)

		// The worst moment: the worker holds the event and is about to lock the
		// subscription when the erasure has taken whatever it takes first and waits.
		entered := make(chan struct{})
		hooks.onApply(eventID, func(*gorm.DB) {
			close(entered)
			s.awaitLockWaiter()
		})
		require.Equal(t, 200, s.deliver(s.paidInvoice(p, eventID, fmt.Sprintf("in_lock_%d", i))))
		<-entered
		resp, payload := s.deleteAccount(s.tokenFor(p, time.Minute), "del-lock", true)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, true, payload["deleted"], resp.Raw)

		require.Equal(t, "PROCESSED", s.awaitEvent(eventID))
		var attempts int
		var lastErr string
		require.NoError(t, s.db.Raw(`SELECT attempts, coalesce(last_error, '') FROM webhook_events WHERE provider_event_id = ?`, eventID).
			Row().Scan(&attempts, &lastErr))
		require.Equal(t, 1, attempts, "applied at the first attempt: %s", lastErr)
		require.Empty(t, lastErr)
		var ev models.WebhookEvent
		require.NoError(t, s.db.Take(&ev, "provider_event_id = ?", eventID).Error)
		require.NotContains(t, string(ev.Payload), p.email, "the event applied first, then was scrubbed")
	}

	// And at whatever moment the two meet: the erasure and the event race freely.
	for i := range 6 {
		p := &person{subject: fmt.Sprintf("free-race-%d", i), email: fmt.Sprintf("free%d@lock.example", i), name: "Racing Customer",
			street: "9 Lock Street", city: "Waitville"}
		s.enrol(p, 50+i)
		eventID := fmt.Sprintf("evt_free_lock_%d", i)
		body := s.paidInvoice(p, eventID, fmt.Sprintf("in_free_lock_%d", i))
		tok := s.tokenFor(p, time.Minute)
		var wg sync.WaitGroup
		var status int
		wg.Add(1)
		go func() {
			defer wg.Done()
			status = s.deliver(body)
		}()
		resp, payload := s.deleteAccount(tok, "del-free", true)
		wg.Wait()
		require.Equal(t, 200, status)
		require.Empty(t, resp.Errors, resp.Raw)
		require.Equal(t, true, payload["deleted"], resp.Raw)
		require.Equal(t, "PROCESSED", s.awaitEvent(eventID))
		var attempts int
		require.NoError(t, s.db.Raw(`SELECT attempts FROM webhook_events WHERE provider_event_id = ?`, eventID).Scan(&attempts).Error)
		require.Equal(t, 1, attempts)
	}
	require.NotContains(t, s.logs.String(), "deadlock")
}

// awaitLockWaiter returns once another session of the test's database waits for a
// row lock, or after a while if none does (then the interleaving was not reached
// and the test proves less, but never hangs).
func (s *shop) awaitLockWaiter() {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int64
		_ = s.db.Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n).Error
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An export is priced apart: one per operation (the complexity limit), and its own
// small allowance per caller (RATE_LIMIT_EXPORTS_PER_MINUTE), which leaves other
// queries alone.
func TestExportIsPricedAndRateLimitedApart(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: map[string]string{"RATE_LIMIT_EXPORTS_PER_MINUTE": "2"}}) // burst 1
	tok := a.token("exporter")

	two := a.gql(tok, `{ a: exportMyData { json } b: exportMyData { json } }`, nil)
	require.Equal(t, []string{"COMPLEXITY_LIMIT_EXCEEDED"}, two.codes(), two.Raw)

	first := a.gql(tok, `{ exportMyData { json } }`, nil)
	require.Empty(t, first.Errors, first.Raw)
	again := a.gql(tok, `{ exportMyData { json } }`, nil)
	require.Equal(t, []string{"RATE_LIMITED"}, again.codes(), again.Raw)
	require.Equal(t, 429, again.Status)
	me := a.gql(tok, `{ me { id } }`, nil)
	require.Empty(t, me.Errors, me.Raw)
	other := a.gql(a.token("other-exporter"), `{ exportMyData { json } }`, nil)
	require.Empty(t, other.Errors, other.Raw)
}

// An event the worker read before an erasure scrubbed it is applied from what is
// stored when it locks the event, the scrubbed payload: the copy read first would
// put the erased person's address and invoice link back into their records.
func TestPrivacyEventReadBeforeTheErasureAppliesScrubbed(t *testing.T) {
	t.Parallel()
	s, hooks := newHookedPrivacyShop(t)
	p := &person{subject: "stale-read", email: "stale@read.example", name: "Stale Reader", street: "8 Oldcopy Road", city: "Readburg"}
	s.enrol(p, 70)

	entered, release := make(chan struct{}), make(chan struct{})
	hooks.onPrepare("evt_stale_read", func() {
		select {
		case <-entered:
		default:
			close(entered)
		}
		<-release
	})
	require.Equal(t, 200, s.deliver(s.paidInvoice(p, "evt_stale_read", "in_stale_read")))
	<-entered // the worker holds the payload as it was, and no lock
	resp, payload := s.deleteAccount(s.tokenFor(p, time.Minute), "del-stale", true)
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, true, payload["deleted"], resp.Raw)
	close(release)

	require.Equal(t, "PROCESSED", s.awaitEvent("evt_stale_read"))
	var pay models.Payment
	require.NoError(t, s.db.Take(&pay, "stripe_invoice_id = ?", "in_stale_read").Error)
	require.Nil(t, pay.InvoiceURL, "no hosted invoice link of the erased customer")
	s.requireNowhere(p.email, p.name, p.street, p.city)
}

// An event that arrives while an erasure runs, too late for the erasure to see it,
// takes the customer's lock before their subscription, as the erasure does: the
// worker holding the subscription never waits for a customer the erasure holds.
func TestPrivacyEventArrivingDuringTheErasureTakesTheCustomerFirst(t *testing.T) {
	t.Parallel()
	var arrive atomic.Pointer[func()]
	s, hooks := newHookedPrivacyShop(t, func() {
		if f := arrive.Load(); f != nil {
			(*f)()
		}
	})
	p := &person{subject: "late-arrival", email: "late@arrival.example", name: "Late Arrival", street: "6 Window Way", city: "Gapton"}
	s.enrol(p, 80)

	applying := make(chan struct{})
	hooks.onApply("evt_late_arrival", func(tx *gorm.DB) {
		// What applying does first: lock the subscription. Then hold it until the
		// erasure waits for something.
		require.NoError(t, tx.Exec(`SELECT id FROM subscriptions WHERE stripe_subscription_id = ? FOR UPDATE`, p.stripeSub).Error)
		close(applying)
		s.awaitLockWaiter()
	})
	body := s.paidInvoice(p, "evt_late_arrival", "in_late_arrival")
	var once sync.Once
	deliverNow := func() {
		once.Do(func() {
			go func() { s.deliver(body) }()
			<-applying
		})
	}
	arrive.Store(&deliverNow)
	resp, payload := s.deleteAccount(s.tokenFor(p, time.Minute), "del-late", true)
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, true, payload["deleted"], resp.Raw)

	require.Equal(t, "PROCESSED", s.awaitEvent("evt_late_arrival"))
	var attempts int
	var lastErr string
	require.NoError(t, s.db.Raw(`SELECT attempts, coalesce(last_error, '') FROM webhook_events WHERE provider_event_id = 'evt_late_arrival'`).
		Row().Scan(&attempts, &lastErr))
	require.Equal(t, 1, attempts, "applied at the first attempt: %s", lastErr)
	require.NotContains(t, s.logs.String(), "deadlock")
}
