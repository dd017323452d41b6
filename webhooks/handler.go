// Package webhooks owns Stripe's side route: it verifies each delivery on the raw
// bytes, stores the event once by its id together with the job that will apply it,
// answers, and later applies it from the durable queue. Stripe, not the browser, is
// the source of truth (PAY-3); this is the door it comes in through.
package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
	"gorm.io/gorm"

	"github.com/scoville/scoville/jobs"
)

// MaxBody is the largest delivery accepted; Stripe's events are far smaller.
const MaxBody = 1 << 20

// Tolerance is how old a signature's timestamp may be: older deliveries are
// treated as replays.
const Tolerance = 300 * time.Second

// APIVersion is the only event shape this build understands: stripe-go v76's.
// Stripe renders an event in the API version of the endpoint, so the endpoint must
// be created with this version (README); an event in another shape is refused
// rather than misread, and Stripe keeps redelivering it until that is fixed.
const APIVersion = stripe.APIVersion

// Handler is POST /webhooks/stripe.
type Handler struct {
	db      *gorm.DB
	queue   *jobs.Client
	secret  string
	metrics *Metrics
	logger  *slog.Logger
	now     func() time.Time
}

// NewHandler builds the route. secret is the endpoint's signing secret (whsec_...).
func NewHandler(db *gorm.DB, queue *jobs.Client, secret string, metrics *Metrics, logger *slog.Logger) *Handler {
	return &Handler{db: db, queue: queue, secret: secret, metrics: metrics, logger: logger, now: time.Now}
}

// envelope is the part of an event the route reads; the worker reads the rest.
type envelope struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"`
	Livemode   bool   `json:"livemode"`
	Data       struct {
		Object struct {
			ID string `json:"id"`
		} `json:"object"`
	} `json:"data"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.secret == "" {
		// An empty key would make any sender's HMAC valid: accept nothing.
		h.logger.ErrorContext(r.Context(), "webhook refused: STRIPE_WEBHOOK_SECRET is not set")
		writeJSON(w, http.StatusServiceUnavailable, `{"error":"not configured"}`)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		h.reject(w, r, http.StatusRequestEntityTooLarge, "too_large")
		return
	}
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, "unreadable")
		return
	}
	if err := webhook.ValidatePayloadWithTolerance(body, r.Header.Get("Stripe-Signature"), h.secret, Tolerance); err != nil {
		h.reject(w, r, http.StatusBadRequest, signatureReason(err))
		return
	}
	var ev envelope
	if err := json.Unmarshal(body, &ev); err != nil || ev.Object != "event" || ev.ID == "" || ev.Type == "" || ev.Created <= 0 ||
		len(ev.ID) > 255 || len(ev.Type) > 100 || len(ev.Data.Object.ID) > 255 || len(ev.APIVersion) > 40 {
		h.reject(w, r, http.StatusBadRequest, "malformed")
		return
	}
	if ev.APIVersion != APIVersion {
		h.reject(w, r, http.StatusBadRequest, "api_version")
		return
	}
	inserted, err := h.store(r.Context(), ev, body)
	if err != nil {
		h.metrics.received.WithLabelValues(typeLabel(ev.Type), "unavailable").Inc()
		h.logger.ErrorContext(r.Context(), "webhook not stored; Stripe will redeliver", "event_id", ev.ID, "event_type", ev.Type,
			"error", err.Error())
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, `{"error":"temporarily unavailable"}`)
		return
	}
	outcome := "stored"
	if !inserted {
		outcome = "duplicate"
	}
	h.metrics.received.WithLabelValues(typeLabel(ev.Type), outcome).Inc()
	h.logger.InfoContext(r.Context(), "webhook received", "event_id", ev.ID, "event_type", ev.Type, "outcome", outcome)
	writeJSON(w, http.StatusOK, `{"received":true}`)
}

// store writes the event and its job in one transaction: ON CONFLICT on the event id
// makes a repeat a no-op, and the job exists exactly when the event does.
func (h *Handler) store(ctx context.Context, ev envelope, body []byte) (bool, error) {
	inserted := false
	err := h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var objectID *string
		if ev.Data.Object.ID != "" {
			objectID = &ev.Data.Object.ID
		}
		var id string
		res := tx.Raw(`INSERT INTO webhook_events (provider_event_id, type, api_version, livemode, object_id, event_created, payload)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider_event_id) DO NOTHING RETURNING id`,
			ev.ID, ev.Type, ev.APIVersion, ev.Livemode, objectID, time.Unix(ev.Created, 0).UTC(), body).Scan(&id)
		if res.Error != nil {
			return res.Error
		}
		if id == "" {
			return nil
		}
		inserted = true
		sqlTx, err := jobs.SQLTx(tx)
		if err != nil {
			return err
		}
		_, err = h.queue.InsertTx(ctx, sqlTx, ProcessArgs{EventID: id}, nil)
		return err
	})
	return inserted, err
}

// reject answers a delivery that cannot be trusted or read. Nothing is stored, and
// the body is never logged: it is unverified input.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, status int, reason string) {
	h.metrics.rejected.WithLabelValues(reason).Inc()
	h.logger.WarnContext(r.Context(), "webhook rejected", "suspicious", true, "reason", reason, "status", status,
		"remote_addr", r.RemoteAddr, "content_length", r.ContentLength)
	writeJSON(w, status, `{"error":"`+reason+`"}`)
}

func signatureReason(err error) string {
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		return "missing_signature"
	case errors.Is(err, webhook.ErrInvalidHeader):
		return "malformed_signature"
	case errors.Is(err, webhook.ErrTooOld):
		return "stale_timestamp"
	}
	return "bad_signature"
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
