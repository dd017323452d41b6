// Package tracing owns Scoville's OpenTelemetry traces: the tracer provider built
// from the standard OTEL_* variables, and the instrumentation of the entry points
// (GraphQL operations, the webhook route, River jobs) and of what they call (SQL
// statements). Spans carry names of operations, fields, tables and routes, never
// values: no variables, no document, no SQL parameters, no bodies, no error texts
// that could echo customer data.
//
// Spans below an entry point (SQL, Stripe calls) are started only inside a span
// that is recording, from that span's provider, so with tracing off they cost one
// context look-up; the entry points are instrumented only when tracing is on.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every span Scoville starts.
const ScopeName = "github.com/scoville/scoville"

// ServiceName is the service.name of the spans when OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) does not set one.
const ServiceName = "scoville"

// Propagator is the one propagation format Scoville reads and writes: W3C trace
// context (the traceparent and tracestate headers or metadata keys).
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// FromEnv builds the tracer provider the OTEL_* variables describe: spans batched
// and sent over OTLP/HTTP to the endpoint they name, sampled as
// OTEL_TRACES_SAMPLER says (default: parent-based, always on). Call it only when
// config.Config.Traces is set; without it nothing is instrumented and no span is
// recorded. Shutdown flushes it at exit.
func FromEnv(ctx context.Context, logger *slog.Logger) (*sdktrace.TracerProvider, error) {
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: the OTEL_EXPORTER_OTLP_* variables are malformed: %w", err)
	}
	// The SDK reports export failures to otel's global handler, which would print
	// them with the standard logger; they go to the product's log instead.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("traces not exported", "error", err)
	}))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(Resource(ctx))), nil
}

// Resource describes this process: the SDK's default attributes and those of
// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, with ServiceName when neither
// names the service.
func Resource(ctx context.Context) *resource.Resource {
	res := resource.DefaultWithContext(ctx)
	if name, ok := res.Set().Value("service.name"); !ok || strings.HasPrefix(name.AsString(), "unknown_service") {
		merged, err := resource.Merge(res, resource.NewSchemaless(attribute.String("service.name", ServiceName)))
		if err == nil {
			res = merged
		}
	}
	return res
}

// Shutdown flushes tp's queued spans and stops it, within grace, so that an
// unreachable collector cannot hold the process at exit.
func Shutdown(tp *sdktrace.TracerProvider, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return tp.Shutdown(ctx)
}

// ChildTracer is the tracer of the span in ctx, when that span is recording: a
// part that is not an entry point (an HTTP client, a database) starts its spans
// only then, as children, so with tracing off it starts none.
func ChildTracer(ctx context.Context) (trace.Tracer, bool) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return nil, false
	}
	return parent.TracerProvider().Tracer(ScopeName), true
}

// StartLinked starts a root span named name for work done on behalf of several
// callers (a group commit), linked to each of their spans that is recording, on
// the provider of the first. With none recording it starts nothing, and the
// returned end does nothing.
func StartLinked(ctx context.Context, name string, causes []trace.Span) (context.Context, func()) {
	var (
		tp    trace.TracerProvider
		links []trace.Link
	)
	for _, s := range causes {
		if s == nil || !s.IsRecording() {
			continue
		}
		if tp == nil {
			tp = s.TracerProvider()
		}
		links = append(links, trace.Link{SpanContext: s.SpanContext()})
	}
	if tp == nil {
		return ctx, func() {}
	}
	ctx, span := tp.Tracer(ScopeName).Start(ctx, name, trace.WithNewRoot(), trace.WithLinks(links...))
	return ctx, func() { span.End() }
}
