package e2e

import (
	"context"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/notifications"
	"github.com/scoville/scoville/tracing"
	"github.com/scoville/scoville/webhooks"
)

// spanRecorder is a tracer provider that keeps every ended span in memory.
type spanRecorder struct {
	tp  *sdktrace.TracerProvider
	exp *tracetest.InMemoryExporter
}

func newSpanRecorder(t *testing.T) *spanRecorder {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &spanRecorder{tp: tp, exp: exp}
}

func (r *spanRecorder) spans() tracetest.SpanStubs { return r.exp.GetSpans() }

// named is the spans whose name starts with prefix.
func (r *spanRecorder) named(prefix string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range r.spans() {
		if strings.HasPrefix(s.Name, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// await waits until a span named with prefix has ended, and returns those.
func (r *spanRecorder) await(t *testing.T, prefix string) tracetest.SpanStubs {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.named(prefix)) > 0 }, 20*time.Second, 20*time.Millisecond,
		"no span %q; spans: %s", prefix, spanNames(r.spans()))
	return r.named(prefix)
}

func spanNames(spans tracetest.SpanStubs) string {
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// caused is every span reachable from the span from: its descendants in its trace,
// and the spans linked to any of them (a job linked to the span that inserted it,
// a batch linked to the requests it stored), and so on.
func (r *spanRecorder) caused(from trace.SpanContext) tracetest.SpanStubs {
	spans := r.spans()
	seen := map[trace.SpanID]bool{from.SpanID(): true}
	queue := []trace.SpanID{from.SpanID()}
	var out tracetest.SpanStubs
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, s := range spans {
			if seen[s.SpanContext.SpanID()] {
				continue
			}
			follows := s.Parent.SpanID() == id
			for _, l := range s.Links {
				follows = follows || l.SpanContext.SpanID() == id
			}
			if follows {
				seen[s.SpanContext.SpanID()] = true
				queue = append(queue, s.SpanContext.SpanID())
				out = append(out, s)
			}
		}
	}
	return out
}

// One subscribe through the real GraphQL handler against stripe-mock is one trace:
// the operation's root span, the resolver's, the Stripe calls (named by method and
// endpoint) and the SQL statements (with placeholders), all children of it.
func TestTraceOfOneSubscribe(t *testing.T) {
	t.Parallel()
	a, rec := newTracedApp(t)
	token := a.token("trace-subscriber")
	resp := a.gql(token, `mutation Subscribe($input: CreateSubscriptionInput!) {
		createSubscription(input: $input) { subscription { id } userErrors { code } } }`,
		map[string]any{"input": map[string]any{"planId": mildMonthly, "idempotencyKey": "trace-subscribe-1",
			"shippingAddress": map[string]any{"name": "Tia Trace", "line1": "3 Root Span Road", "city": "Traceburg", "postalCode": "10115", "country": "DE"}}})
	require.Empty(t, resp.Errors, resp.Raw)
	require.Empty(t, userErrorCodes(resp.Data["createSubscription"].(map[string]any)), resp.Raw)

	ops := rec.await(t, "mutation Subscribe")
	require.Len(t, ops, 1)
	op := ops[0]
	require.False(t, op.Parent.IsValid(), "the operation is the root of its trace")
	typ, _ := attr(op, "graphql.operation.type")
	name, _ := attr(op, "graphql.operation.name")
	require.Equal(t, "mutation", typ.AsString())
	require.Equal(t, "Subscribe", name.AsString())

	var inTrace tracetest.SpanStubs
	for _, s := range rec.spans() {
		if s.SpanContext.TraceID() == op.SpanContext.TraceID() {
			inTrace = append(inTrace, s)
		}
	}
	var resolver, stripeCalls, statements int
	for _, s := range inTrace {
		switch {
		case s.Name == "Mutation.createSubscription":
			resolver++
			require.Equal(t, op.SpanContext.SpanID(), s.Parent.SpanID())
		case strings.HasPrefix(s.Name, "stripe "):
			stripeCalls++
			tmpl, _ := attr(s, "url.template")
			require.True(t, strings.HasPrefix(tmpl.AsString(), "/v1/"), s.Name)
			require.NotContains(t, s.Name, "cus_", "ids are not in the name")
		case func() bool { _, ok := attr(s, "db.query.text"); return ok }():
			statements++
		}
	}
	require.Equal(t, 1, resolver, spanNames(inTrace))
	require.NotContains(t, spanNames(inTrace), "Subscription.id", "a field read from a loaded struct gets no span")
	require.NotZero(t, stripeCalls, spanNames(inTrace))
	require.NotZero(t, statements, spanNames(inTrace))
	require.Contains(t, spanNames(inTrace), "stripe POST /v1/subscriptions")

	// Placeholders, never values: the subscriber's idempotency key went into SQL as a
	// parameter.
	var withPlaceholder bool
	for _, s := range inTrace {
		if text, ok := attr(s, "db.query.text"); ok {
			require.NotContains(t, text.AsString(), "trace-subscribe-1")
			withPlaceholder = withPlaceholder || strings.Contains(text.AsString(), "$1")
		}
	}
	require.True(t, withPlaceholder)

	// A nested field's resolver runs after its parent's returned: its span, and its
	// SQL under it, still belong to the operation's trace.
	// (me reads the subscriptions with the customer; their payments come after.)
	resp = a.gql(token, `query Mine { me { subscriptions { id payments(first: 5) { edges { node { id } } } } } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	mine := rec.await(t, "query Mine")[0]
	var nested *tracetest.SpanStub
	for _, s := range rec.named("Subscription.payments") {
		if s.SpanContext.TraceID() == mine.SpanContext.TraceID() {
			nested = &s
		}
	}
	require.NotNil(t, nested, spanNames(rec.spans()))
	require.Equal(t, mine.SpanContext.SpanID(), nested.Parent.SpanID())
	var nestedSQL int
	for _, s := range rec.spans() {
		if s.Parent.SpanID() == nested.SpanContext.SpanID() {
			nestedSQL++
		}
	}
	require.NotZero(t, nestedSQL, "the nested resolver's statements are its children")
}

// newTracedApp is a seeded test app whose spans rec records.
func newTracedApp(t *testing.T) (*testApp, *spanRecorder) {
	t.Helper()
	rec := newSpanRecorder(t)
	a := newTestApp(t, appOptions{options: []app.Option{app.WithTracerProvider(rec.tp)}})
	a.seed()
	return a, rec
}

// newTracedHookShop is newHookShop's shop with its spans recorded by rec.
func newTracedHookShop(t *testing.T, rec *spanRecorder, r *hookReceiver) *shop {
	t.Helper()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	pool := x509.NewCertPool()
	pool.AddCert(r.srv.Certificate())
	a := newTestApp(t, appOptions{
		env:  map[string]string{"STRIPE_API_BASE": fake.URL},
		jobs: true,
		options: []app.Option{app.WithStripeTimeouts(300*time.Millisecond, 2*time.Second),
			app.WithMailer(&recordingMailer{}), app.WithJobRetryPolicy(fastRetry{}), app.WithWebhookRootCAs(pool),
			app.WithTracerProvider(rec.tp)},
	})
	a.seedAt(fake.URL)
	fake.SetNewSubscriptionStatus("active")
	return &shop{testApp: a, stripe: fake}
}

// A signed webhook's request span leads, through the links River's jobs carry, to
// the span of the job that applied its event; the outgoing webhook that event
// caused carries the traceparent of its delivery job's span.
func TestTraceFollowsAWebhookToItsJobAndOut(t *testing.T) {
	t.Parallel()
	rec := newSpanRecorder(t)
	r := newHookReceiver(t)
	s := newTracedHookShop(t, rec, r)
	admin := s.token("trace-admin", "admin")
	s.addEndpoint(admin, r.srv.URL+"/3pl", "trace-ep", "shipment.created")

	p := &person{subject: "trace-hooks", email: "tess.trace@trace.example", name: "Tess Trace", street: "1 Span Street", city: "Linkton"}
	s.enrol(p, 1)
	s.awaitOutbox()

	// The span that applied the event: the batch job it was stored with applies it.
	var eventRowID string
	require.NoError(t, s.db.Raw(`SELECT id FROM webhook_events WHERE provider_event_id = ?`, p.event).Scan(&eventRowID).Error)
	rec.await(t, "webhooks.apply_event")
	isApplied := func(sp tracetest.SpanStub) bool {
		id, _ := attr(sp, "webhook.event_id")
		return sp.Name == "webhooks.apply_event" && id.AsString() == eventRowID
	}

	var request *tracetest.SpanStub
	for _, req := range rec.named("POST /webhooks/stripe") {
		status, _ := attr(req, "http.response.status_code")
		if status.AsInt64() == 200 {
			request = &req
		}
	}
	require.NotNil(t, request, spanNames(rec.spans()))
	require.True(t, slices.ContainsFunc(rec.caused(request.SpanContext), isApplied),
		"the request's span does not lead to the span that applied event %s; spans: %s", eventRowID, spanNames(rec.spans()))
	// And that span links to the request's directly, and is part of its batch job's.
	require.Eventually(t, func() bool {
		for _, sp := range rec.spans() {
			if !isApplied(sp) {
				continue
			}
			for _, l := range sp.Links {
				if l.SpanContext.SpanID() == request.SpanContext.SpanID() {
					return true
				}
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "event %s's span has no link to the request's", eventRowID)
	var applier trace.SpanID
	for _, sp := range rec.spans() {
		if isApplied(sp) {
			applier = sp.Parent.SpanID()
		}
	}
	var jobSpan bool
	for _, sp := range rec.named("river.work/" + webhooks.EnqueueArgs{}.Kind()) {
		jobSpan = jobSpan || sp.SpanContext.SpanID() == applier
	}
	require.True(t, jobSpan, "the event's span is a child of its batch job's")

	// The outgoing webhook's traceparent names its delivery job's span.
	ships := r.of("shipment.created")
	require.Len(t, ships, 1)
	parent := ships[0].header.Get("traceparent")
	sc := trace.SpanContextFromContext(tracing.Propagator.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": parent}))
	require.True(t, sc.IsValid(), "traceparent %q", parent)
	var delivery *tracetest.SpanStub
	for _, d := range rec.await(t, "river.work/") {
		if d.SpanContext.SpanID() == sc.SpanID() && d.SpanContext.TraceID() == sc.TraceID() {
			delivery = &d
		}
	}
	require.NotNil(t, delivery, "no span %s", parent)
	queue, _ := attr(*delivery, "messaging.destination.name")
	require.Equal(t, "outbox", queue.AsString())
}

// With no OTLP endpoint tracing is off: the same flows record no span (not even
// through otel's global provider) and leave no trace context in job metadata nor
// in outgoing webhooks.
func TestTracingOffLeavesNoTraceContext(t *testing.T) {
	t.Parallel()
	global := newSpanRecorder(t)
	otel.SetTracerProvider(global.tp)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	r := newHookReceiver(t)
	s := newHookShop(t, r)
	admin := s.token("untraced-admin", "admin")
	s.addEndpoint(admin, r.srv.URL+"/3pl", "untraced-ep", "shipment.created")
	p := &person{subject: "untraced", email: "una.untraced@trace.example", name: "Una Untraced", street: "2 Quiet Lane", city: "Darkton"}
	s.enrol(p, 1)
	s.awaitOutbox()

	ships := r.of("shipment.created")
	require.Len(t, ships, 1)
	require.Empty(t, ships[0].header.Get("traceparent"))
	require.Zero(t, s.count(`SELECT count(*) FROM river_job WHERE jsonb_exists(metadata, 'traceparent')
		OR jsonb_exists(metadata, 'tracecause') OR jsonb_exists(args, 'causes')`))
	require.NotZero(t, s.count(`SELECT count(*) FROM river_job`))
	require.Empty(t, global.spans())
}

// TestTraceCanary runs the log canary's flows with tracing on and looks for the
// personal data, tokens and secrets they used in every span: its name, attributes,
// events, links, status and resource. There must be none: spans carry names and
// ids, never values.
func TestTraceCanary(t *testing.T) {
	t.Parallel()
	rec := newSpanRecorder(t)
	fake := newFakeStripe(t)
	a := newTestApp(t, appOptions{
		env:  map[string]string{"STRIPE_API_BASE": fake.URL, "STRIPE_SECRET_KEY": canaryStripeKey},
		jobs: true,
		options: []app.Option{app.WithStripeTimeouts(300*time.Millisecond, 2*time.Second),
			app.WithJobRetryPolicy(fastRetry{}), app.WithTracerProvider(rec.tp)},
	})
	canaries := canaryScenario(t, a, fake)
	rec.await(t, "river.work/"+notifications.SendArgs{}.Kind())
	require.Eventually(t, func() bool {
		return a.count(`SELECT count(*) FROM river_job WHERE state IN ('available', 'running')`) == 0
	}, 20*time.Second, 20*time.Millisecond)

	spans := rec.spans()
	// The scan looks at spans of every kind.
	for _, prefix := range []string{"mutation", "query", "Mutation.createSubscription", "Query.me", "stripe POST /v1/",
		"SELECT ", "INSERT ", "UPDATE ", "POST /webhooks/stripe", "webhooks.store_batch", "river.insert_many", "river.work/"} {
		require.NotEmpty(t, rec.named(prefix), "no span %q: %s", prefix, spanNames(spans))
	}
	for _, s := range spans {
		text := strings.ToLower(spanText(s))
		for _, c := range canaries {
			require.NotContains(t, text, strings.ToLower(c), "span %q leaks a canary value: %s", s.Name, text)
		}
	}
}

// spanText is everything a span shows an operator, as text.
func spanText(s tracetest.SpanStub) string {
	var b strings.Builder
	kvs := func(list []attribute.KeyValue) {
		for _, kv := range list {
			b.WriteString(" " + string(kv.Key) + "=" + kv.Value.String())
		}
	}
	b.WriteString(s.Name + " status=" + s.Status.Description)
	kvs(s.Attributes)
	for _, e := range s.Events {
		b.WriteString(" event=" + e.Name)
		kvs(e.Attributes)
	}
	for _, l := range s.Links {
		kvs(l.Attributes)
	}
	if s.Resource != nil {
		kvs(s.Resource.Attributes())
	}
	b.WriteString(" scope=" + s.InstrumentationScope.Name)
	return b.String()
}

// An operation's name is the client's text: a GraphQL Name can spell a Stripe key
// or id, a snake-cased e-mail address or a card number. Only a plain name (letters
// and digits, no long run of digits, bounded) goes into a span; any other leaves
// the operation unnamed there, as the answer is the same.
func TestTraceKeepsOnlyPlainOperationNames(t *testing.T) {
	t.Parallel()
	a, rec := newTracedApp(t)
	token := a.token("trace-names")
	smuggled := []string{
		"sk_live_51Canary7kEyOfSomeone",
		"una_untraced_trace_example",
		"Card4242424242424242",
		"Phone4915112345678",
		"A" + strings.Repeat("b", 64),
	}
	for _, name := range smuggled {
		resp := a.gql(token, "query "+name+" { me { id } }", nil)
		require.Empty(t, resp.Errors, resp.Raw)
	}
	resp := a.gql(token, `query MyOrders2 { me { id } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	kept := rec.await(t, "query MyOrders2")
	name, _ := attr(kept[0], "graphql.operation.name")
	require.Equal(t, "MyOrders2", name.AsString())

	require.Eventually(t, func() bool { return len(rec.named("query")) == len(smuggled)+1 }, 20*time.Second, 20*time.Millisecond)
	for _, s := range rec.spans() {
		text := strings.ToLower(spanText(s))
		for _, name := range smuggled {
			require.NotContains(t, text, strings.ToLower(name), "span %q carries the client's name", s.Name)
		}
	}
	require.Len(t, rec.named("query MyOrders2"), 1)
	for _, s := range rec.named("query") {
		if s.Name != "query MyOrders2" {
			require.Equal(t, "query", s.Name)
			_, named := attr(s, "graphql.operation.name")
			require.False(t, named)
		}
	}
}
