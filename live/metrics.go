package live

import "github.com/prometheus/client_golang/prometheus"

// Refusal reasons, the values of scoville_live_refusals_total's reason label.
const (
	RefusedOrigin               = "origin"
	RefusedSubprotocol          = "subprotocol"
	RefusedToken                = "token"
	RefusedTokenExpired         = "token_expired"
	RefusedSocketsPerAddress    = "sockets_per_address"
	RefusedSocketsPerPrincipal  = "sockets_per_principal"
	RefusedOperationsPerCaller  = "operations_per_principal"
	RefusedOperationsPerAddress = "operations_per_address"
	RefusedNotFound             = "not_found"
)

// Metrics are the live-update series: open sockets, active operations, pushes,
// refusals by reason and LISTEN connections established. A nil *Metrics records
// nothing.
type Metrics struct {
	sockets    prometheus.Gauge
	operations prometheus.Gauge
	pushes     prometheus.Counter
	refusals   *prometheus.CounterVec
	listens    prometheus.Counter
}

// NewMetrics registers the live-update series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scoville_live_sockets", Help: "Open live-update WebSockets (connection_init accepted or pending).",
		}),
		operations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scoville_live_operations", Help: "Active subscriptionUpdated operations.",
		}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scoville_live_pushes_total", Help: "Objects pushed to live-update operations.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scoville_live_refusals_total", Help: "Live-update sockets and operations refused or closed, by reason.",
		}, []string{"reason"}),
		listens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scoville_live_listen_connections_total", Help: "LISTEN connections established (the first, then each reconnect).",
		}),
	}
	for _, r := range []string{RefusedOrigin, RefusedSubprotocol, RefusedToken, RefusedTokenExpired, RefusedSocketsPerAddress,
		RefusedSocketsPerPrincipal, RefusedOperationsPerCaller, RefusedOperationsPerAddress, RefusedNotFound} {
		m.refusals.WithLabelValues(r)
	}
	reg.MustRegister(m.sockets, m.operations, m.pushes, m.refusals, m.listens)
	return m
}

// Refused counts one refusal for reason (one of the Refused constants).
func (m *Metrics) Refused(reason string) {
	if m != nil {
		m.refusals.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) socketsAdd(n float64) {
	if m != nil {
		m.sockets.Add(n)
	}
}

func (m *Metrics) operationsAdd(n float64) {
	if m != nil {
		m.operations.Add(n)
	}
}

func (m *Metrics) pushed() {
	if m != nil {
		m.pushes.Inc()
	}
}

func (m *Metrics) listened() {
	if m != nil {
		m.listens.Inc()
	}
}
