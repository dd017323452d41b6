package tracing

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// River is a River middleware, after rivercontrib/otelriver (whose releases for the
// River this module uses do not propagate trace context): a job inserted inside a
// recording span carries that span's W3C trace context in its metadata
// (traceparent), under a child span of the insert; a job is worked in a root span
// linked to the span that inserted it (it may run long after, in another process)
// and to the span its metadata names as its cause (CauseMetadata). Spans carry the
// job's kind, queue, attempt and id; never its arguments, nor its error's text.
// Safe for concurrent use.
type River struct {
	river.MiddlewareDefaults
	tracer trace.Tracer
}

var (
	_ rivertype.JobInsertMiddleware = (*River)(nil)
	_ rivertype.WorkerMiddleware    = (*River)(nil)
)

// NewRiver builds the middleware; work spans are started on tp.
func NewRiver(tp trace.TracerProvider) *River {
	return &River{tracer: tp.Tracer(ScopeName)}
}

// InsertMany records the inserting span's trace context in each job's metadata.
func (m *River) InsertMany(ctx context.Context, many []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	tracer, ok := ChildTracer(ctx)
	if !ok {
		return doInner(ctx)
	}
	ctx, span := tracer.Start(ctx, "river.insert_many", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "river"), attribute.Int("messaging.batch.message_count", len(many))))
	defer span.End()
	carrier := propagation.MapCarrier{}
	Propagator.Inject(ctx, carrier)
	for _, p := range many {
		p.Metadata = withTraceContext(p.Metadata, carrier)
	}
	res, err := doInner(ctx)
	if err != nil {
		span.SetStatus(codes.Error, "")
	}
	return res, err
}

// Work runs the job in a span linked to the one that inserted it.
func (m *River) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "river"),
			attribute.String("river.kind", job.Kind),
			attribute.String("messaging.destination.name", job.Queue),
			attribute.Int("river.attempt", job.Attempt),
			attribute.Int64("river.job_id", job.ID),
		),
	}
	for _, sc := range insertedBy(job.Metadata) {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := m.tracer.Start(ctx, "river.work/"+job.Kind, opts...)
	defer span.End()
	panicked := true
	defer func() {
		if panicked {
			span.SetStatus(codes.Error, "panic")
		}
	}()
	err := doInner(ctx)
	panicked = false
	var cancelled *river.JobCancelError
	var snoozed *river.JobSnoozeError
	switch {
	case errors.As(err, &snoozed):
		span.SetAttributes(attribute.Bool("river.snooze", true))
	case errors.As(err, &cancelled):
		span.SetAttributes(attribute.Bool("river.cancel", true))
		span.SetStatus(codes.Error, "cancelled")
	case err != nil:
		span.SetStatus(codes.Error, "")
	}
	return err
}

// withTraceContext sets carrier's keys in a job's metadata object; metadata that
// is not an object is left as it is.
func withTraceContext(metadata []byte, carrier propagation.MapCarrier) []byte {
	if len(carrier) == 0 {
		return metadata
	}
	meta := map[string]json.RawMessage{}
	if len(metadata) > 0 {
		if err := json.Unmarshal(metadata, &meta); err != nil || meta == nil {
			return metadata
		}
	}
	for k, v := range carrier {
		b, err := json.Marshal(v)
		if err != nil {
			return metadata
		}
		meta[k] = b
	}
	out, err := json.Marshal(meta)
	if err != nil {
		return metadata
	}
	return out
}

// causeKey is the metadata key of a job's cause (CauseMetadata).
const causeKey = "tracecause"

// CauseMetadata is job metadata that names traceparent as the job's cause: the
// job's span links to it, besides the span that inserted the job. For a job
// inserted far from its cause (a batch job handing out one job per event).
func CauseMetadata(traceparent string) []byte {
	b, err := json.Marshal(map[string]string{causeKey: traceparent})
	if err != nil {
		return nil
	}
	return b
}

// TraceParent is span's context as a W3C traceparent, when span is recording;
// otherwise "".
func TraceParent(span trace.Span) string {
	if span == nil || !span.IsRecording() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	Propagator.Inject(trace.ContextWithSpan(context.Background(), span), carrier)
	return carrier.Get("traceparent")
}

// insertedBy is the valid span contexts a job's metadata names: the span that
// inserted it, then its cause.
func insertedBy(metadata []byte) []trace.SpanContext {
	if len(metadata) == 0 {
		return nil
	}
	var meta struct {
		TraceParent string `json:"traceparent"`
		TraceState  string `json:"tracestate"`
		Cause       string `json:"tracecause"`
	}
	if err := json.Unmarshal(metadata, &meta); err != nil {
		return nil
	}
	var out []trace.SpanContext
	for _, c := range []propagation.MapCarrier{
		{"traceparent": meta.TraceParent, "tracestate": meta.TraceState},
		{"traceparent": meta.Cause},
	} {
		if c["traceparent"] == "" {
			continue
		}
		if sc := trace.SpanContextFromContext(Propagator.Extract(context.Background(), c)); sc.IsValid() {
			out = append(out, sc)
		}
	}
	return out
}
