package webhooks

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/scoville/scoville/metrics"
	"github.com/scoville/scoville/subscriptions"
)

// Metrics are the route's and the workers' counters (OPS-2): what came in, what was
// refused as suspicious, what was applied or failed, how long it took, and how much
// is waiting.
type Metrics struct {
	received  *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	processed *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	lag       prometheus.Histogram
}

// NewMetrics registers the webhook metrics on reg, including a queue-depth gauge
// read from db at scrape time.
func NewMetrics(reg prometheus.Registerer, db *gorm.DB) *Metrics {
	m := &Metrics{
		received: metrics.CounterVec(reg, "scoville_webhook_events_received_total",
			"Verified Stripe deliveries, by event type and outcome (stored, duplicate, unavailable).", "type", "outcome"),
		rejected: metrics.CounterVec(reg, "scoville_webhook_events_rejected_total",
			"Deliveries refused before storing (suspicious: bad or stale signature, malformed, too large, other API version), by reason.", "reason"),
		processed: metrics.CounterVec(reg, "scoville_webhook_events_processed_total",
			"Events applied by the workers, by event type and outcome (processed, ignored, retry, failed).", "type", "outcome"),
		duration: metrics.HistogramVec(reg, "scoville_webhook_processing_seconds",
			"Time to apply one event, by event type.", prometheus.ExponentialBuckets(0.001, 2.5, 12), "type"),
		lag: metrics.Histogram(reg, "scoville_webhook_event_lag_seconds",
			"Time from receiving an event to having applied it.", prometheus.ExponentialBuckets(0.01, 3, 12)),
	}
	if reg != nil && db != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scoville_webhook_queue_depth",
			Help: "Stored events not yet applied (RECEIVED), counted up to 10000.",
		}, func() float64 { return bounded(db, queueDepthQuery) }))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scoville_jobs_waiting",
			Help: "Background jobs available, scheduled or waiting for a retry, counted up to 10000.",
		}, func() float64 { return bounded(db, jobsWaitingQuery) }))
	}
	return m
}

// gaugeCap bounds what a scrape counts: each gauge reads at most this many entries of
// an index (webhook_events_status_idx, River's state index) and reports gaugeCap for
// any backlog at least that large, so a scrape costs the same however far behind the
// queue is, and never scans a table. Alerts fire far below it.
const gaugeCap = 10000

// The gauges' queries, bounded by gaugeCap.
const (
	queueDepthQuery  = `SELECT count(*) FROM (SELECT 1 FROM webhook_events WHERE status = 'RECEIVED' LIMIT 10000) AS waiting`
	jobsWaitingQuery = `SELECT count(*) FROM (SELECT 1 FROM river_job WHERE state IN ('available', 'scheduled', 'retryable') LIMIT 10000) AS waiting`
)

// bounded runs a gauge's query with a short deadline; -1 says it could not be read.
func bounded(db *gorm.DB, query string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n int64
	if err := db.WithContext(ctx).Raw(query).Scan(&n).Error; err != nil {
		return -1
	}
	return float64(n)
}

// typeLabel keeps the type label's values to the types we know, so a stream of
// invented types cannot blow up the metrics' cardinality.
func typeLabel(t string) string {
	if subscriptions.Handles(t) {
		return t
	}
	return "other"
}
