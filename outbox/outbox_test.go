package outbox

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/sealing"
)

// verify is an independent Standard Webhooks check, written from the spec (as the
// reference library's Verify): one of the space-separated v1 entries must be the
// base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" under the decoded secret.
func verify(t *testing.T, secret string, h http.Header, body []byte) bool {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", h.Get("webhook-id"), h.Get("webhook-timestamp"), body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, entry := range strings.Split(h.Get("webhook-signature"), " ") {
		v, sig, ok := strings.Cut(entry, ",")
		if ok && v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

// The published vector of the Standard Webhooks libraries (libraries/go,
// TestWebhookSign, and the same in every other language's tests).
func TestSignMatchesTheStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	got, err := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	require.NoError(t, err)
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", got)
	s, err := newSecret()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(s, "whsec_"))
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	require.NoError(t, err)
	require.Len(t, raw, 32)
}

var staff = &auth.Principal{Issuer: "https://id.test", Subject: "admin-1", Roles: []auth.Role{auth.RoleAdmin}}

// receiver is an httptest TLS server that answers with the codes of answer in turn
// (the last one repeats) and keeps what it received.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, answer ...int) *receiver {
	r := &receiver{}
	var n atomic.Int64
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), b})
		r.mu.Unlock()
		i := min(int(n.Add(1))-1, len(answer)-1)
		w.WriteHeader(answer[i])
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

type env struct {
	t       *testing.T
	db      *gorm.DB
	svc     *Service
	targets Targets
	now     time.Time
}

func newEnv(t *testing.T) *env {
	db := dbtest.NewSealed(t)
	e := &env{t: t, db: db, now: time.Now()}
	e.targets = Targets{}
	e.svc = NewService(db, idempotency.NewStore(db), e.targets, func() time.Time { return e.now })
	return e
}

// endpoint registers url for types through the service and returns its id and secret.
func (e *env) endpoint(url string, types ...string) (string, string) {
	e.t.Helper()
	ep, secret, err := e.svc.CreateEndpoint(context.Background(), staff, models.CreateWebhookEndpointInput{
		URL: url, EventTypes: types, Reason: "the 3PL goes live", IdempotencyKey: uuid.NewString()})
	require.NoError(e.t, err)
	return ep.ID, secret
}

func (e *env) worker(r *receiver) *DeliverWorker {
	tg := e.targets
	if r != nil {
		tg.RootCAs = poolOf(r.srv)
	}
	return NewDeliverWorker(e.db, tg, func() time.Time { return e.now }, nil)
}

func poolOf(srv *httptest.Server) *x509.CertPool {
	p := newPool()
	p.AddCert(srv.Certificate())
	return p
}

// publish commits a payment.succeeded about payment id in its own transaction.
func (e *env) publish(id string) {
	e.t.Helper()
	require.NoError(e.t, e.db.Transaction(func(tx *gorm.DB) error {
		return PaymentChanged(context.Background(), tx, &models.Payment{ID: id, SubscriptionID: uuid.NewString(), CustomerID: uuid.NewString(),
			AmountMinor: 1500, Currency: "USD", Status: models.PaymentSucceeded})
	}))
}

func (e *env) deliveries(endpointID string) []deliveryRow {
	e.t.Helper()
	var out []deliveryRow
	require.NoError(e.t, e.db.Where("endpoint_id = ?", endpointID).Order("created_at, id").Find(&out).Error)
	return out
}

func (e *env) delivery(id string) deliveryRow {
	e.t.Helper()
	var d deliveryRow
	require.NoError(e.t, e.db.Take(&d, "id = ?", id).Error)
	return d
}

// firstDelivery registers url for types (endpoint), publishes one payment.succeeded,
// and returns the endpoint's id and secret and its delivery of that message.
func (e *env) firstDelivery(url string, types ...string) (ep, secret string, d deliveryRow) {
	e.t.Helper()
	ep, secret = e.endpoint(url, types...)
	e.publish(uuid.NewString())
	return ep, secret, e.deliveries(ep)[0]
}

func job(deliveryID string, attempt int) *river.Job[DeliverArgs] {
	return &river.Job[DeliverArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: attempt}, Args: DeliverArgs{DeliveryID: deliveryID}}
}

func TestPublishWritesOnceWithTheFactAndNothingWhenItRollsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pay, _ := e.endpoint("https://accounting.example/hooks", EventPaymentSucceeded, EventPaymentRefunded)
	all, _ := e.endpoint("https://crm.example/hooks", AllEvents)
	ship, _ := e.endpoint("https://3pl.example/hooks", EventShipmentCreated)

	payment := uuid.NewString()
	// The fact rolls back: no message, no delivery, no job.
	boom := errors.New("the fact failed")
	err := e.db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, PaymentChanged(context.Background(), tx, &models.Payment{ID: payment, Status: models.PaymentSucceeded,
			SubscriptionID: uuid.NewString(), CustomerID: uuid.NewString(), Currency: "USD"}))
		return boom
	})
	require.ErrorIs(t, err, boom)
	var n int64
	require.NoError(t, e.db.Table("webhook_messages").Count(&n).Error)
	require.Zero(t, n)
	require.NoError(t, e.db.Table("river_job").Count(&n).Error)
	require.Zero(t, n)

	// Outside a transaction a message could outlive or miss its fact: refused.
	err = PaymentChanged(context.Background(), e.db, &models.Payment{ID: payment, Status: models.PaymentSucceeded, Currency: "USD"})
	require.ErrorIs(t, err, jobs.ErrNotInTransaction)

	// The same fact recorded twice (a repeated provider event): one message.
	e.publish(payment)
	e.publish(payment)
	require.NoError(t, e.db.Table("webhook_messages").Count(&n).Error)
	require.EqualValues(t, 1, n)
	require.Len(t, e.deliveries(pay), 1)
	require.Len(t, e.deliveries(all), 1)
	require.Empty(t, e.deliveries(ship), "not subscribed to payments")
	require.NoError(t, e.db.Table("river_job").Where("queue = ? AND kind = ?", "outbox", "outbox_deliver").Count(&n).Error)
	require.EqualValues(t, 2, n, "one job per delivery, on the outbox queue")
	d := e.deliveries(pay)[0]
	require.Equal(t, MessageID(EventPaymentSucceeded, payment+":SUCCEEDED:0"), d.MessageID)

	var msg messageRow
	require.NoError(t, e.db.Take(&msg, "id = ?", d.MessageID).Error)
	var body struct {
		Type      string         `json:"type"`
		Timestamp time.Time      `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(msg.Payload, &body))
	require.Equal(t, "payment.succeeded", body.Type)
	require.Equal(t, map[string]any{"amount": 1500.0, "currency": "USD"}, body.Data["amount"])
	require.Equal(t, "SUCCEEDED", body.Data["status"])
	require.Equal(t, payment, body.Data["paymentId"])
}

func TestDeliveryRetriesWithTheSameIDThenIsDelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 500, 204)
	_, secret, d := e.firstDelivery(r.srv.URL+"/in", EventPaymentSucceeded)
	w := e.worker(r)

	err := w.Work(context.Background(), job(d.ID, 1))
	require.ErrorIs(t, err, errReceiver, "a 500 is retried")
	got := e.delivery(d.ID)
	require.Equal(t, statusPending, got.Status)
	require.Equal(t, 500, *got.LastStatusCode)
	require.WithinDuration(t, time.Now().Add(5*time.Second), w.NextRetry(job(d.ID, 1)), time.Second)

	require.NoError(t, w.Work(context.Background(), job(d.ID, 2)))
	got = e.delivery(d.ID)
	require.Equal(t, statusDelivered, got.Status)
	require.Equal(t, 2, got.Attempts)
	require.NotNil(t, got.DeliveredAt)

	reqs := r.requests()
	require.Len(t, reqs, 2)
	for _, q := range reqs {
		require.Equal(t, d.MessageID, q.header.Get("webhook-id"), "the same id on every attempt")
		require.Equal(t, "application/json", q.header.Get("Content-Type"))
		require.True(t, verify(t, secret, q.header, q.body), "signed per Standard Webhooks")
		ts, err := strconv.ParseInt(q.header.Get("webhook-timestamp"), 10, 64)
		require.NoError(t, err)
		require.InDelta(t, e.now.Unix(), ts, 1)
	}
	var attempts []attemptRow
	require.NoError(t, e.db.Where("delivery_id = ?", d.ID).Order("id").Find(&attempts).Error)
	require.Len(t, attempts, 2)
	require.Equal(t, 500, *attempts[0].StatusCode)
	require.Equal(t, "receiver answered 500", *attempts[0].Error)
	require.Equal(t, 204, *attempts[1].StatusCode)
	require.Nil(t, attempts[1].Error)

	// A job run again after its answer was recorded sends nothing; a redelivery
	// sends the same webhook-id again.
	require.NoError(t, w.Work(context.Background(), job(d.ID, 3)))
	require.Len(t, r.requests(), 2)
	again, err := e.svc.Redeliver(context.Background(), staff, models.RedeliverWebhookInput{DeliveryID: d.ID, Reason: "the 3PL lost it"})
	require.NoError(t, err)
	require.Equal(t, d.ID, again.ID)
	require.Equal(t, d.MessageID, again.MessageID)
	require.Equal(t, EventPaymentSucceeded, again.EventType)
	require.Equal(t, models.WebhookDeliveryStatusPending, again.Status)
	require.Equal(t, 2, again.Attempts)
	require.NoError(t, w.Work(context.Background(), job(d.ID, 1)))
	reqs = r.requests()
	require.Len(t, reqs, 3)
	require.Equal(t, d.MessageID, reqs[2].header.Get("webhook-id"))
	var audited int64
	require.NoError(t, e.db.Table("audit_log").Where("action = ? AND target_id = ? AND reason = ?", OpRedeliver, d.ID, "the 3PL lost it").Count(&audited).Error)
	require.EqualValues(t, 1, audited)
}

func TestRetryScheduleThenFailed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 503)
	ep, _ := e.endpoint(r.srv.URL, AllEvents)
	// payment.failed: the metric's series is this test's alone (tests run in parallel).
	require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
		return PaymentChanged(context.Background(), tx, &models.Payment{ID: uuid.NewString(), SubscriptionID: uuid.NewString(),
			CustomerID: uuid.NewString(), AmountMinor: 1500, Currency: "USD", Status: models.PaymentFailed})
	}))
	d := e.deliveries(ep)[0]
	w := e.worker(r)
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	failedBefore := testutil.ToFloat64(outcomes.WithLabelValues(EventPaymentFailed, "failed"))
	for i, wait := range want {
		require.ErrorIs(t, w.Work(context.Background(), job(d.ID, i+1)), errReceiver, "attempt %d", i+1)
		require.WithinDuration(t, time.Now().Add(wait), w.NextRetry(job(d.ID, i+1)), time.Second, "wait after attempt %d", i+1)
		got := e.delivery(d.ID)
		require.Equal(t, statusPending, got.Status)
		require.WithinDuration(t, time.Now().Add(wait), *got.NextAttemptAt, 5*time.Second)
	}
	require.NoError(t, w.Work(context.Background(), job(d.ID, len(want)+1)), "the last attempt ends the job")
	got := e.delivery(d.ID)
	require.Equal(t, statusFailed, got.Status)
	require.Equal(t, 8, got.Attempts)
	require.Nil(t, got.NextAttemptAt)
	require.Len(t, r.requests(), 8)
	require.Equal(t, failedBefore+1, testutil.ToFloat64(outcomes.WithLabelValues(EventPaymentFailed, "failed")))
}

func TestGoneDisablesTheEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 410)
	ep, _ := e.endpoint(r.srv.URL, AllEvents)
	e.publish(uuid.NewString())
	e.publish(uuid.NewString())
	ds := e.deliveries(ep)
	w := e.worker(r)
	before := testutil.ToFloat64(endpointsDisabled.WithLabelValues("gone"))
	require.NoError(t, w.Work(context.Background(), job(ds[0].ID, 1)), "410 is not retried")
	require.Equal(t, statusFailed, e.delivery(ds[0].ID).Status)
	var row endpointRow
	require.NoError(t, e.db.Take(&row, "id = ?", ep).Error)
	require.False(t, row.Enabled)
	require.Equal(t, "the receiver answered 410 Gone", *row.DisabledReason)
	require.Equal(t, before+1, testutil.ToFloat64(endpointsDisabled.WithLabelValues("gone")))
	// The other delivery is not sent to a disabled endpoint.
	skipped := testutil.ToFloat64(outcomes.WithLabelValues(EventPaymentSucceeded, "skipped"))
	require.NoError(t, w.Work(context.Background(), job(ds[1].ID, 1)))
	require.Equal(t, skipped+1, testutil.ToFloat64(outcomes.WithLabelValues(EventPaymentSucceeded, "skipped")))
	require.Len(t, r.requests(), 1)
	require.Equal(t, statusFailed, e.delivery(ds[1].ID).Status)
	// Nor is a new message written for it.
	e.publish(uuid.NewString())
	require.Len(t, e.deliveries(ep), 2)
}

func TestAnEndpointFailingForDaysIsDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 500)
	ep, _, d := e.firstDelivery(r.srv.URL, AllEvents)
	require.NoError(t, e.db.Model(&endpointRow{}).Where("id = ?", ep).Update("failing_since", time.Now().Add(-FailingFor-time.Minute)).Error)
	before := testutil.ToFloat64(endpointsDisabled.WithLabelValues("failing"))
	require.ErrorIs(t, e.worker(r).Work(context.Background(), job(d.ID, 3)), errReceiver)
	var row endpointRow
	require.NoError(t, e.db.Take(&row, "id = ?", ep).Error)
	require.False(t, row.Enabled)
	require.Contains(t, *row.DisabledReason, "every attempt failed since")
	require.Equal(t, before+1, testutil.ToFloat64(endpointsDisabled.WithLabelValues("failing")))
}

// A success clears the endpoint's failing time; to an endpoint that is not failing
// it is recorded without waiting for the endpoint's row (held here as an update of
// the endpoint, or another delivery's record, would hold it), so deliveries to one
// endpoint do not commit one after the other.
func TestASuccessLocksTheEndpointOnlyToClearItsFailingTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	ep, _ := e.endpoint(r.srv.URL+"/in", EventPaymentSucceeded)
	e.publish(uuid.NewString())
	e.publish(uuid.NewString())
	ds := e.deliveries(ep)
	w := e.worker(r)

	holder := e.db.Begin()
	t.Cleanup(func() { holder.Rollback() })
	var held endpointRow
	require.NoError(t, holder.Raw("SELECT * FROM webhook_endpoints WHERE id = ? FOR UPDATE", ep).Scan(&held).Error)
	// The bound only ends the test if the attempt waits for the row; it measures nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.Work(ctx, job(ds[0].ID, 1)))
	require.Equal(t, statusDelivered, e.delivery(ds[0].ID).Status)
	require.NoError(t, holder.Rollback().Error)

	since := time.Now().Add(-time.Hour)
	require.NoError(t, e.db.Model(&endpointRow{}).Where("id = ?", ep).Update("failing_since", since).Error)
	require.NoError(t, w.Work(context.Background(), job(ds[1].ID, 1)))
	var row endpointRow
	require.NoError(t, e.db.Take(&row, "id = ?", ep).Error)
	require.Nil(t, row.FailingSince, "a success ends the failing time")
	require.True(t, row.Enabled)
}

// An endpoint's share of the workers bounds the attempts waiting for its answer:
// attempts whose answers are in and being recorded leave room for the next.
func TestAnEndpointsShareIsFreeOnceItsAnswersAreIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	ep, _ := e.endpoint(r.srv.URL+"/in", EventPaymentSucceeded)
	for range maxInFlight + 1 {
		e.publish(uuid.NewString())
	}
	ds := e.deliveries(ep)
	w := e.worker(r)
	recording := make(chan struct{})
	release := make(chan struct{})
	var held atomic.Int64
	w.afterSend = func() {
		if held.Add(1) <= maxInFlight {
			recording <- struct{}{}
			<-release
		}
	}
	var wg sync.WaitGroup
	for _, d := range ds[:maxInFlight] {
		wg.Go(func() { assert.NoError(t, w.Work(context.Background(), job(d.ID, 1))) })
	}
	for range maxInFlight {
		<-recording
	}
	// maxInFlight answers are in and not recorded yet: the next delivery is sent,
	// not snoozed.
	require.NoError(t, w.Work(context.Background(), job(ds[maxInFlight].ID, 1)))
	require.Equal(t, statusDelivered, e.delivery(ds[maxInFlight].ID).Status)
	close(release)
	wg.Wait()
	for _, d := range ds {
		require.Equal(t, statusDelivered, e.delivery(d.ID).Status)
	}
	require.Len(t, r.requests(), maxInFlight+1)
}

func TestASlowEndpointDoesNotHoldAnother(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	release := make(chan struct{})
	var arrived atomic.Int64
	slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		<-release
		w.WriteHeader(204)
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	fast := newReceiver(t, 204)
	slowID, _ := e.endpoint(slow.URL, EventPaymentSucceeded)
	for range maxInFlight + 1 {
		e.publish(uuid.NewString())
	}
	fastID, _ := e.endpoint(fast.srv.URL, EventPaymentSucceeded)
	e.publish(uuid.NewString())

	pool := newPool()
	pool.AddCert(slow.Certificate())
	pool.AddCert(fast.srv.Certificate())
	tg := e.targets
	tg.RootCAs = pool
	w := NewDeliverWorker(e.db, tg, nil, nil)
	ds := e.deliveries(slowID)
	for _, d := range ds[:maxInFlight] {
		go func() { _ = w.Work(context.Background(), job(d.ID, 1)) }()
	}
	require.Eventually(t, func() bool { return arrived.Load() == maxInFlight }, 10*time.Second, 5*time.Millisecond)
	// The slow endpoint has its share: its next delivery waits instead of taking
	// another worker, and the other endpoint's is sent at once.
	var snooze *rivertype.JobSnoozeError
	require.ErrorAs(t, w.Work(context.Background(), job(ds[maxInFlight].ID, 1)), &snooze)
	require.NoError(t, w.Work(context.Background(), job(e.deliveries(fastID)[0].ID, 1)))
	require.Equal(t, statusDelivered, e.delivery(e.deliveries(fastID)[0].ID).Status)
	require.EqualValues(t, maxInFlight, arrived.Load())
}

func TestProductionRefusesUnsafeTargets(t *testing.T) {
	t.Parallel()
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "internal.example":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.1.2.3")}, nil
		case "partner.example":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		}
		return nil, errors.New("no such host")
	}
	prod := Targets{Production: true, lookup: lookup}
	for _, u := range []string{
		"http://partner.example/hooks",
		"https://169.254.169.254/latest/meta-data",
		"https://10.0.0.1/hooks",
		"https://[::1]/hooks",
		"https://[::ffff:127.0.0.1]/hooks",
		"https://127.0.0.1:8443/hooks",
		"https://0.0.0.0/hooks",
		"https://internal.example/hooks",
		"https://user:pw@partner.example/hooks",
		"https://nowhere.example/hooks",
		"ftp://partner.example/",
		"/relative",
	} {
		require.ErrorIs(t, prod.Check(context.Background(), u), ErrTargetRefused, u)
	}
	require.NoError(t, prod.Check(context.Background(), "https://partner.example/hooks"))
	allowed := prod
	allowed.Allowed = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	require.NoError(t, allowed.Check(context.Background(), "https://internal.example/hooks"), "inside WEBHOOK_TARGET_ALLOWED_CIDRS")
	dev := Targets{}
	require.NoError(t, dev.Check(context.Background(), "http://127.0.0.1:8080/hooks"), "development allows http to loopback")
}

// A name that passed the check at registration and resolves to a loopback address
// at the attempt (DNS rebinding) is refused by the dialer: nothing is sent. A
// redirect is not followed.
func TestProductionAttemptsDialOnlySafeAddresses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	e.targets = Targets{Production: true, RootCAs: poolOf(r.srv),
		lookup: func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		}}
	e.svc = NewService(e.db, idempotency.NewStore(e.db), e.targets, nil)
	port := r.srv.Listener.Addr().(*net.TCPAddr).Port
	// localhost resolves to 127.0.0.1 when the attempt dials it.
	_, _, d := e.firstDelivery(fmt.Sprintf("https://localhost:%d/in", port), AllEvents)
	w := NewDeliverWorker(e.db, e.targets, nil, nil)
	require.ErrorIs(t, w.Work(context.Background(), job(d.ID, 1)), errReceiver)
	require.Empty(t, r.requests(), "nothing sent to a loopback address")
	require.Equal(t, "target refused: not a public address", *e.delivery(d.ID).LastError)

	// A redirect (to a private address) is an answer, not followed.
	target := newReceiver(t, 204)
	redirect := httptest.NewTLSServer(http.RedirectHandler(target.srv.URL, http.StatusFound))
	t.Cleanup(redirect.Close)
	dev := newEnv(t)
	rid, _ := dev.endpoint(redirect.URL, AllEvents)
	dev.publish(uuid.NewString())
	pool := newPool()
	pool.AddCert(redirect.Certificate())
	pool.AddCert(target.srv.Certificate())
	dw := NewDeliverWorker(dev.db, Targets{RootCAs: pool}, nil, nil)
	rd := dev.deliveries(rid)[0]
	require.ErrorIs(t, dw.Work(context.Background(), job(rd.ID, 1)), errReceiver)
	require.Empty(t, target.requests(), "the redirect is not followed")
	require.Equal(t, 302, *dev.delivery(rd.ID).LastStatusCode)
}

func TestRotationSignsWithBothSecretsFor24Hours(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	ep, old := e.endpoint(r.srv.URL, AllEvents)
	_, fresh, err := e.svc.RotateSecret(context.Background(), staff, models.RotateWebhookEndpointSecretInput{
		EndpointID: ep, Reason: "leaked in a ticket", IdempotencyKey: uuid.NewString()})
	require.NoError(t, err)
	require.NotEqual(t, old, fresh)
	w := e.worker(r)

	e.publish(uuid.NewString())
	require.NoError(t, w.Work(context.Background(), job(e.deliveries(ep)[0].ID, 1)))
	e.now = e.now.Add(RotationOverlap - time.Minute)
	e.publish(uuid.NewString())
	require.NoError(t, w.Work(context.Background(), job(e.deliveries(ep)[1].ID, 1)))
	e.now = e.now.Add(2 * time.Minute)
	e.publish(uuid.NewString())
	require.NoError(t, w.Work(context.Background(), job(e.deliveries(ep)[2].ID, 1)))

	reqs := r.requests()
	require.Len(t, reqs, 3)
	for i, q := range reqs[:2] {
		require.Len(t, strings.Split(q.header.Get("webhook-signature"), " "), 2, "request %d", i)
		require.True(t, verify(t, fresh, q.header, q.body))
		require.True(t, verify(t, old, q.header, q.body), "the previous secret still verifies within 24 h")
	}
	require.True(t, verify(t, fresh, reqs[2].header, reqs[2].body))
	require.False(t, verify(t, old, reqs[2].header, reqs[2].body), "after 24 h only the new secret signs")
	var n int64
	require.NoError(t, e.db.Table("audit_log").Where("action = ? AND target_id = ? AND reason = ?", OpRotateSecret, ep, "leaked in a ticket").Count(&n).Error)
	require.EqualValues(t, 1, n)
}

func TestErasureForgetsTheAddressAndTellsReceivers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep, _ := e.endpoint("https://3pl.example/in", AllEvents)
	customer := uuid.NewString()
	var productID, planID string
	require.NoError(t, e.db.Raw(`INSERT INTO products (name) VALUES ('Hot box') RETURNING id`).Scan(&productID).Error)
	require.NoError(t, e.db.Raw(`INSERT INTO plans (product_id, billing_interval, amount, currency) VALUES (?, 'MONTH', 2400, 'USD') RETURNING id`,
		productID).Scan(&planID).Error)
	ship := &models.Shipment{ID: uuid.NewString(), SubscriptionID: uuid.NewString(), CustomerID: customer, PlanID: planID,
		PeriodStart: time.Now(), PeriodEnd: time.Now().AddDate(0, 1, 0),
		Address: models.Address{Name: "Ana Canary", Line1: "1 Canary Lane", City: "Austin", PostalCode: "78701", Country: "US"}}
	require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error { return ShipmentCreated(context.Background(), tx, ship, "Hot box") }))
	var msg messageRow
	require.NoError(t, e.db.Take(&msg, "id = ?", MessageID(EventShipmentCreated, ship.ID)).Error)
	require.Contains(t, string(msg.Payload), "1 Canary Lane")
	require.Contains(t, string(msg.Payload), `"planName":"Hot box"`)

	require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error { return CustomerErased(context.Background(), tx, customer) }))
	require.NoError(t, e.db.Take(&msg, "id = ?", MessageID(EventShipmentCreated, ship.ID)).Error)
	require.NotContains(t, string(msg.Payload), "Canary")
	require.NotContains(t, string(msg.Payload), "Austin")
	var erased messageRow
	require.NoError(t, e.db.Take(&erased, "id = ?", MessageID(EventCustomerErased, customer)).Error)
	require.JSONEq(t, `{"customerId":"`+customer+`"}`, string(mustData(t, erased.Payload)))
	require.Len(t, e.deliveries(ep), 2)
}

func mustData(t *testing.T, payload []byte) json.RawMessage {
	var m struct {
		Data json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(payload, &m))
	return m.Data
}

func TestSubscriptionSequenceGrows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep, _ := e.endpoint("https://crm.example/in", EventSubscriptionUpdated)
	sub := &models.Subscription{ID: uuid.NewString(), CustomerID: uuid.NewString(), PlanID: uuid.NewString(), Status: models.SubscriptionActive}
	for range 3 {
		require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error { return SubscriptionUpdated(context.Background(), tx, sub) }))
	}
	// A change that rolls back takes no number that a receiver would see.
	_ = e.db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, SubscriptionUpdated(context.Background(), tx, sub))
		return errors.New("rolled back")
	})
	sub.Status = models.SubscriptionPastDue
	require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error { return SubscriptionUpdated(context.Background(), tx, sub) }))
	var seqs []float64
	for _, d := range e.deliveries(ep) {
		var m messageRow
		require.NoError(t, e.db.Take(&m, "id = ?", d.MessageID).Error)
		var body struct{ Data map[string]any }
		require.NoError(t, json.Unmarshal(m.Payload, &body))
		seqs = append(seqs, body.Data["sequence"].(float64))
		if body.Data["sequence"].(float64) == 4 {
			require.Equal(t, "PAST_DUE", body.Data["status"])
		}
	}
	require.ElementsMatch(t, []float64{1, 2, 3, 4}, seqs)
}

func newPool() *x509.CertPool { return x509.NewCertPool() }

// A crash after the receiver answered and before the answer was recorded: the job
// runs again and sends the same webhook-id, which the receiver dedupes on; only the
// recorded attempt counts.
func TestACrashBeforeTheAnswerIsRecordedSendsTheSameIDAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	_, _, d := e.firstDelivery(r.srv.URL, AllEvents)
	w := e.worker(r)
	ctx, crash := context.WithCancel(context.Background())
	w.afterSend = crash
	require.ErrorIs(t, w.Work(ctx, job(d.ID, 1)), context.Canceled)
	require.Equal(t, statusPending, e.delivery(d.ID).Status, "nothing recorded")
	w.afterSend = nil
	require.NoError(t, w.Work(context.Background(), job(d.ID, 2)))
	reqs := r.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, d.MessageID, reqs[0].header.Get("webhook-id"))
	require.Equal(t, d.MessageID, reqs[1].header.Get("webhook-id"))
	got := e.delivery(d.ID)
	require.Equal(t, statusDelivered, got.Status)
	require.Equal(t, 1, got.Attempts)
}

// Every sealed field of the outbox's rows is in sealing.Columns, so key rotation
// re-encrypts it.
func TestOutboxSealedColumnsAreListed(t *testing.T) {
	t.Parallel()
	listed := map[string]bool{}
	for _, c := range sealing.Columns {
		listed[c.Table+"."+c.Name] = true
	}
	cache := &sync.Map{}
	n := 0
	for _, m := range []any{&endpointRow{}, &messageRow{}, &deliveryRow{}, &attemptRow{}} {
		s, err := schema.Parse(m, cache, schema.NamingStrategy{})
		require.NoError(t, err)
		for _, f := range s.Fields {
			if f.TagSettings["SERIALIZER"] == sealing.SerializerName {
				n++
				require.True(t, listed[s.Table+"."+f.DBName], "%s.%s is sealed but not in sealing.Columns", s.Table, f.DBName)
			}
		}
	}
	require.Equal(t, 3, n)
}

// TestAFactCommittedBeforeACrashIsDeliveredByTheNextProcess commits a fact while
// no worker runs (the process dies right after the commit, before any delivery),
// then starts the queue as the next process does, on the same database: the
// message is delivered once, signed, because its job committed with the fact.
func TestAFactCommittedBeforeACrashIsDeliveredByTheNextProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	ep, secret := e.endpoint(r.srv.URL+"/in", EventPaymentSucceeded)
	e.publish(uuid.NewString())
	require.Empty(t, r.requests(), "nothing is sent before a worker runs")

	workers := river.NewWorkers()
	river.AddWorker(workers, river.Worker[DeliverArgs](e.worker(r)))
	client, err := jobs.NewClient(e.db, workers, jobs.Config{PollInterval: 20 * time.Millisecond}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { _ = jobs.Stop(client, 5*time.Second) })

	require.Eventually(t, func() bool { return e.deliveries(ep)[0].Status == statusDelivered }, 30*time.Second, 20*time.Millisecond)
	reqs := r.requests()
	require.Len(t, reqs, 1)
	require.Equal(t, e.deliveries(ep)[0].MessageID, reqs[0].header.Get("webhook-id"))
	require.True(t, verify(t, secret, reqs[0].header, reqs[0].body))
}

// Redelivering a delivery whose job waits for its next retry brings that job
// forward: one job, due now, however often it is asked (a second job would run a
// second retry chain against the receiver).
func TestRedeliverOfAPendingDeliveryBringsItsJobForward(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 500)
	ep, _ := e.endpoint(r.srv.URL, AllEvents)
	e.publish(uuid.NewString())
	d := e.deliveries(ep)[0]
	const jobsOf = `SELECT count(*) FROM river_job WHERE kind = 'outbox_deliver' AND args->>'deliveryId' = ?
		AND state NOT IN ('completed', 'discarded', 'cancelled')`
	const dueNow = jobsOf + ` AND state = 'available' AND scheduled_at <= now()`
	require.NoError(t, e.db.Exec(`UPDATE river_job SET state = 'retryable', attempt = 3, scheduled_at = now() + interval '10 hours'
		WHERE args->>'deliveryId' = ?`, d.ID).Error)
	for range 3 {
		_, err := e.svc.Redeliver(context.Background(), staff, models.RedeliverWebhookInput{DeliveryID: d.ID, Reason: "the 3PL is back"})
		require.NoError(t, err)
	}
	var n, due int64
	require.NoError(t, e.db.Raw(jobsOf, d.ID).Scan(&n).Error)
	require.NoError(t, e.db.Raw(dueNow, d.ID).Scan(&due).Error)
	require.EqualValues(t, 1, n, "one job per delivery")
	require.EqualValues(t, 1, due, "the waiting job is due now")
}

// Look-alike spellings of internal addresses are refused in production: IPv4
// embedded in IPv6 (mapped, the deprecated IPv4-compatible form, NAT64, 6to4), a
// zone id, shared and reserved ranges, and names (numeric or with a trailing dot)
// that resolve to loopback.
func TestProductionRefusesLookalikeInternalTargets(t *testing.T) {
	t.Parallel()
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "localhost.", "2130706433", "0x7f.1", "017700000001":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	prod := Targets{Production: true, lookup: lookup}
	for _, u := range []string{
		"https://[::ffff:10.0.0.1]/in",
		"https://[::ffff:169.254.169.254]/in",
		"https://[::127.0.0.1]/in",
		"https://[::10.0.0.1]/in",
		"https://[::169.254.169.254]/in",
		"https://[64:ff9b::10.0.0.1]/in",
		"https://[2002:a00:1::1]/in",
		"https://[fe80::1%25eth0]/in",
		"https://[fc00::1]/in",
		"https://100.64.0.1/in",
		"https://255.255.255.255/in",
		"https://localhost./in",
		"https://2130706433/in",
		"https://0x7f.1/in",
		"https://017700000001/in",
		"https://good.example@169.254.169.254/in",
	} {
		require.ErrorIs(t, prod.Check(context.Background(), u), ErrTargetRefused, u)
	}
	for _, a := range []string{"::127.0.0.1", "::10.0.0.1", "::ffff:127.0.0.1"} {
		require.False(t, prod.allowed(netip.MustParseAddr(a)), "the dialler refuses %s", a)
	}
}

// TestEndpointsReadOnceDeliverAsEachReadWould checks that messages published under
// WithEndpointsReadOnce go to exactly the endpoints a read per message type finds:
// subscribed to the type or to every type, and enabled.
func TestEndpointsReadOnceDeliverAsEachReadWould(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	all, _ := e.endpoint("https://all.example/in", AllEvents)
	paid, _ := e.endpoint("https://paid.example/in", EventPaymentSucceeded)
	lookalike, _ := e.endpoint("https://refunds.example/in", EventPaymentRefunded, EventShipmentCreated)
	off, _ := e.endpoint("https://off.example/in", AllEvents)
	require.NoError(t, e.db.Exec(`UPDATE webhook_endpoints SET enabled = false WHERE id = ?`, off).Error)
	for _, once := range []bool{false, true} {
		ctx := context.Background()
		if once {
			ctx = WithEndpointsReadOnce(ctx)
		}
		require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
			for _, typ := range []string{EventPaymentSucceeded, EventSubscriptionUpdated} {
				if err := Publish(ctx, tx, typ, uuid.NewString(), "", map[string]string{}); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	require.Len(t, e.deliveries(all), 4)
	require.Len(t, e.deliveries(paid), 2)
	require.Empty(t, e.deliveries(lookalike))
	require.Empty(t, e.deliveries(off))
}

// writesKey marks a context whose writes countWrites counts.
type writesKey struct{}

// countWrites registers, on db, callbacks that count every write statement run
// under a context carrying a *atomic.Int32 under writesKey.
func countWrites(t *testing.T, db *gorm.DB) {
	t.Helper()
	count := func(tx *gorm.DB) {
		if n, ok := tx.Statement.Context.Value(writesKey{}).(*atomic.Int32); ok {
			n.Add(1)
		}
	}
	cb := db.Callback()
	require.NoError(t, cb.Create().After("gorm:create").Register("test:count_create", count))
	require.NoError(t, cb.Update().After("gorm:update").Register("test:count_update", count))
	require.NoError(t, cb.Delete().After("gorm:delete").Register("test:count_delete", count))
	require.NoError(t, cb.Raw().After("gorm:raw").Register("test:count_raw", count))
}

// A success is recorded by one statement (issue 18): the attempt, the delivery
// DELIVERED and the endpoint's failing time cleared, all or nothing, as the
// transaction of a failure records it.
func TestASuccessIsRecordedByOneStatement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	ep, _, d := e.firstDelivery(r.srv.URL+"/in", EventPaymentSucceeded)
	require.NoError(t, e.db.Model(&endpointRow{}).Where("id = ?", ep).Update("failing_since", time.Now().Add(-time.Hour)).Error)
	countWrites(t, e.db)
	w := e.worker(r)

	writes := &atomic.Int32{}
	require.NoError(t, w.Work(context.WithValue(context.Background(), writesKey{}, writes), job(d.ID, 1)))
	require.EqualValues(t, 1, writes.Load(), "write statements of one success")
	got := e.delivery(d.ID)
	require.Equal(t, statusDelivered, got.Status)
	require.Equal(t, 1, got.Attempts)
	require.Equal(t, 204, *got.LastStatusCode)
	require.NotNil(t, got.DeliveredAt)
	require.Nil(t, got.NextAttemptAt)
	var attempts []attemptRow
	require.NoError(t, e.db.Where("delivery_id = ?", d.ID).Find(&attempts).Error)
	require.Len(t, attempts, 1)
	require.Equal(t, 204, *attempts[0].StatusCode)
	require.Nil(t, attempts[0].Error)
	var row endpointRow
	require.NoError(t, e.db.Take(&row, "id = ?", ep).Error)
	require.Nil(t, row.FailingSince, "a success ends the failing time")

	// Run again, the job finds the delivery done and writes nothing.
	writes.Store(0)
	require.NoError(t, w.Work(context.WithValue(context.Background(), writesKey{}, writes), job(d.ID, 2)))
	require.Zero(t, writes.Load())
	require.Len(t, r.requests(), 1)
}

// heldReceiver answers its first `fast` requests at once and holds every later one
// until release is closed (at cleanup at the latest); arrived counts the requests.
func heldReceiver(t *testing.T, fast int64) (srv *httptest.Server, arrived *atomic.Int64, release func()) {
	arrived = &atomic.Int64{}
	held := make(chan struct{})
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) > fast {
			<-held
		}
		w.WriteHeader(204)
	}))
	release = sync.OnceFunc(func() { close(held) })
	t.Cleanup(srv.Close)
	t.Cleanup(release)
	return srv, arrived, release
}

// An endpoint that answers fast and has its share: its next delivery waits for a
// slot and is sent once one frees, instead of being snoozed for seconds.
func TestAFastEndpointsNextDeliveryWaitsForASlot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv, arrived, release := heldReceiver(t, 1)
	ep, _ := e.endpoint(srv.URL, EventPaymentSucceeded)
	for range maxInFlight + 2 {
		e.publish(uuid.NewString())
	}
	ds := e.deliveries(ep)
	tg := e.targets
	tg.RootCAs = poolOf(srv)
	w := NewDeliverWorker(e.db, tg, func() time.Time { return e.now }, nil)
	w.wait = time.Minute // the test releases the slots, not a deadline
	waiting := make(chan struct{}, 1)
	w.waiting = func() { waiting <- struct{}{} }

	require.NoError(t, w.Work(context.Background(), job(ds[0].ID, 1)), "answered at once: the endpoint is fast")
	var wg sync.WaitGroup
	for _, d := range ds[1 : maxInFlight+1] {
		wg.Go(func() { assert.NoError(t, w.Work(context.Background(), job(d.ID, 1))) })
	}
	require.Eventually(t, func() bool { return arrived.Load() == maxInFlight+1 }, 10*time.Second, 5*time.Millisecond)
	result := make(chan error, 1)
	go func() { result <- w.Work(context.Background(), job(ds[maxInFlight+1].ID, 1)) }()
	select {
	case <-waiting:
	case err := <-result:
		t.Fatalf("the delivery did not wait for a slot: %v", err)
	}
	release()
	require.NoError(t, <-result)
	wg.Wait()
	for _, d := range ds {
		require.Equal(t, statusDelivered, e.delivery(d.ID).Status)
	}
	require.EqualValues(t, maxInFlight+2, arrived.Load())
}

// The attacker's endpoint answers fast at first, then holds every request. Its
// attempts hold their workers, but no more than its share: its other deliveries
// are snoozed, not left waiting for a slot, and the queue's other workers deliver
// the other endpoint's messages meanwhile, however long waits may be.
func TestASlowEndpointNextToAFastOneLeavesTheOtherWorkersFree(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	slow, arrived, release := heldReceiver(t, 1)
	fast := newReceiver(t, 204)
	slowID, _ := e.endpoint(slow.URL, EventPaymentSucceeded)
	for range 2*maxInFlight + 1 {
		e.publish(uuid.NewString())
	}
	fastID, _ := e.endpoint(fast.srv.URL, EventPaymentSucceeded)
	for range 2 * maxInFlight {
		e.publish(uuid.NewString()) // to both endpoints
	}
	pool := newPool()
	pool.AddCert(slow.Certificate())
	pool.AddCert(fast.srv.Certificate())
	tg := e.targets
	tg.RootCAs = pool
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	w := NewDeliverWorker(e.db, tg, func() time.Time { return time.Unix(0, clock.Load()) }, nil)
	w.wait = time.Hour // only the endpoint's slowness may end a wait

	toSlow, toFast := e.deliveries(slowID), e.deliveries(fastID)
	require.NoError(t, w.Work(context.Background(), job(toSlow[0].ID, 1)), "answered at once: the endpoint looks fast")
	// Its next attempts are held, and have been for longer than a fast answer.
	var held sync.WaitGroup
	for _, d := range toSlow[1 : maxInFlight+1] {
		held.Go(func() { _ = w.Work(context.Background(), job(d.ID, 1)) })
	}
	require.Eventually(t, func() bool { return arrived.Load() == maxInFlight+1 }, 10*time.Second, 5*time.Millisecond)
	clock.Add(int64(fastAnswer))

	// Two workers left, the queue alternating between the endpoints.
	queue := make(chan deliveryRow, len(toSlow)+len(toFast))
	for i := range max(len(toSlow), len(toFast)) {
		if j := maxInFlight + 1 + i; j < len(toSlow) {
			queue <- toSlow[j]
		}
		if i < len(toFast) {
			queue <- toFast[i]
		}
	}
	close(queue)
	var snoozed atomic.Int64
	var workers sync.WaitGroup
	for range 2 {
		workers.Go(func() {
			for d := range queue {
				err := w.Work(context.Background(), job(d.ID, 1))
				var snooze *rivertype.JobSnoozeError
				if errors.As(err, &snooze) {
					snoozed.Add(1)
					continue
				}
				assert.NoError(t, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the slow endpoint's deliveries hold the other workers")
	}
	for _, d := range toFast {
		require.Equal(t, statusDelivered, e.delivery(d.ID).Status)
	}
	require.EqualValues(t, len(toSlow)-maxInFlight-1, snoozed.Load(), "each of the slow endpoint's other deliveries snoozed")
	require.EqualValues(t, maxInFlight+1, arrived.Load())
	release()
	held.Wait()
}

// readsKey marks a context whose reads countReads counts.
type readsKey struct{}

// countReads registers, on db, callbacks that count every read statement (a model
// query or a raw row read) run under a context carrying a *atomic.Int32 under
// readsKey.
func countReads(t *testing.T, db *gorm.DB) {
	t.Helper()
	count := func(tx *gorm.DB) {
		if n, ok := tx.Statement.Context.Value(readsKey{}).(*atomic.Int32); ok {
			n.Add(1)
		}
	}
	cb := db.Callback()
	require.NoError(t, cb.Query().After("gorm:query").Register("test:count_query", count))
	require.NoError(t, cb.Row().After("gorm:row").Register("test:count_row", count))
}

// An attempt reads its delivery, the endpoint and the message in one statement
// (issue 18), and signs and sends what each row holds: the payload and the secret
// opened from their seals.
func TestADeliveryReadsItsRowsInOneStatement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	_, _, d := e.firstDelivery(r.srv.URL+"/in", EventPaymentSucceeded)
	countReads(t, e.db)
	w := e.worker(r)

	reads := &atomic.Int32{}
	require.NoError(t, w.Work(context.WithValue(context.Background(), readsKey{}, reads), job(d.ID, 1)))
	require.EqualValues(t, 1, reads.Load(), "read statements of one attempt")
	require.Equal(t, statusDelivered, e.delivery(d.ID).Status)
	require.Len(t, r.requests(), 1)
}
