package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestANilRegistryOnlyBuilds(t *testing.T) {
	t.Parallel()
	c := CounterVec(nil, "test_events_total", "Events.", "kind")
	c.WithLabelValues("a").Inc()
	require.Equal(t, 1.0, testutil.ToFloat64(c.WithLabelValues("a")))
	require.NotNil(t, HistogramVec(nil, "test_event_seconds", "Event time.", nil, "kind"))
	require.NotNil(t, Histogram(nil, "test_lag_seconds", "Lag.", nil))
}

func TestConstructorsRegisterWhatTheyBuild(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := CounterVec(reg, "test_events_total", "Events.", "kind")
	hv := HistogramVec(reg, "test_event_seconds", "Event time.", []float64{1, 2}, "kind")
	h := Histogram(reg, "test_lag_seconds", "Lag.", []float64{1})
	c.WithLabelValues("a").Inc()
	hv.WithLabelValues("a").Observe(1.5)
	h.Observe(0.5)

	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, 1.0, testutil.ToFloat64(c.WithLabelValues("a")))
	require.Panics(t, func() { CounterVec(reg, "test_events_total", "Again.", "kind") }, "a name registered twice")
}
