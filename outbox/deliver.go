package outbox

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/sealing"
	"github.com/scoville/scoville/tracing"
)

// RetrySchedule is the wait after each failed attempt (API.md); after the last
// the delivery is FAILED.
var RetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Delivery bounds.
const (
	// AttemptTimeout bounds one attempt: connection, request and answer.
	AttemptTimeout = 15 * time.Second
	// FailingFor is how long an endpoint fails every attempt before it is disabled.
	FailingFor = 5 * 24 * time.Hour
	// maxResponseBody is as much of an answer as is read.
	maxResponseBody = 4 << 10
	// maxInFlight bounds one endpoint's attempts waiting for its answer at once in
	// a process, so a slow endpoint holds at most that many of the queue's workers.
	maxInFlight = 3
	// fastAnswer: an endpoint whose recent answers (in this process) came sooner,
	// and none of whose attempts has waited longer, answers fast. A delivery to a
	// fast endpoint that has its share waits for a slot, at most slotWait, beside at
	// most maxWaiting others, instead of being snoozed: a slot frees within about an
	// answer's time. Any other endpoint's delivery is snoozed at once, so a slow
	// endpoint (or one turning slow) holds at most maxInFlight workers, and a fast
	// one at most maxInFlight + maxWaiting, each for about an answer's time.
	fastAnswer = 50 * time.Millisecond
	slotWait   = fastAnswer
	maxWaiting = maxInFlight
	// maxErrorLen bounds a recorded error.
	maxErrorLen = 200
)

// DeliverArgs is the job that sends one delivery.
type DeliverArgs struct {
	DeliveryID string `json:"deliveryId"`
}

// Kind names the job.
func (DeliverArgs) Kind() string { return "outbox_deliver" }

// DeliverWorker sends deliveries. One attempt is bounded by AttemptTimeout, which
// is longer than the queue's default job timeout: register it wrapped in
// jobs.Leased. A second run of a job is safe: a delivery no longer PENDING is not
// sent again, and one whose answer was not recorded is sent again with the same
// webhook-id, which receivers dedupe on.
type DeliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	db      *gorm.DB
	targets Targets
	client  *http.Client
	now     func() time.Time
	logger  *slog.Logger

	mu     sync.Mutex
	shares map[string]*share // by endpoint id

	// afterSend, in tests, runs between the receiver's answer and its recording
	// (a crash there).
	afterSend func()
	// waiting, in tests, runs when a delivery starts to wait for a slot; wait,
	// when set, bounds that wait instead of slotWait.
	waiting func()
	wait    time.Duration
}

// share is one endpoint's part of the queue's workers in this process.
type share struct {
	sending  []time.Time   // when each attempt waiting for its answer began, oldest first
	waiting  int           // deliveries waiting for a slot
	answered bool          // answer holds something
	answer   time.Duration // recent answer time, a moving average
	freed    chan struct{} // nil, or closed when a slot frees
}

// fast reports whether the endpoint answers fast (fastAnswer) at now.
func (s *share) fast(now time.Time) bool {
	return s.answered && s.answer < fastAnswer && (len(s.sending) == 0 || now.Sub(s.sending[0]) < fastAnswer)
}

// NewDeliverWorker builds the worker; now is the clock (nil: time.Now) that picks
// the secrets in force, and a nil logger discards log lines.
func NewDeliverWorker(db *gorm.DB, targets Targets, now func() time.Time, logger *slog.Logger) *DeliverWorker {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DeliverWorker{db: db, targets: targets, client: targets.client(AttemptTimeout), now: now, logger: logger,
		shares: map[string]*share{}}
}

// Timeout bounds an attempt: the request and recording its answer.
func (w *DeliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return AttemptTimeout + 5*time.Second
}

// NextRetry follows RetrySchedule.
func (w *DeliverWorker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	return time.Now().Add(retryAfter(job.Attempt))
}

// retryAfter is the wait after failed attempt n (from 1).
func retryAfter(n int) time.Duration {
	return RetrySchedule[min(max(n, 1), len(RetrySchedule))-1]
}

// acquire takes a slot of the endpoint's share and returns when the attempt
// began, or, when none is free (and the endpoint is not fast enough to wait
// for one), how long to snooze the delivery.
func (w *DeliverWorker) acquire(ctx context.Context, endpointID string) (began time.Time, snooze time.Duration) {
	w.mu.Lock()
	s := w.shares[endpointID]
	if s == nil {
		s = &share{}
		w.shares[endpointID] = s
	}
	var timer *time.Timer
	for {
		now := w.now()
		if len(s.sending) < maxInFlight {
			if timer != nil {
				s.waiting--
				timer.Stop()
			}
			s.sending = append(s.sending, now)
			w.mu.Unlock()
			return now, 0
		}
		fast := s.fast(now)
		if timer == nil && (!fast || s.waiting >= maxWaiting) {
			w.mu.Unlock()
			return time.Time{}, snoozeFor(fast)
		}
		started := timer == nil
		if started {
			s.waiting++
			timer = time.NewTimer(cmp.Or(w.wait, slotWait))
		} else if !fast {
			s.waiting--
			w.mu.Unlock()
			timer.Stop()
			return time.Time{}, snoozeFor(false)
		}
		if s.freed == nil {
			s.freed = make(chan struct{})
		}
		freed := s.freed
		w.mu.Unlock()
		if started && w.waiting != nil {
			w.waiting()
		}
		select {
		case <-freed:
			w.mu.Lock()
		case <-timer.C:
			w.mu.Lock()
			s.waiting--
			fast = s.fast(w.now())
			w.mu.Unlock()
			return time.Time{}, snoozeFor(fast)
		case <-ctx.Done():
			w.mu.Lock()
			s.waiting--
			w.mu.Unlock()
			timer.Stop()
			return time.Time{}, snoozeFor(false)
		}
	}
}

// snoozeFor is how long a delivery that found its endpoint's share taken waits:
// briefly when the endpoint answers fast (its slots free soon), else 1 to 3 s.
func snoozeFor(fast bool) time.Duration {
	if fast {
		return 100*time.Millisecond + rand.N(200*time.Millisecond)
	}
	return time.Second + rand.N(2*time.Second)
}

// release gives back the slot of the attempt that began then, now that its
// answer (or its error) is in, and wakes the deliveries waiting for it.
func (w *DeliverWorker) release(endpointID string, began time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.shares[endpointID]
	took := w.now().Sub(began)
	if i := slices.Index(s.sending, began); i >= 0 {
		s.sending = slices.Delete(s.sending, i, i+1)
	}
	if s.answered {
		s.answer = (3*s.answer + took) / 4
	} else {
		s.answer, s.answered = took, true
	}
	if s.freed != nil {
		close(s.freed)
		s.freed = nil
	}
}

// errReceiver is a failed attempt River retries.
var errReceiver = errors.New("outbox: delivery attempt failed")

// Work makes one attempt of the delivery and records it.
func (w *DeliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	if uuid.Validate(job.Args.DeliveryID) != nil {
		return river.JobCancel(errors.New("outbox: job has no valid delivery id"))
	}
	var (
		d   deliveryRow
		ep  endpointRow
		msg messageRow
	)
	if err := w.read(ctx, job.Args.DeliveryID, &d, &ep, &msg); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	}
	if d.Status != statusPending {
		return nil
	}
	if !ep.Enabled {
		return w.record(ctx, job, &d, &ep, &msg, attempt{err: "endpoint disabled", skipped: true})
	}
	began, snooze := w.acquire(ctx, ep.ID)
	if snooze > 0 {
		// This endpoint has its share of the workers: come back later rather than
		// hold one of the other endpoints' (a snooze counts no attempt).
		return river.JobSnooze(snooze)
	}
	// The share bounds attempts waiting on the endpoint: it is given back once the
	// answer is in, not held while the answer is recorded.
	a := func() attempt {
		defer w.release(ep.ID, began)
		return w.send(ctx, &ep, &msg)
	}()
	if w.afterSend != nil {
		w.afterSend()
	}
	return w.record(ctx, job, &d, &ep, &msg, a)
}

// read reads the delivery id with its endpoint and its message, in one statement.
// The sealed columns (the endpoint's secrets, the message's payload) are opened
// each for its own row, as the models' sealed fields open them.
func (w *DeliverWorker) read(ctx context.Context, id string, d *deliveryRow, ep *endpointRow, msg *messageRow) error {
	var (
		eventTypes               []byte
		secret, previous, sealed []byte
	)
	err := w.db.WithContext(ctx).Raw(`SELECT d.id, d.message_id, d.endpoint_id, d.status, d.attempts, d.last_status_code,
			d.last_error, d.next_attempt_at, d.delivered_at, d.created_at, d.updated_at,
			e.id, e.url, e.description, e.event_types, e.enabled, e.disabled_reason, e.secret, e.previous_secret,
			e.previous_secret_expires_at, e.failing_since, e.created_at, e.updated_at,
			m.id, m.event_type, m.customer_id, m.payload, m.created_at
		FROM webhook_deliveries d
		JOIN webhook_endpoints e ON e.id = d.endpoint_id
		JOIN webhook_messages m ON m.id = d.message_id
		WHERE d.id = ?`, id).Row().Scan(
		&d.ID, &d.MessageID, &d.EndpointID, &d.Status, &d.Attempts, &d.LastStatusCode,
		&d.LastError, &d.NextAttemptAt, &d.DeliveredAt, &d.CreatedAt, &d.UpdatedAt,
		&ep.ID, &ep.URL, &ep.Description, &eventTypes, &ep.Enabled, &ep.DisabledReason, &secret, &previous,
		&ep.PreviousSecretExpiresAt, &ep.FailingSince, &ep.CreatedAt, &ep.UpdatedAt,
		&msg.ID, &msg.EventType, &msg.CustomerID, &sealed, &msg.CreatedAt)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return fmt.Errorf("outbox: read delivery: %w", err)
	}
	if err := json.Unmarshal(eventTypes, &ep.EventTypes); err != nil {
		return fmt.Errorf("outbox: read endpoint: event types: %w", err)
	}
	open := func(table, column, rowID string, b []byte) ([]byte, error) {
		if len(b) == 0 {
			return nil, nil // NULL, or emptied by an erasure: nothing to open
		}
		return sealing.OpenColumn(w.db, table, column, rowID, b)
	}
	s, err := open(endpointRow{}.TableName(), "secret", ep.ID, secret)
	if err != nil {
		return fmt.Errorf("outbox: read endpoint: %w", err)
	}
	ep.Secret = string(s)
	if p, err := open(endpointRow{}.TableName(), "previous_secret", ep.ID, previous); err != nil {
		return fmt.Errorf("outbox: read endpoint: %w", err)
	} else if p != nil {
		prev := string(p)
		ep.PreviousSecret = &prev
	}
	if msg.Payload, err = open(messageRow{}.TableName(), "payload", msg.ID, sealed); err != nil {
		return fmt.Errorf("outbox: read message: %w", err)
	}
	return nil
}

// attempt is what one try gave.
type attempt struct {
	code     *int
	err      string
	duration time.Duration
	skipped  bool // not sent (the endpoint is disabled)
}

func (a attempt) ok() bool { return a.code != nil && *a.code >= 200 && *a.code < 300 && a.err == "" }

// send posts the message, signed with every secret in force.
func (w *DeliverWorker) send(ctx context.Context, ep *endpointRow, msg *messageRow) attempt {
	now := w.now()
	secrets := []string{ep.Secret}
	if ep.PreviousSecret != nil && ep.PreviousSecretExpiresAt != nil && now.Before(*ep.PreviousSecretExpiresAt) {
		secrets = append(secrets, *ep.PreviousSecret)
	}
	ts := now.Unix()
	sig, err := signatures(secrets, msg.ID, ts, msg.Payload)
	if err != nil {
		return attempt{err: "endpoint secret unusable"}
	}
	if _, err := w.targets.parse(ep.URL); err != nil {
		return attempt{err: "target refused: the URL is not allowed"}
	}
	ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(msg.Payload))
	if err != nil {
		return attempt{err: "target refused: the URL is not allowed"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Scoville-Webhooks/1")
	req.Header.Set("webhook-id", msg.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	// The delivery job's trace context, when traces are on: the receiver can join
	// its own spans to this attempt.
	tracing.Inject(req)
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		a := attempt{err: shortError(err), duration: time.Since(start)}
		attemptSeconds.WithLabelValues("error").Observe(a.duration.Seconds())
		return a
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	_ = resp.Body.Close()
	a := attempt{code: &resp.StatusCode, duration: time.Since(start)}
	if !a.ok() {
		a.err = "receiver answered " + strconv.Itoa(resp.StatusCode)
	}
	attemptSeconds.WithLabelValues(strconv.Itoa(resp.StatusCode/100) + "xx").Observe(a.duration.Seconds())
	return a
}

// record stores the attempt and what follows from it: the delivery DELIVERED,
// PENDING for its next try, or FAILED after the last; the endpoint's failing time,
// and the endpoint disabled on 410 Gone or after failing for FailingFor. It returns
// the error that makes River retry the job, or nil.
func (w *DeliverWorker) record(ctx context.Context, job *river.Job[DeliverArgs], d *deliveryRow, ep *endpointRow, msg *messageRow, a attempt) error {
	now := time.Now()
	gone := a.code != nil && *a.code == http.StatusGone
	final := a.skipped || gone || !a.ok() && job.Attempt > len(RetrySchedule)
	var disable string
	var err error
	if a.ok() {
		err = w.recordDelivered(ctx, d, ep, a, now)
	} else {
		err = w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if !a.skipped {
				row := attemptRow{DeliveryID: d.ID, StatusCode: a.code, DurationMS: int(a.duration.Milliseconds())}
				if a.err != "" {
					e := truncate(a.err, maxErrorLen)
					row.Error = &e
				}
				if err := tx.Create(&row).Error; err != nil {
					return err
				}
			}
			set := map[string]any{"updated_at": now}
			if !a.skipped {
				set["attempts"] = gorm.Expr("attempts + 1")
				set["last_status_code"] = a.code
			}
			switch {
			case final:
				set["status"], set["next_attempt_at"], set["last_error"] = statusFailed, nil, truncate(a.err, maxErrorLen)
			default:
				set["next_attempt_at"], set["last_error"] = now.Add(retryAfter(job.Attempt)), truncate(a.err, maxErrorLen)
			}
			res := tx.Model(&deliveryRow{}).Where("id = ? AND status = ?", d.ID, statusPending).Updates(set)
			if res.Error != nil {
				return res.Error
			}
			if a.skipped {
				return nil
			}
			var cur endpointRow
			if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Select("id", "enabled", "failing_since").Take(&cur, "id = ?", ep.ID).Error; err != nil {
				return err
			}
			upd := map[string]any{}
			switch {
			case gone:
				disable = "gone"
				upd["enabled"], upd["disabled_reason"] = false, "the receiver answered 410 Gone"
			default:
				if cur.FailingSince == nil {
					upd["failing_since"] = now
				} else if now.Sub(*cur.FailingSince) >= FailingFor && cur.Enabled {
					disable = "failing"
					upd["enabled"], upd["disabled_reason"] = false, "every attempt failed since "+cur.FailingSince.UTC().Format(time.RFC3339)
				}
			}
			if disable != "" && !cur.Enabled {
				disable = ""
				delete(upd, "enabled")
				delete(upd, "disabled_reason")
			}
			if len(upd) == 0 {
				return nil
			}
			upd["updated_at"] = now
			return tx.Model(&endpointRow{}).Where("id = ?", ep.ID).Updates(upd).Error
		})
	}
	if err != nil {
		return fmt.Errorf("outbox: record attempt: %w", err)
	}
	switch {
	case a.ok():
		outcomes.WithLabelValues(msg.EventType, "delivered").Inc()
		deliveryLatency.Observe(now.Sub(msg.CreatedAt).Seconds())
	case a.skipped:
		outcomes.WithLabelValues(msg.EventType, "skipped").Inc()
	case final:
		outcomes.WithLabelValues(msg.EventType, "failed").Inc()
		w.logger.WarnContext(ctx, "webhook delivery failed for good", "alert", "webhook_delivery_failed",
			"delivery_id", d.ID, "endpoint_id", ep.ID, "error", a.err)
	default:
		outcomes.WithLabelValues(msg.EventType, "retry").Inc()
	}
	if disable != "" {
		endpointsDisabled.WithLabelValues(disable).Inc()
		w.logger.WarnContext(ctx, "webhook endpoint disabled", "alert", "webhook_endpoint_disabled", "endpoint_id", ep.ID, "reason", disable)
	}
	if !a.ok() && !final {
		return fmt.Errorf("%w: %s", errReceiver, a.err)
	}
	return nil
}

// recordDelivered is record of a success, in one statement (as atomic as a
// transaction, and a round trip each for its begin, three writes and commit
// fewer): the attempt, the delivery DELIVERED if it was still PENDING, and the
// endpoint's failing time cleared. A success only clears a failing time, so it
// locks the endpoint only when there is one: every delivery to one endpoint
// locking its row made them commit one after the other. A failure committed
// meanwhile is ordered after this success, as the lock would have ordered it.
func (w *DeliverWorker) recordDelivered(ctx context.Context, d *deliveryRow, ep *endpointRow, a attempt, now time.Time) error {
	return w.db.WithContext(ctx).Exec(`WITH attempt AS (
			INSERT INTO webhook_delivery_attempts (delivery_id, status_code, duration_ms, created_at) VALUES (?, ?, ?, ?)
		), endpoint AS (
			UPDATE webhook_endpoints SET failing_since = NULL, updated_at = ? WHERE id = ? AND failing_since IS NOT NULL
		)
		UPDATE webhook_deliveries SET attempts = attempts + 1, last_status_code = ?, status = ?, delivered_at = ?,
			next_attempt_at = NULL, last_error = NULL, updated_at = ?
		WHERE id = ? AND status = ?`,
		d.ID, a.code, int(a.duration.Milliseconds()), now, now, ep.ID, a.code, statusDelivered, now, now, d.ID, statusPending).Error
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
