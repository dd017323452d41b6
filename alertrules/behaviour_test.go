package alertrules

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"
)

// The alerts are evaluated by Prometheus's own PromQL engine over made-up series,
// as the rule manager would: an alert fires when its expression returns something
// at every evaluation (each minute) through its `for` duration. (promqltest and the
// rules package would pull in Prometheus's service discovery, which the module
// proxy cannot serve; the engine is already a dependency of the rule-file parser.)

const (
	scrape = 15 * time.Second
	span   = 3 * time.Hour // history of every scenario; evaluation at its end
)

// start is when every scenario begins.
var start = time.Unix(1_700_000_000, 0)

// series is one time series: v gives its value at t (time since the start of the
// scenario), and false where the series does not exist yet.
type series struct {
	labels labels.Labels
	v      func(t time.Duration) (float64, bool)
}

func metric(name string, kv ...string) labels.Labels {
	return labels.FromStrings(append([]string{model.MetricNameLabel, name}, kv...)...)
}

// counter grows at perSecond from the start.
func counter(l labels.Labels, perSecond float64) series {
	return series{l, func(t time.Duration) (float64, bool) { return perSecond * t.Seconds(), true }}
}

// steps is a counter at base until the last `recent` of the scenario, then
// growing at perSecond.
func steps(l labels.Labels, base, perSecond float64, recent time.Duration) series {
	return series{l, func(t time.Duration) (float64, bool) {
		since := t - (span - recent)
		if since <= 0 {
			return base * t.Seconds(), true
		}
		return base*t.Seconds() + perSecond*since.Seconds(), true
	}}
}

// bornAt is a counter that first appears (at 1, as client_golang counters do)
// `ago` before the end of the scenario.
func bornAt(l labels.Labels, ago time.Duration) series {
	return series{l, func(t time.Duration) (float64, bool) { return 1, t >= span-ago }}
}

// flat is a series that always has value v.
func flat(l labels.Labels, v float64) series {
	return series{l, func(time.Duration) (float64, bool) { return v, true }}
}

// lastSuccess is a last-success timestamp gauge of a process that runs from `from`
// to `to` (times since the start of the scenario) and succeeds every `every` after
// its own start until `stopped` before the end of the scenario; 0 before its first
// success, as the server's gauge is.
func lastSuccess(l labels.Labels, from, to, every, stopped time.Duration) series {
	return series{l, func(t time.Duration) (float64, bool) {
		if t < from || t > to {
			return 0, false
		}
		last := from + (t-from)/every*every
		if limit := span - stopped; last > limit {
			last = from + (limit-from)/every*every
		}
		if last <= from {
			return 0, true
		}
		return float64(start.Add(last).Unix()), true
	}}
}

func TestAlertsFireOnTheirScenarios(t *testing.T) {
	t.Parallel()
	groups, err := Load(filepath.Join("..", Path))
	require.NoError(t, err)
	rules := map[string]rulefmt.Rule{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			rules[r.Alert] = r
		}
	}

	ops := func(code string) labels.Labels {
		return metric("scoville_graphql_operations_total", "type", "query", "operation", "plans", "code", code)
	}
	stripe := func(outcome string) labels.Labels {
		return metric("scoville_stripe_calls_total", "op", "CreateSubscription", "outcome", outcome)
	}
	payments := func(outcome string) labels.Labels { return metric("scoville_payments_total", "outcome", outcome) }
	paymentAlert := func(kind string) labels.Labels { return metric("scoville_payment_alerts_total", "kind", kind) }
	processed := func(outcome string) labels.Labels {
		return metric("scoville_webhook_events_processed_total", "type", "invoice.paid", "outcome", outcome)
	}
	authFailures := metric("scoville_auth_token_failures_total", "reason", "bad_signature")
	rejected := metric("scoville_webhook_events_rejected_total", "reason", "bad_signature")
	limited := metric("scoville_rate_limited_total", "scope", "mutation")
	reconciled := func(instance string) labels.Labels {
		return metric("scoville_reconcile_last_success_timestamp_seconds", "instance", instance)
	}
	runs := func(outcome string) labels.Labels { return metric("scoville_reconcile_runs_total", "outcome", outcome) }
	findings := func(kind string) labels.Labels { return metric("scoville_reconcile_findings_total", "kind", kind) }
	outgoing := func(outcome string) labels.Labels {
		return metric("scoville_outbox_deliveries_total", "type", "shipment.created", "outcome", outcome)
	}
	disabled := func(reason string) labels.Labels {
		return metric("scoville_outbox_endpoints_disabled_total", "reason", reason)
	}

	tests := []struct {
		alert    string
		scenario string
		series   []series
		fires    bool
	}{
		{"ScovilleGraphQLErrorRateHigh", "17% INTERNAL", []series{counter(ops("OK"), 1), counter(ops("INTERNAL"), 0.2)}, true},
		{"ScovilleGraphQLErrorRateHigh", "1% INTERNAL", []series{counter(ops("OK"), 1), counter(ops("INTERNAL"), 0.01)}, false},
		{"ScovilleGraphQLErrorRateHigh", "refusals are not failures", []series{counter(ops("OK"), 1), counter(ops("UNAUTHENTICATED"), 1)}, false},
		{"ScovilleGraphQLErrorRateHigh", "too little traffic to judge", []series{counter(ops("INTERNAL"), 0.05)}, false},
		{"ScovilleGraphQLErrorRateHigh", "errors only in the last 3 minutes", []series{counter(ops("OK"), 1), steps(ops("INTERNAL"), 0, 1, 3*time.Minute)}, false},

		{"ScovilleStripeUnavailable", "a sixth of calls unavailable", []series{counter(stripe("ok"), 0.5), counter(stripe("unavailable"), 0.1)}, true},
		{"ScovilleStripeUnavailable", "refusals only", []series{counter(stripe("ok"), 0.5), counter(stripe("refused"), 0.5)}, false},

		{"ScovilleAuthenticationFailureSpike", "5/s after 0.1/s", []series{steps(authFailures, 0.1, 5, 20*time.Minute)}, true},
		{"ScovilleAuthenticationFailureSpike", "a steady 2/s", []series{counter(authFailures, 2)}, false},
		{"ScovilleAuthenticationFailureSpike", "a spike below 1/s", []series{steps(authFailures, 0.01, 0.5, 20*time.Minute)}, false},

		{"ScovilleRateLimitedSpike", "10/s refused", []series{counter(limited, 10)}, true},
		{"ScovilleRateLimitedSpike", "1/s refused", []series{counter(limited, 1)}, false},

		{"ScovillePaymentFailureRateHigh", "a third failing", []series{counter(payments("succeeded"), 0.02), counter(payments("failed"), 0.01)}, true},
		{"ScovillePaymentFailureRateHigh", "few payments, half failing", []series{counter(payments("succeeded"), 0.0005), counter(payments("failed"), 0.0005)}, false},
		{"ScovillePaymentFailureRateHigh", "5% failing", []series{counter(payments("succeeded"), 0.19), counter(payments("failed"), 0.01)}, false},

		{"ScovilleDisputeOpened", "the first dispute since start", []series{bornAt(paymentAlert("dispute"), 5*time.Minute)}, true},
		{"ScovilleDisputeOpened", "another dispute", []series{steps(paymentAlert("dispute"), 0, 0.01, 5*time.Minute)}, true},
		{"ScovilleDisputeOpened", "an old dispute", []series{flat(paymentAlert("dispute"), 2)}, false},
		{"ScovilleDisputeOpened", "a fraud warning is not a dispute", []series{bornAt(paymentAlert("fraud_warning"), 5*time.Minute)}, false},
		{"ScovilleFraudWarning", "the first warning since start", []series{bornAt(paymentAlert("fraud_warning"), 5*time.Minute)}, true},
		{"ScovilleFraudWarning", "an old warning", []series{flat(paymentAlert("fraud_warning"), 1)}, false},
		{"ScovillePaymentMismatch", "an amount mismatch", []series{bornAt(paymentAlert("amount_mismatch"), time.Minute)}, true},
		{"ScovillePaymentMismatch", "a paid period credits time whose box shipped", []series{bornAt(paymentAlert("credited_shipped_period"), time.Minute)}, true},
		{"ScovillePaymentMismatch", "a duplicate Stripe subscription", []series{bornAt(paymentAlert("duplicate_subscription"), time.Minute)}, true},
		{"ScovillePaymentMismatch", "our metadata, no customer of ours", []series{bornAt(paymentAlert("unresolved_subscription"), time.Minute)}, true},
		{"ScovillePaymentMismatch", "a refund is not a mismatch", []series{bornAt(paymentAlert("refund"), time.Minute)}, false},

		{"ScovilleWebhookEventsFailed", "the first FAILED event", []series{counter(processed("processed"), 1), bornAt(processed("failed"), 2*time.Minute)}, true},
		{"ScovilleWebhookEventsFailed", "retries are not failures", []series{counter(processed("retry"), 1)}, false},
		{"ScovilleWebhookEventsFailed", "an old failure", []series{flat(processed("failed"), 3)}, false},
		{"ScovilleWebhookSignaturesRejected", "30 bad signatures in 10 minutes", []series{counter(rejected, 0.05)}, true},
		{"ScovilleWebhookSignaturesRejected", "a few bad signatures", []series{counter(rejected, 0.001)}, false},
		{"ScovilleWebhookBacklog", "5,000 waiting", []series{flat(metric("scoville_webhook_queue_depth"), 5000)}, true},
		{"ScovilleWebhookBacklog", "10 waiting", []series{flat(metric("scoville_webhook_queue_depth"), 10)}, false},

		{"ScovilleReconciliationBehind", "no success for 70 minutes", []series{lastSuccess(reconciled("a"), 0, span, 15*time.Minute, 70*time.Minute)}, true},
		{"ScovilleReconciliationBehind", "never a success in 3 hours", []series{flat(reconciled("a"), 0)}, true},
		{"ScovilleReconciliationBehind", "restarted 65 minutes ago, no success since", []series{
			lastSuccess(reconciled("old"), 0, span-65*time.Minute, 15*time.Minute, 0),
			lastSuccess(reconciled("new"), span-65*time.Minute, span, 15*time.Minute, span),
		}, true},
		{"ScovilleReconciliationBehind", "a success every 15 minutes", []series{lastSuccess(reconciled("a"), 0, span, 15*time.Minute, 0)}, false},
		{"ScovilleReconciliationBehind", "the replicas that are not the leader stay at 0", []series{
			lastSuccess(reconciled("leader"), 0, span, 15*time.Minute, 0), flat(reconciled("b"), 0), flat(reconciled("c"), 0),
		}, false},
		{"ScovilleReconciliationBehind", "restarted 10 minutes ago, first run not due yet", []series{
			lastSuccess(reconciled("old"), 0, span-10*time.Minute, 15*time.Minute, 0),
			lastSuccess(reconciled("new"), span-10*time.Minute, span, 15*time.Minute, 0),
		}, false},
		{"ScovilleReconciliationBehind", "deployed 30 minutes ago for the first time", []series{
			lastSuccess(reconciled("a"), span-30*time.Minute, span, 15*time.Minute, span),
		}, false},
		{"ScovilleReconciliationFailing", "the first failed run since start", []series{counter(runs("ok"), 1.0/900), bornAt(runs("failed"), 5*time.Minute)}, true},
		{"ScovilleReconciliationFailing", "another failed run", []series{steps(runs("failed"), 0, 1.0/900, 20*time.Minute)}, true},
		{"ScovilleReconciliationFailing", "successful runs only", []series{counter(runs("ok"), 1.0/900)}, false},
		{"ScovilleReconciliationFailing", "an old failed run", []series{counter(runs("ok"), 1.0/900), flat(runs("failed"), 1)}, false},
		{"ScovilleReconciliationFoundMissedEvents", "the first missed payment since start", []series{bornAt(findings("payment_missing"), 5*time.Minute)}, true},
		{"ScovilleReconciliationFoundMissedEvents", "more missed subscription changes", []series{steps(findings("subscription_state"), 0, 1.0/900, 20*time.Minute)}, true},
		{"ScovilleReconciliationFoundMissedEvents", "old findings", []series{flat(findings("payment_missing"), 4)}, false},
		{"ScovilleReconciliationFoundMissedEvents", "runs that find nothing", []series{counter(runs("ok"), 1.0/900)}, false},

		{"ScovilleOutgoingWebhookFailed", "the first delivery given up", []series{counter(outgoing("delivered"), 1), bornAt(outgoing("failed"), 2*time.Minute)}, true},
		{"ScovilleOutgoingWebhookFailed", "another delivery given up", []series{steps(outgoing("failed"), 0, 0.01, 5*time.Minute)}, true},
		{"ScovilleOutgoingWebhookFailed", "retries are not failures", []series{counter(outgoing("retry"), 1)}, false},
		{"ScovilleOutgoingWebhookFailed", "an old failure", []series{flat(outgoing("failed"), 2)}, false},
		{"ScovilleWebhookEndpointDisabled", "a receiver answered 410", []series{bornAt(disabled("gone"), 5*time.Minute)}, true},
		{"ScovilleWebhookEndpointDisabled", "an endpoint failing for days", []series{steps(disabled("failing"), 0, 0.01, 5*time.Minute)}, true},
		{"ScovilleWebhookEndpointDisabled", "disabled long ago", []series{flat(disabled("failing"), 1)}, false},
		{"ScovilleOutgoingWebhooksBehind", "a delivery pending for 3 hours", []series{flat(metric("scoville_outbox_oldest_pending_delivery_seconds"), 3*3600)}, true},
		{"ScovilleOutgoingWebhooksBehind", "a delivery pending for a minute", []series{flat(metric("scoville_outbox_oldest_pending_delivery_seconds"), 60)}, false},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.alert+"/"+tt.scenario, func(t *testing.T) {
			t.Parallel()
			r, ok := rules[tt.alert]
			require.True(t, ok, "no alert %s in %s", tt.alert, Path)
			require.Equal(t, tt.fires, fires(t, r, tt.series))
		})
		if tt.fires {
			covered[tt.alert] = true
		}
	}
	for name := range rules {
		require.True(t, covered[name], "alert %s has no scenario in which it fires", name)
	}
}

// fires evaluates r's expression each minute through its `for` window, ending at
// the end of the scenario, and reports whether every evaluation returned something.
func fires(t *testing.T, r rulefmt.Rule, data []series) bool {
	t.Helper()
	q := memQuerier{}
	for _, s := range data {
		var samples []chunks.Sample
		for at := time.Duration(0); at <= span; at += scrape {
			if v, ok := s.v(at); ok {
				samples = append(samples, sample{t: start.Add(at).UnixMilli(), f: v})
			}
		}
		q = append(q, storage.NewListSeries(s.labels, samples))
	}
	slices.SortFunc(q, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })

	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 10_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	queryable := storage.QueryableFunc(func(int64, int64) (storage.Querier, error) { return q, nil })
	end := start.Add(span)
	for at := end.Add(-time.Duration(r.For)); !at.After(end); at = at.Add(time.Minute) {
		query, err := engine.NewInstantQuery(context.Background(), queryable, nil, r.Expr, at)
		require.NoError(t, err)
		res := query.Exec(context.Background())
		require.NoError(t, res.Err)
		vec, err := res.Vector()
		require.NoError(t, err)
		query.Close()
		if len(vec) == 0 {
			return false
		}
	}
	return true
}

// sample is one float sample.
type sample struct {
	t int64
	f float64
}

func (s sample) T() int64                      { return s.t }
func (s sample) ST() int64                     { return 0 }
func (s sample) F() float64                    { return s.f }
func (s sample) H() *histogram.Histogram       { return nil }
func (s sample) FH() *histogram.FloatHistogram { return nil }
func (s sample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s sample) Copy() chunks.Sample           { return s }

// memQuerier serves fixed series, sorted by labels, to the engine.
type memQuerier []storage.Series

func (q memQuerier) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	var out []storage.Series
	for _, s := range q {
		if matchesAll(s.Labels(), ms) {
			out = append(out, s)
		}
	}
	return &seriesSet{series: out}
}

func matchesAll(l labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(l.Get(m.Name)) {
			return false
		}
	}
	return true
}

func (memQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (memQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (memQuerier) Close() error { return nil }

type seriesSet struct {
	series []storage.Series
	i      int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i <= len(s.series) }
func (s *seriesSet) At() storage.Series                { return s.series[s.i-1] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }
