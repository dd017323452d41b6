package tracing

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// maxOperationName bounds the client's operation name in a span.
const maxOperationName = 64

// maxOperationDigits bounds a run of digits in an operation name kept in a span:
// longer runs can spell a card, phone or order number.
const maxOperationDigits = 4

// GraphQL is a gqlgen handler extension that starts a span per GraphQL operation
// (a root span: incoming trace headers are not trusted) and a child span per field
// whose value comes from a resolver method (root fields and fields with their own
// resolver, which are the ones that may do I/O). Spans carry the operation's type
// and plain name (plainName) and schema names of fields; never the document, its
// literals, aliases or variables, nor error messages (only their extensions.code).
// Safe for concurrent use.
type GraphQL struct {
	tracer trace.Tracer
}

var (
	_ graphql.HandlerExtension    = (*GraphQL)(nil)
	_ graphql.ResponseInterceptor = (*GraphQL)(nil)
	_ graphql.FieldInterceptor    = (*GraphQL)(nil)
)

// NewGraphQL builds the extension on tp.
func NewGraphQL(tp trace.TracerProvider) *GraphQL {
	return &GraphQL{tracer: tp.Tracer(ScopeName)}
}

// ExtensionName names the extension in gqlgen's stats.
func (g *GraphQL) ExtensionName() string { return "ScovilleTracing" }

// Validate accepts every schema.
func (g *GraphQL) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse wraps each answer (each event of a subscription) in a span
// named after the operation's type and name.
func (g *GraphQL) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	opType, opName := "unknown", ""
	if graphql.HasOperationContext(ctx) {
		oc := graphql.GetOperationContext(ctx)
		// Without a validated operation the name is unchecked client text; with one
		// it is the document's name of the operation run, a GraphQL Name, still the
		// client's text: only a plain one is kept.
		if oc.Operation != nil {
			opType = string(oc.Operation.Operation)
			opName = plainName(oc.Operation.Name)
		}
	}
	name := opType
	if opName != "" {
		name += " " + opName
	}
	attrs := []attribute.KeyValue{attribute.String("graphql.operation.type", opType)}
	if opName != "" {
		attrs = append(attrs, attribute.String("graphql.operation.name", opName))
	}
	ctx, span := g.tracer.Start(ctx, name,
		trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	defer span.End()
	ctx = context.WithValue(ctx, operationSpanKey{}, span)
	resp := next(ctx)
	if resp != nil && len(resp.Errors) > 0 {
		code, _ := resp.Errors[0].Extensions["code"].(string)
		span.SetAttributes(attribute.Int("graphql.errors", len(resp.Errors)))
		span.SetStatus(codes.Error, boundedCode(code))
	}
	return resp
}

// operationSpanKey holds the operation's span in its context.
type operationSpanKey struct{}

// InterceptField wraps a field resolved by a resolver method in a span named
// Type.field, a child of the operation's span: a nested field is resolved after its
// parent field's resolver returned, so the operation is the one span that is still
// open. Other fields (read from a struct already loaded) get none.
func (g *GraphQL) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !fc.IsResolver || fc.Field.Field == nil {
		return next(ctx)
	}
	op, ok := ctx.Value(operationSpanKey{}).(trace.Span)
	if !ok || !op.IsRecording() {
		return next(ctx)
	}
	ctx, span := g.tracer.Start(trace.ContextWithSpan(ctx, op), fc.Object+"."+fc.Field.Name, trace.WithAttributes(
		attribute.String("graphql.field.parent_type", fc.Object),
		attribute.String("graphql.field.name", fc.Field.Name),
	))
	defer span.End()
	res, err := next(ctx)
	if err != nil {
		span.SetStatus(codes.Error, "")
	}
	return res, err
}

// plainName is name when it is a plain operation name: letters and digits only,
// starting with a letter, at most maxOperationName long, no run of more than
// maxOperationDigits digits. Anything else (an underscore, as in Stripe's keys and
// ids or a snake-cased e-mail address, a long number) gives "".
func plainName(name string) string {
	if len(name) > maxOperationName {
		return ""
	}
	digits := 0
	for i, r := range name {
		switch {
		case r >= '0' && r <= '9' && i > 0:
			if digits++; digits > maxOperationDigits {
				return ""
			}
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
			digits = 0
		default:
			return ""
		}
	}
	return name
}

// boundedCode keeps an error code that looks like one of ours (UPPER_SNAKE, short);
// anything else is not put in a span.
func boundedCode(code string) string {
	if code == "" || len(code) > 64 {
		return ""
	}
	for _, r := range code {
		if (r < 'A' || r > 'Z') && r != '_' && (r < '0' || r > '9') {
			return ""
		}
	}
	return code
}
