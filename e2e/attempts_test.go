package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// adminFault is what the staff actions' gateway does to its next call, once armed.
type adminFault int32

const (
	noFault          adminFault = iota
	crashAfterStripe            // Stripe acts, then the process dies before our commit
	neverReachStripe            // the network fails before Stripe sees the call
)

var errCrashedAfterStripe = errors.New("test: the process died after Stripe answered")

// faultyAdminGateway is the staff actions' gateway with one armed fault for its next
// call: the effect exists at Stripe and nothing of ours is committed
// (crashAfterStripe), or nothing exists at Stripe (neverReachStripe).
type faultyAdminGateway struct {
	subscriptions.AdminGateway
	armed atomic.Int32
}

func (g *faultyAdminGateway) arm(f adminFault) { g.armed.Store(int32(f)) }

// faulty runs do under the armed fault, which it disarms.
func faulty[T any](g *faultyAdminGateway, do func() (T, error)) (T, error) {
	var zero T
	switch adminFault(g.armed.Swap(int32(noFault))) {
	case neverReachStripe:
		return zero, gateway.ErrProviderUnavailable
	case crashAfterStripe:
		if _, err := do(); err != nil {
			return zero, err
		}
		return zero, errCrashedAfterStripe
	}
	return do()
}

func (g *faultyAdminGateway) RefundPayment(ctx context.Context, key string, in gateway.RefundInput) (gateway.Refund, error) {
	return faulty(g, func() (gateway.Refund, error) { return g.AdminGateway.RefundPayment(ctx, key, in) })
}

func (g *faultyAdminGateway) CancelSubscription(ctx context.Context, key, subID string, atPeriodEnd bool) (gateway.Subscription, error) {
	return faulty(g, func() (gateway.Subscription, error) {
		return g.AdminGateway.CancelSubscription(ctx, key, subID, atPeriodEnd)
	})
}

// newFaultyAdminShop is newAdminShop with the workers running and the staff actions'
// gateway able to fail around Stripe's answer.
func newFaultyAdminShop(t *testing.T) (*shop, *faultyAdminGateway) {
	t.Helper()
	fake := newFakeStripe(t)
	faults := &faultyAdminGateway{}
	a := newTestApp(t, appOptions{
		env:  map[string]string{"STRIPE_API_BASE": fake.URL},
		jobs: true,
		options: []app.Option{app.WithStripeTimeouts(300*time.Millisecond, 2*time.Second),
			app.WithAdminGatewayWrapper(func(g subscriptions.AdminGateway) subscriptions.AdminGateway {
				faults.AdminGateway = g
				return faults
			})},
	})
	a.seedAt(fake.URL)
	return &shop{testApp: a, stripe: fake}, faults
}

// auditRow is one audit entry as a test reads it.
type auditRow struct {
	ID, Action, ActorSubject, Reason, After string
}

func (s *shop) auditOf(targetID string) []auditRow {
	s.t.Helper()
	var rows []auditRow
	require.NoError(s.t, s.db.Raw(`SELECT id, action, actor_subject, reason, coalesce(after::text, '') AS after
		FROM audit_log WHERE target_id = ? ORDER BY created_at, action`, targetID).Scan(&rows).Error)
	return rows
}

// onlyEntry requires the audit log of targetID to hold one entry, action by actor
// for reason, and returns it.
func (s *shop) onlyEntry(targetID, action, actor, reason string) auditRow {
	s.t.Helper()
	entries := s.auditOf(targetID)
	require.Len(s.t, entries, 1)
	require.Equal(s.t, action, entries[0].Action)
	require.Equal(s.t, actor, entries[0].ActorSubject)
	require.Equal(s.t, reason, entries[0].Reason)
	return entries[0]
}

// A refund Stripe made for an admin whose process died before our commit is never
// without an audit entry naming the admin: the attempt was committed before Stripe
// was called, Stripe's event completes it, and the admin's retry with the same key
// finishes the same refund (one refund at Stripe, counted once, the customer told
// once) instead of being refused because the event recorded it first.
func TestARefundThatCrashedAfterStripeStaysAudited(t *testing.T) {
	t.Parallel()
	s, faults := newFaultyAdminShop(t)
	admin := s.token("crash-admin", "admin")
	payID, pi := s.paidPayment("crash-customer", 3500)
	in := map[string]any{"paymentId": payID, "amount": 1000, "reason": "box arrived broken", "idempotencyKey": "crash-refund-1"}

	faults.arm(crashAfterStripe)
	resp, _ := s.refund(admin, in)
	require.NotEmpty(t, resp.Errors, "the attempt died after Stripe answered")
	status, amount := s.refunded(payID)
	require.Equal(t, "SUCCEEDED", status, "nothing of ours was committed")
	require.Zero(t, amount)
	attempt := s.onlyEntry(payID, "refundPayment.attempted", "crash-admin", "box arrived broken")

	// Stripe's event for the refund lands first and completes the attempt.
	var pay models.Payment
	require.NoError(t, s.db.Take(&pay, "id = ?", payID).Error)
	charge := webhooktest.Charge("ch_"+strings.TrimPrefix(pi, "pi_"), pay.StripeInvoiceID, pi, 3500, 1000, "usd")
	sent := s.refundRequests()
	require.Len(t, sent, 1)
	require.Equal(t, 200, s.deliver(webhooktest.EventOfRequest("evt_crashed_refund", "charge.refunded", time.Now(), charge, nil,
		sent[0].IdempotencyKey)))
	require.Equal(t, "PROCESSED", s.awaitEvent("evt_crashed_refund"))
	status, amount = s.refunded(payID)
	require.Equal(t, "PARTIALLY_REFUNDED", status)
	require.EqualValues(t, 1000, amount)
	entries := s.auditOf(payID)
	require.Len(t, entries, 2)
	require.Equal(t, "refundPayment.completed", entries[1].Action)
	require.Equal(t, "system", entries[1].ActorSubject)
	require.Contains(t, entries[1].After, `"attemptId": "`+attempt.ID+`"`)
	require.Contains(t, entries[1].After, "evt_crashed_refund")

	// The admin's retry finishes the same refund: no refusal, no second refund.
	_, p := s.refund(admin, in)
	require.Empty(t, userErrorCodes(p))
	status, amount = s.refunded(payID)
	require.Equal(t, "PARTIALLY_REFUNDED", status)
	require.EqualValues(t, 1000, amount, "counted once")
	reqs := s.refundRequests()
	require.Len(t, reqs, 2)
	require.Equal(t, reqs[0].IdempotencyKey, reqs[1].IdempotencyKey, "the retry asks Stripe under the same key")
	entries = s.auditOf(payID)
	require.Len(t, entries, 3)
	require.Equal(t, "refundPayment", entries[2].Action)
	require.Equal(t, "crash-admin", entries[2].ActorSubject)
	require.Contains(t, entries[2].After, `"attemptId": "`+attempt.ID+`"`)
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM notifications WHERE payment_id = ? AND kind = 'payment_refunded'`, payID),
		"the customer is told once")
}

// The same for a staff cancellation: Stripe canceled, the process died, Stripe's
// event ended the subscription and completed the attempt; the retry with the same
// key succeeds instead of "already ended", with one cancellation at Stripe.
func TestAnAdminCancelThatCrashedAfterStripeStaysAudited(t *testing.T) {
	t.Parallel()
	s, faults := newFaultyAdminShop(t)
	admin := s.token("crash-cancel-admin", "admin")
	id := s.activeSubscription(s.token("crash-cancel-customer"), "crash-cancel-sub")
	cancel := func() (gqlResponse, map[string]any) {
		return s.mutate(admin, "adminCancelSubscription", "AdminCancelSubscriptionInput",
			map[string]any{"subscriptionId": id, "atPeriodEnd": false, "reason": "chargeback fraud", "idempotencyKey": "crash-cancel-1"},
			"subscription { id status }")
	}

	faults.arm(crashAfterStripe)
	resp, _ := cancel()
	require.NotEmpty(t, resp.Errors, "the attempt died after Stripe answered")
	require.Equal(t, "ACTIVE", s.status(id))
	attempt := s.onlyEntry(id, "adminCancelSubscription.attempted", "crash-cancel-admin", "chargeback fraud")

	var cancelKey string
	for _, r := range s.stripe.Requests() {
		if r.Method == http.MethodDelete && strings.HasPrefix(r.Path, "/v1/subscriptions/") {
			cancelKey = r.IdempotencyKey
		}
	}
	require.NotEmpty(t, cancelKey)
	require.Equal(t, 200, s.deliver(withRequestKey(t,
		s.subscriptionEvent("evt_crashed_cancel", "customer.subscription.deleted", id, "canceled", time.Now()), cancelKey)))
	require.Equal(t, "PROCESSED", s.awaitEvent("evt_crashed_cancel"))
	require.Equal(t, "CANCELED", s.status(id))
	entries := s.auditOf(id)
	require.Len(t, entries, 2)
	require.Equal(t, "adminCancelSubscription.completed", entries[1].Action)
	require.Equal(t, "system", entries[1].ActorSubject)
	require.Contains(t, entries[1].After, `"attemptId": "`+attempt.ID+`"`)

	_, p := cancel()
	require.Empty(t, userErrorCodes(p), "the retry finishes the cancellation instead of refusing an ended subscription")
	require.Equal(t, "CANCELED", s.status(id))
	var keys []string
	for _, r := range s.stripe.Requests() {
		if r.Method == http.MethodDelete && strings.HasPrefix(r.Path, "/v1/subscriptions/") {
			keys = append(keys, r.IdempotencyKey)
		}
	}
	require.Len(t, keys, 2)
	require.Equal(t, keys[0], keys[1], "the retry asks Stripe under the same key")
	entries = s.auditOf(id)
	require.Len(t, entries, 3)
	require.Equal(t, "adminCancelSubscription", entries[2].Action)
	require.Contains(t, entries[2].After, `"attemptId": "`+attempt.ID+`"`)
}

// withRequestKey sets an event's request.idempotency_key, as Stripe does for the
// change an API request made.
func withRequestKey(t *testing.T, event []byte, key string) []byte {
	t.Helper()
	var ev map[string]any
	require.NoError(t, json.Unmarshal(event, &ev))
	ev["request"] = map[string]any{"id": "req_test", "idempotency_key": key}
	out, err := json.Marshal(ev)
	require.NoError(t, err)
	return out
}
