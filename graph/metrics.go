package graph

import (
	"context"
	"regexp"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/scoville/scoville/metrics"
)

// Label values used when an operation cannot be attributed to a schema field.
const (
	// OperationUnknown stands for every request that did not parse or validate: its
	// fields are client text, so they never become label values.
	OperationUnknown = "unknown"
	// CodeOK is the code label of an operation answered without a GraphQL error.
	CodeOK = "OK"
	// CodeCanceled is the code label of an operation that failed because its client
	// went away (the request's context was canceled) before the answer: not a
	// server error, so not counted as INTERNAL.
	CodeCanceled = "CANCELED"
	// codeOther stands for an error code that does not look like one of ours.
	codeOther = "OTHER"
	// codeUnspecified is an error that carries no extensions.code.
	codeUnspecified = "UNSPECIFIED"
)

// Metrics counts and times GraphQL operations (OPS-2) as a gqlgen handler extension.
// An operation is a root field of the schema (the names of API.md: createSubscription,
// adminCustomers, ...), so label values are bounded by the schema, never by what a
// client writes: the client's operationName is ignored, and requests that fail to
// parse or validate count under OperationUnknown. Safe for concurrent use.
type Metrics struct {
	operations *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

var (
	_ graphql.HandlerExtension    = (*Metrics)(nil)
	_ graphql.ResponseInterceptor = (*Metrics)(nil)
)

// NewMetrics registers the GraphQL metrics on reg (nil: not registered, for tests
// that only read the collectors):
//
//	scoville_graphql_operations_total{type, operation, code}
//	scoville_graphql_operation_duration_seconds{type, operation}
//
// type is query, mutation, subscription or unknown; code is CodeOK or the
// extensions.code of the operation's first error (UNAUTHENTICATED, INTERNAL,
// GRAPHQL_VALIDATION_FAILED, ...), or CodeCanceled when its client went away.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		operations: metrics.CounterVec(reg, "scoville_graphql_operations_total",
			"GraphQL operations (root fields) answered, by operation type, root field and error code (OK when none).", "type", "operation", "code"),
		duration: metrics.HistogramVec(reg, "scoville_graphql_operation_duration_seconds",
			"Time from reading a GraphQL request to its answer, by operation type and root field.", prometheus.ExponentialBuckets(0.005, 2.5, 10), "type", "operation"),
	}
}

// ExtensionName names the extension in gqlgen's stats.
func (m *Metrics) ExtensionName() string { return "ScovilleMetrics" }

// Validate accepts every schema.
func (m *Metrics) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse observes every answer, including those to requests that failed
// to parse or validate (gqlgen sends those through the response interceptors too).
func (m *Metrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil || !graphql.HasOperationContext(ctx) {
		return resp
	}
	opCtx := graphql.GetOperationContext(ctx)
	start := opCtx.Stats.OperationStart
	if start.IsZero() {
		start = opCtx.Stats.Read.Start
	}
	var elapsed float64
	if !start.IsZero() {
		elapsed = time.Since(start).Seconds()
	}

	opType, fields := rootFields(opCtx.Operation)
	// The first error of each root field (by its response key) gives its code; an
	// error without a path concerns the whole request.
	codes := map[string]string{}
	requestCode := ""
	for _, e := range resp.Errors {
		code := errorCode(e.Extensions)
		if len(e.Path) == 0 {
			if requestCode == "" {
				requestCode = code
			}
			continue
		}
		key, ok := e.Path[0].(ast.PathName)
		if !ok {
			continue
		}
		if _, seen := codes[string(key)]; !seen {
			codes[string(key)] = code
		}
	}
	if len(fields) == 0 {
		fields = []rootField{{key: "", name: OperationUnknown}}
	}
	for _, f := range fields {
		code := requestCode
		if code == "" {
			code = codes[f.key]
		}
		if code == "" {
			code = CodeOK
		}
		if code != CodeOK && clientGone(ctx) {
			code = CodeCanceled
		}
		m.operations.WithLabelValues(opType, f.name, code).Inc()
		m.duration.WithLabelValues(opType, f.name).Observe(elapsed)
	}
	return resp
}

type rootField struct {
	key  string // the response key (alias or name), as in error paths
	name string // the schema field's name: the label value
}

// rootFields lists the operation's root fields that the validator bound to the
// schema (fragments at the root included). A nil operation (the request did not
// parse or validate) gives type unknown and no fields.
func rootFields(op *ast.OperationDefinition) (string, []rootField) {
	if op == nil {
		return OperationUnknown, nil
	}
	var out []rootField
	seen := map[string]bool{}
	var walk func(ast.SelectionSet, int)
	walk = func(set ast.SelectionSet, depth int) {
		if depth > 10 { // fragment cycles are refused by validation; stay bounded anyway
			return
		}
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if s.Definition == nil || seen[s.Alias] {
					continue
				}
				seen[s.Alias] = true
				out = append(out, rootField{key: s.Alias, name: s.Name})
			case *ast.InlineFragment:
				walk(s.SelectionSet, depth+1)
			case *ast.FragmentSpread:
				if s.Definition != nil {
					walk(s.Definition.SelectionSet, depth+1)
				}
			}
		}
	}
	walk(op.SelectionSet, 0)
	switch op.Operation {
	case ast.Query, ast.Mutation, ast.Subscription:
		return string(op.Operation), out
	}
	return OperationUnknown, out
}

// codePattern is what our codes and gqlgen's look like; anything else (a library
// inventing free text) counts as codeOther so the label stays bounded.
var codePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,39}$`)

func errorCode(ext map[string]any) string {
	c, ok := ext["code"].(string)
	switch {
	case !ok || c == "":
		return codeUnspecified
	case codePattern.MatchString(c):
		return c
	}
	return codeOther
}
