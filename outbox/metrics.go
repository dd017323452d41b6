package outbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
)

// The outbox's metrics. They are package-level because Publish runs inside other
// packages' transactions; RegisterMetrics exposes them on a registry.
var (
	messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scoville_outbox_messages_total", Help: "Outgoing webhook messages written, by event type.",
	}, []string{"type"})
	outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scoville_outbox_deliveries_total",
		Help: "Outgoing webhook delivery attempts by event type and outcome: delivered, retry (failed, tried again later), failed (given up), skipped (the endpoint is disabled: not sent).",
	}, []string{"type", "outcome"})
	attemptSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "scoville_outbox_attempt_duration_seconds", Help: "Time of one delivery attempt, by result.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15},
	}, []string{"result"})
	deliveryLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "scoville_outbox_delivery_latency_seconds", Help: "Time from a message's fact to its delivery.",
		Buckets: prometheus.ExponentialBuckets(0.1, 4, 12),
	})
	endpointsDisabled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scoville_outbox_endpoints_disabled_total",
		Help: "Endpoints disabled by the system: gone (the receiver answered 410), failing (failing for days).",
	}, []string{"reason"})
)

// RegisterMetrics exposes the outbox's metrics on reg, with the age of the oldest
// pending delivery read from db at each scrape.
func RegisterMetrics(reg prometheus.Registerer, db *gorm.DB) {
	reg.MustRegister(messages, outcomes, attemptSeconds, deliveryLatency, endpointsDisabled,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scoville_outbox_oldest_pending_delivery_seconds",
			Help: "Age of the oldest delivery still PENDING (0 when none), to an enabled endpoint.",
		}, func() float64 { return oldestPending(db) }))
}

func oldestPending(db *gorm.DB) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var age *float64
	err := db.WithContext(ctx).Raw(`SELECT EXTRACT(EPOCH FROM now() - min(d.created_at))::float8
		FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'PENDING' AND e.enabled`).Scan(&age).Error
	if err != nil || age == nil {
		return 0
	}
	return *age
}
