// Package webhooks owns Stripe's side route: it verifies each delivery on the raw
// bytes, stores the event once by its id together with the job that will apply it,
// answers, and later applies it from the durable queue. Stripe, not the browser, is
// the source of truth (PAY-3); this is the door it comes in through.
package webhooks

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
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
// be created with this version (docs/stripe.md); an event in another shape is refused
// rather than misread, and Stripe keeps redelivering it until that is fixed.
const APIVersion = stripe.APIVersion

// maxCreated is the latest creation time accepted (9999-12-31T23:59:59Z): a later
// one is not a real event, and PostgreSQL could not store it, which would fail every
// other delivery of its batch.
const maxCreated = 253402300799

// hasNUL reports a NUL character, which PostgreSQL text cannot hold: such an event
// would fail every other delivery of its batch.
func hasNUL(fields ...string) bool {
	for _, f := range fields {
		if strings.ContainsRune(f, 0) {
			return true
		}
	}
	return false
}

// Handler is POST /webhooks/stripe.
type Handler struct {
	batches *batcher
	secret  string
	metrics *Metrics
	logger  *slog.Logger
}

// NewHandler builds the route. secret is the endpoint's signing secret (whsec_...).
// Deliveries are stored by group commit (batch.go); Close drains it.
func NewHandler(db *gorm.DB, queue *jobs.Client, secret string, metrics *Metrics, logger *slog.Logger) *Handler {
	return &Handler{
		batches: newBatcher(db, queue, DefaultCommitters, DefaultMaxBatch),
		secret:  secret, metrics: metrics, logger: logger,
	}
}

// Saturated reports whether deliveries waited for a busy committer within the last
// window: the route is then what limits acknowledgements.
func (h *Handler) Saturated(window time.Duration) bool {
	return h.batches.sinceSaturated() < window
}

// Close lets the route go before the database does: deliveries already verified are
// written and answered, later ones get 503 and are redelivered by Stripe. An idle
// route holds no goroutine, so a route that is never closed leaks nothing either.
func (h *Handler) Close() { h.batches.close() }

// envelopeOptions read the envelope as the worker's encoding/json reads the whole
// event (names in any letter case) but refuse what the two could read differently: a
// member named twice, in any letter case, where encoding/json keeps the last and
// the route would store the first, and text that is not UTF-8. Stripe sends
// neither. The decoder (the Go team's encoding/json/v2 prototype) reads the body
// once where encoding/json reads it twice, about a third of the cost.
var envelopeOptions = jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true), jsonv1.MatchCaseSensitiveDelimiter(true))

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
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"error":"not configured"}`))
		return
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, MaxBody), r.ContentLength)
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
	if err := jsonv2.Unmarshal(body, &ev, envelopeOptions); err != nil || ev.Object != "event" || ev.ID == "" || ev.Type == "" || ev.Created <= 0 || ev.Created > maxCreated ||
		len(ev.ID) > 255 || len(ev.Type) > 100 || len(ev.Data.Object.ID) > 255 || len(ev.APIVersion) > 40 ||
		hasNUL(ev.ID, ev.Type, ev.Data.Object.ID) {
		h.reject(w, r, http.StatusBadRequest, "malformed")
		return
	}
	if ev.APIVersion != APIVersion {
		h.reject(w, r, http.StatusBadRequest, "api_version")
		return
	}
	inserted, err := h.batches.store(r.Context(), ev, body)
	if err != nil {
		h.metrics.received.WithLabelValues(typeLabel(ev.Type), "unavailable").Inc()
		h.logger.ErrorContext(r.Context(), "webhook not stored; Stripe will redeliver", "event_id", ev.ID, "event_type", ev.Type,
			"error", err.Error())
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"error":"temporarily unavailable"}`))
		return
	}
	outcome := "stored"
	if !inserted {
		outcome = "duplicate"
	}
	h.metrics.received.WithLabelValues(typeLabel(ev.Type), outcome).Inc()
	h.logger.InfoContext(r.Context(), "webhook received", "event_id", ev.ID, "event_type", ev.Type, "outcome", outcome)
	writeJSON(w, http.StatusOK, accepted)
}

// readBody reads a body whole, as io.ReadAll does. Given its declared length
// (Content-Length, which net/http holds the body to) it reads into one buffer of that
// size, where io.ReadAll grows one from 512 bytes and copies at each step.
func readBody(r io.Reader, declared int64) ([]byte, error) {
	if declared <= 0 || declared > MaxBody {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, declared+1) // one more: the end is seen without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // longer than declared: grow
		}
	}
}

// reject answers a delivery that cannot be trusted or read. Nothing is stored, and
// the body is never logged: it is unverified input.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, status int, reason string) {
	h.metrics.rejected.WithLabelValues(reason).Inc()
	h.logger.WarnContext(r.Context(), "webhook rejected", "suspicious", true, "reason", reason, "status", status,
		"remote_addr", r.RemoteAddr, "content_length", r.ContentLength)
	writeJSON(w, status, []byte(`{"error":"`+reason+`"}`))
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

// The answer to an accepted delivery and its header are made once: at thousands of
// deliveries a second, each allocation counts. The value slice has room for one
// value only, so an Add copies it rather than writing into the shared array.
// Cache-Control: no-store comes with httpserver.SecurityHeaders, as on every route.
var (
	accepted        = []byte(`{"received":true}`)
	jsonContentType = []string{"application/json"}[:1:1]
)

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
