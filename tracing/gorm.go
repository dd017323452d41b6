package tracing

import (
	"errors"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"
)

// SQL is a gorm plugin that gives every statement run inside a recording span a
// child span: its operation and table, and the statement text as gorm built it,
// with $n placeholders; never the parameters (Statement.Vars), nor the database's
// error message (which can quote a value).
type SQL struct{}

var _ gorm.Plugin = SQL{}

// Name names the plugin in gorm.
func (SQL) Name() string { return "scoville:tracing" }

// spanKey is where a statement's span waits between the callbacks.
const spanKey = "scoville:tracing:span"

// Initialize registers the callbacks around each of gorm's processors.
func (SQL) Initialize(db *gorm.DB) error {
	cb := db.Callback()
	var errs []error
	add := func(kind string, before, after func(string, func(*gorm.DB)) error) {
		errs = append(errs, before("scoville:tracing:before_"+kind, startSQL), after("scoville:tracing:after_"+kind, endSQL))
	}
	add("create", cb.Create().Before("gorm:create").Register, cb.Create().After("gorm:create").Register)
	add("query", cb.Query().Before("gorm:query").Register, cb.Query().After("gorm:query").Register)
	add("update", cb.Update().Before("gorm:update").Register, cb.Update().After("gorm:update").Register)
	add("delete", cb.Delete().Before("gorm:delete").Register, cb.Delete().After("gorm:delete").Register)
	add("row", cb.Row().Before("gorm:row").Register, cb.Row().After("gorm:row").Register)
	add("raw", cb.Raw().Before("gorm:raw").Register, cb.Raw().After("gorm:raw").Register)
	return errors.Join(errs...)
}

func startSQL(db *gorm.DB) {
	ctx := db.Statement.Context
	if ctx == nil {
		return
	}
	tracer, ok := ChildTracer(ctx)
	if !ok {
		return
	}
	ctx, span := tracer.Start(ctx, "sql", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "postgresql")))
	db.Statement.Context = ctx
	db.InstanceSet(spanKey, span)
}

func endSQL(db *gorm.DB) {
	v, ok := db.InstanceGet(spanKey)
	if !ok {
		return
	}
	span, ok := v.(trace.Span)
	if !ok {
		return
	}
	defer span.End()
	text := db.Statement.SQL.String()
	op := operation(text)
	name := op
	if table := db.Statement.Table; table != "" {
		name += " " + table
		span.SetAttributes(attribute.String("db.collection.name", table))
	}
	span.SetName(name)
	span.SetAttributes(attribute.String("db.operation.name", op), attribute.String("db.query.text", text))
	if db.RowsAffected >= 0 {
		span.SetAttributes(attribute.Int64("db.response.returned_rows", db.RowsAffected))
	}
	if db.Error != nil && !errors.Is(db.Error, gorm.ErrRecordNotFound) {
		span.SetStatus(codes.Error, "")
	}
}

// operation is the statement's first keyword (SELECT, INSERT, WITH, ...), or SQL.
func operation(text string) string {
	text = strings.TrimSpace(text)
	end := strings.IndexAny(text, " \t\r\n(")
	if end < 0 {
		end = len(text)
	}
	word := strings.ToUpper(text[:end])
	if word == "" || len(word) > 16 {
		return "SQL"
	}
	return word
}
