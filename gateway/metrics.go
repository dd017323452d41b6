package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scoville/scoville/metrics"
)

// Metrics counts and times what the adapter asks of Stripe (OPS-2), at two levels:
// each gateway call (one method such as CreateSubscription, all retries included,
// with its final outcome) and each HTTP request on the wire (method and endpoint
// pattern, with ids replaced by {id}, and status class). Label values come from
// this package's code and Stripe's URL layout, never from ids or user input. A nil
// *Metrics records nothing.
type Metrics struct {
	calls           *prometheus.CounterVec
	callDuration    *prometheus.HistogramVec
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
}

// Outcomes of a gateway call, the outcome label of scoville_stripe_calls_total.
const (
	OutcomeOK          = "ok"          // Stripe carried the request out
	OutcomeRefused     = "refused"     // Stripe answered 4xx: a ProviderError
	OutcomeUnavailable = "unavailable" // ErrProviderUnavailable after retries
	OutcomeFailed      = "failed"      // failed here: bad input, unreadable answer
)

// NewMetrics registers the Stripe metrics on reg (nil: not registered):
//
//	scoville_stripe_calls_total{op, outcome}
//	scoville_stripe_call_duration_seconds{op}
//	scoville_stripe_requests_total{method, endpoint, status}
//	scoville_stripe_request_duration_seconds{method, endpoint}
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		calls: metrics.CounterVec(reg, "scoville_stripe_calls_total",
			"Stripe gateway calls (retries included), by gateway method and final outcome (ok, refused, unavailable, failed).", "op", "outcome"),
		callDuration: metrics.HistogramVec(reg, "scoville_stripe_call_duration_seconds",
			"Time of one Stripe gateway call, retries and waits included, by gateway method.", prometheus.ExponentialBuckets(0.01, 2.5, 10), "op"),
		requests: metrics.CounterVec(reg, "scoville_stripe_requests_total",
			"HTTP requests sent to Stripe, by method, endpoint pattern (ids as {id}) and status class (2xx, 4xx, 5xx, error).", "method", "endpoint", "status"),
		requestDuration: metrics.HistogramVec(reg, "scoville_stripe_request_duration_seconds",
			"Latency of one HTTP request to Stripe until its headers arrived, by method and endpoint pattern.", prometheus.ExponentialBuckets(0.01, 2.5, 10), "method", "endpoint"),
	}
}

func (m *Metrics) observeCall(op, outcome string, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(op, outcome).Inc()
	m.callDuration.WithLabelValues(op).Observe(elapsed.Seconds())
}

func (m *Metrics) observeRequest(req *http.Request, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	method, endpoint := requestMethod(req.Method), EndpointPattern(req.URL.Path)
	class := "error"
	if status >= 100 && status <= 599 {
		class = strconv.Itoa(status/100) + "xx"
	}
	m.requests.WithLabelValues(method, endpoint, class).Inc()
	m.requestDuration.WithLabelValues(method, endpoint).Observe(elapsed.Seconds())
}

func requestMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
		return method
	}
	return "OTHER"
}

// endpointWords are the path segments of Stripe's API that are names, not ids:
// resources, namespaces and actions. Any other segment is shown as {id}, so an id
// never becomes a label value and an unexpected path cannot grow the label set.
var endpointWords = map[string]bool{
	"v1": true, "v2": true,
	"balance_transactions": true, "billing": true, "billing_portal": true, "calculations": true,
	"cancel": true, "charges": true, "checkout": true, "configurations": true, "coupons": true,
	"customers": true, "discount": true, "disputes": true, "early_fraud_warnings": true,
	"events": true, "expire": true, "finalize": true, "invoice_items": true, "invoices": true,
	"line_items": true, "lines": true, "mark_uncollectible": true, "pay": true, "payment_intents": true,
	"payment_methods": true, "prices": true, "products": true, "promotion_codes": true,
	"radar": true, "refunds": true, "resume": true, "search": true, "send": true, "sessions": true,
	"setup_intents": true, "subscription_items": true, "subscription_schedules": true,
	"subscriptions": true, "tax": true, "tax_rates": true, "test_clocks": true, "test_helpers": true,
	"upcoming": true, "void": true, "webhook_endpoints": true,
}

// EndpointPattern turns a Stripe API path into its pattern: known segments kept,
// everything else {id} (/v1/subscriptions/sub_123 -> /v1/subscriptions/{id}).
// Query strings are never part of it (they can carry a promotion code).
func EndpointPattern(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) > 8 {
		segs = append(segs[:8], "...")
	}
	for i, s := range segs {
		if s != "..." && !endpointWords[s] {
			segs[i] = "{id}"
		}
	}
	return "/" + strings.Join(segs, "/")
}
