package tracing

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/database/dbtest"
)

func newRecorder(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

// A statement run inside a recording span gets a child span with the statement as
// gorm sent it, placeholders and not values; outside one it gets none.
func TestSQLSpansCarryPlaceholdersNeverValues(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	require.NoError(t, db.Use(SQL{}))
	tp, exp := newRecorder(t)

	ctx, root := tp.Tracer("test").Start(context.Background(), "root")
	var v string
	require.NoError(t, db.WithContext(ctx).Raw(`SELECT ?::text || ?::text`, "canary-", "value@leak.example").Scan(&v).Error)
	require.Equal(t, "canary-value@leak.example", v)
	var n int64
	require.NoError(t, db.WithContext(ctx).Table("river_job").Where("kind = ? AND queue IN ?", "canary-kind", []string{"canary-queue"}).Count(&n).Error)
	require.Error(t, db.WithContext(ctx).Exec(`SELECT 1/0 WHERE ? = ''`, "canary-divisor").Error)
	root.End()

	spans := exp.GetSpans()
	require.Len(t, spans, 4, "three statements and the root")
	var texts []string
	for _, s := range spans[:3] {
		require.Equal(t, root.SpanContext().SpanID(), s.Parent.SpanID())
		require.Equal(t, trace.SpanKindClient, s.SpanKind)
		for _, kv := range s.Attributes {
			if kv.Key == "db.query.text" {
				texts = append(texts, kv.Value.AsString())
			}
			require.NotContains(t, kv.Value.String(), "canary", s.Name)
		}
		require.NotContains(t, s.Status.Description, "canary")
	}
	require.Len(t, texts, 3)
	require.Contains(t, texts[0], "$1::text || $2::text")
	require.Contains(t, texts[1], "kind = $1 AND queue IN ($2)")
	require.Equal(t, "SELECT river_job", spans[1].Name)
	require.Equal(t, "Error", spans[2].Status.Code.String())

	exp.Reset()
	require.NoError(t, db.WithContext(context.Background()).Raw(`SELECT ?::text`, "untraced").Scan(&v).Error)
	require.Empty(t, exp.GetSpans(), "no span outside a recording one")
}

// A read run natively on pgx (database.Query) gets its span as any statement does:
// under the caller's, with its text, the rows it read, and no values.
func TestSQLSpansCoverNativeReads(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	require.NoError(t, db.Use(SQL{}))
	tp, exp := newRecorder(t)

	ctx, root := tp.Tracer("test").Start(context.Background(), "root")
	read := 0
	require.NoError(t, database.Query(ctx, db, `SELECT g FROM generate_series(1, 2) AS g WHERE $1::text <> ''`, []any{"canary-native"},
		func(rows pgx.Rows) error {
			for rows.Next() {
				read++
			}
			return nil
		}))
	root.End()
	require.Equal(t, 2, read)

	spans := exp.GetSpans()
	require.Len(t, spans, 2, "the read and the root")
	s := spans[0]
	require.Equal(t, root.SpanContext().SpanID(), s.Parent.SpanID())
	require.Equal(t, "SELECT", s.Name)
	attrs := map[string]string{}
	for _, kv := range s.Attributes {
		attrs[string(kv.Key)] = kv.Value.String()
		require.NotContains(t, kv.Value.String(), "canary")
	}
	require.Contains(t, attrs["db.query.text"], "$1::text")
	require.Equal(t, "2", attrs["db.response.returned_rows"])
}

// The trace context goes into a job's metadata beside what is there, and comes
// back out as the span to link to; metadata that is not an object is left alone.
func TestJobMetadataCarriesTheInsertingSpan(t *testing.T) {
	t.Parallel()
	tp, _ := newRecorder(t)
	ctx, span := tp.Tracer("test").Start(context.Background(), "insert")
	defer span.End()
	carrier := propagation.MapCarrier{}
	Propagator.Inject(ctx, carrier)
	require.NotEmpty(t, carrier.Get("traceparent"))

	meta := withTraceContext([]byte(`{"river:unique": true, "note": "kept"}`), carrier)
	require.Contains(t, string(meta), `"note":"kept"`)
	require.Contains(t, string(meta), `"river:unique":true`)
	require.Equal(t, []trace.SpanContext{span.SpanContext()}, withoutRemote(insertedBy(meta)))

	fresh := withTraceContext(nil, carrier)
	require.Equal(t, []trace.SpanContext{span.SpanContext()}, withoutRemote(insertedBy(fresh)))

	// A job inserted far from its cause names it too: both are linked.
	_, cause := tp.Tracer("test").Start(context.Background(), "request")
	caused := withTraceContext(CauseMetadata(TraceParent(cause)), carrier)
	require.Equal(t, []trace.SpanContext{span.SpanContext(), cause.SpanContext()}, withoutRemote(insertedBy(caused)))
	cause.End()
	require.Empty(t, TraceParent(cause), "an ended span is no cause")

	for _, odd := range []string{`[1,2]`, `"x"`, `not json`} {
		require.Equal(t, odd, string(withTraceContext([]byte(odd), carrier)))
	}
	for _, none := range []string{``, `{}`, `{"traceparent": "00-zz"}`, `{"traceparent": 7}`, `[`, `{"tracecause": "x"}`} {
		require.Empty(t, insertedBy([]byte(none)), none)
	}
	require.Equal(t, `{}`, string(withTraceContext([]byte(`{}`), propagation.MapCarrier{})), "no span: unchanged")
	require.True(t, strings.HasPrefix(carrier.Get("traceparent"), "00-"))
}

// withoutRemote clears the remote flag extraction sets, to compare span contexts.
func withoutRemote(scs []trace.SpanContext) []trace.SpanContext {
	out := make([]trace.SpanContext, len(scs))
	for i, sc := range scs {
		out[i] = sc.WithRemote(false)
	}
	return out
}
