package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func newMeteredGateway(t *testing.T, base string) (*Stripe, *Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	gw, err := NewStripe(Config{
		SecretKey: testKey, APIBase: base,
		Timeout: testTimeout, RetryBudget: testBudget,
		Metrics: m,
	})
	require.NoError(t, err)
	return gw, m, reg
}

// labelValues gathers every label value on reg, to show no id or input leaks in.
func labelValues(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var out []string
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}

func TestMetricsAgainstStripeMock(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	gw, err := NewStripe(Config{SecretKey: mockKey, APIBase: mockBase(t), Timeout: 5 * time.Second, Metrics: m})
	require.NoError(t, err)

	_, err = gw.GetSubscription(context.Background(), "sub_MetricsSecretId123")
	require.NoError(t, err)
	_, err = gw.CreateCustomer(context.Background(), "metrics-cus-1", CustomerInput{OurCustomerID: "c_1", Email: testEmail})
	require.NoError(t, err)

	require.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("GetSubscription", OutcomeOK)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("CreateCustomer", OutcomeOK)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("GET", "/v1/subscriptions/{id}", "2xx")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("POST", "/v1/customers", "2xx")))
	require.Equal(t, 2, testutil.CollectAndCount(m.callDuration))
	require.Equal(t, 2, testutil.CollectAndCount(m.requestDuration))
	for _, v := range labelValues(t, reg) {
		require.NotContains(t, v, "MetricsSecretId", "an id became a label value")
		require.NotContains(t, v, "@", "an e-mail became a label value")
	}
}

func TestMetricsCountOutcomesAndAttempts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		handle      func(n int, w http.ResponseWriter, r *http.Request)
		wantOutcome string
		wantStatus  map[string]float64 // status class -> requests
	}{
		{"retried then ok", func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				stripeError(w, http.StatusServiceUnavailable, "api_error", "", "", "", "down")
				return
			}
			ok(w)
		}, OutcomeOK, map[string]float64{"5xx": 1, "2xx": 1}},
		{"declined", func(n int, w http.ResponseWriter, r *http.Request) {
			stripeError(w, http.StatusPaymentRequired, "card_error", "card_declined", "insufficient_funds", "", "declined")
		}, OutcomeRefused, map[string]float64{"4xx": 1}},
		{"always 503", func(n int, w http.ResponseWriter, r *http.Request) {
			stripeError(w, http.StatusServiceUnavailable, "api_error", "", "", "", "down")
		}, OutcomeUnavailable, nil},
		{"unreadable answer", func(n int, w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`<html>not json</html>`))
		}, OutcomeFailed, map[string]float64{"2xx": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeStripe{handle: tt.handle}
			fake.srv = httptest.NewServer(fake)
			t.Cleanup(fake.srv.Close)
			gw, m, _ := newMeteredGateway(t, fake.srv.URL)

			_, _ = gw.GetSubscription(context.Background(), "sub_1")
			require.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("GetSubscription", tt.wantOutcome)))
			require.Equal(t, 1, testutil.CollectAndCount(m.calls), "one call, one outcome")
			sent := float64(len(fake.requests()))
			var counted float64
			for _, class := range []string{"2xx", "4xx", "5xx", "error"} {
				n := testutil.ToFloat64(m.requests.WithLabelValues("GET", "/v1/subscriptions/{id}", class))
				if want, ok := tt.wantStatus[class]; ok {
					require.Equal(t, want, n, class)
				}
				counted += n
			}
			require.Equal(t, sent, counted, "every attempt on the wire is counted once")
		})
	}
}

func TestMetricsCountNetworkErrors(t *testing.T) {
	t.Parallel()
	gw, m, _ := newMeteredGateway(t, "http://"+closedAddr(t))

	_, err := gw.CreateCustomer(context.Background(), "cus-net-1", CustomerInput{OurCustomerID: "c_1"})
	require.ErrorIs(t, err, ErrProviderUnavailable)
	require.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("CreateCustomer", OutcomeUnavailable)))
	require.GreaterOrEqual(t, testutil.ToFloat64(m.requests.WithLabelValues("POST", "/v1/customers", "error")), 2.0)
}

func TestNilMetricsCountNothing(t *testing.T) {
	t.Parallel()
	fake := &fakeStripe{handle: func(n int, w http.ResponseWriter, r *http.Request) { ok(w) }}
	fake.srv = httptest.NewServer(fake)
	t.Cleanup(fake.srv.Close)
	gw, err := NewStripe(Config{SecretKey: testKey, APIBase: fake.srv.URL})
	require.NoError(t, err)
	_, err = gw.GetSubscription(context.Background(), "sub_1")
	require.NoError(t, err)
}

func TestEndpointPattern(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"/v1/customers":                           "/v1/customers",
		"/v1/subscriptions/sub_1NvXyz":            "/v1/subscriptions/{id}",
		"/v1/subscriptions/sub_1/resume":          "/v1/subscriptions/{id}/resume",
		"/v1/checkout/sessions":                   "/v1/checkout/sessions",
		"/v1/billing_portal/sessions":             "/v1/billing_portal/sessions",
		"/v1/radar/early_fraud_warnings/issfr_1":  "/v1/radar/early_fraud_warnings/{id}",
		"/v1/customers/cus_1/discount":            "/v1/customers/{id}/discount",
		"/v1/customers/lowercaseid":               "/v1/customers/{id}",
		"/v1/promotion_codes":                     "/v1/promotion_codes",
		"/v1/" + strings.Repeat("a/", 20) + "end": "/v1/{id}/{id}/{id}/{id}/{id}/{id}/{id}/...",
	}
	for in, want := range tests {
		require.Equal(t, want, EndpointPattern(in), in)
	}
}
