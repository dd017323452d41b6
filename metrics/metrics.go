// Package metrics declares the product's Prometheus series: each constructor builds
// one collector and registers it on reg, or only builds it when reg is nil (tests
// that read the collectors directly). Registering a name twice on one registry
// panics, as prometheus.MustRegister does.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// CounterVec is a counter of the given name, help and label names, registered on reg.
func CounterVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.CounterVec {
	return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

// HistogramVec is a histogram of the given name, help, buckets and label names,
// registered on reg.
func HistogramVec(reg prometheus.Registerer, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels))
}

// Histogram is a histogram without labels, registered on reg.
func Histogram(reg prometheus.Registerer, name, help string, buckets []float64) prometheus.Histogram {
	return register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}))
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}
