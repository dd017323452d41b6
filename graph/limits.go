package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
)

func init() {
	// Refusals of the request's shape are protocol errors, like a parse failure:
	// HTTP 422, not 200.
	for _, c := range []string{models.CodeDepthLimit, models.CodeAliasLimit, models.CodeFieldLimit, models.CodeComplexityLimit} {
		errcode.RegisterErrorType(c, errcode.KindProtocol)
	}
}

// maxCost saturates every cost and count, so no crafted query can overflow them.
const maxCost = math.MaxInt32

func addCost(a, b int) int { return min(maxCost, a+b) }

func mulCost(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	if a > maxCost/b {
		return maxCost
	}
	return a * b
}

// shapeLimit refuses an operation that is too deep, uses too many aliases, or selects
// too many fields once its fragments are expanded (a "fragment bomb" of fragments
// spreading each other twice is small on the wire and huge when run). It runs right
// after validation and before the complexity limit, whose walk expands fragments.
type shapeLimit struct {
	maxDepth, maxAliases, maxFields int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = shapeLimit{}

func (shapeLimit) ExtensionName() string { return "ShapeLimit" }

func (shapeLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l shapeLimit) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if opCtx.Operation == nil {
		return nil
	}
	w := shapeWalker{memo: map[string]shape{}}
	s := w.set(opCtx.Operation.SelectionSet)
	switch {
	case s.depth > l.maxDepth:
		return limitError(models.CodeDepthLimit, "operation is nested %d levels deep, which exceeds the limit of %d", s.depth, l.maxDepth)
	case s.aliases > l.maxAliases:
		return limitError(models.CodeAliasLimit, "operation uses %d aliases, which exceeds the limit of %d", s.aliases, l.maxAliases)
	case s.fields > l.maxFields:
		return limitError(models.CodeFieldLimit, "operation selects %d fields once fragments are expanded, which exceeds the limit of %d", s.fields, l.maxFields)
	}
	return nil
}

func limitError(code, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": code}}
}

type shape struct{ depth, aliases, fields int }

// shapeWalker measures a validated selection set (validation rules out fragment
// cycles); each fragment is measured once, so the walk is linear in the document.
type shapeWalker struct{ memo map[string]shape }

func (w shapeWalker) set(set ast.SelectionSet) shape {
	var out shape
	merge := func(s shape, extraDepth int) {
		out.depth = max(out.depth, min(maxCost, s.depth+extraDepth))
		out.aliases = addCost(out.aliases, s.aliases)
		out.fields = addCost(out.fields, s.fields)
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			child := w.set(s.SelectionSet)
			child.fields = addCost(child.fields, 1)
			if s.Alias != "" && s.Alias != s.Name {
				child.aliases = addCost(child.aliases, 1)
			}
			merge(child, 1)
		case *ast.InlineFragment:
			merge(w.set(s.SelectionSet), 0)
		case *ast.FragmentSpread:
			if s.Definition == nil {
				continue
			}
			m, ok := w.memo[s.Name]
			if !ok {
				m = w.set(s.Definition.SelectionSet)
				w.memo[s.Name] = m
			}
			merge(m, 0)
		}
	}
	return out
}

// introspectionGate decides per request whether the schema may be read: always when
// open (development), else only by SUPPORT and ADMIN principals (the admin
// Playground). Anyone else asking for __schema or __type is refused before anything
// runs: UNAUTHENTICATED when anonymous, FORBIDDEN for a customer.
type introspectionGate struct{ open bool }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = introspectionGate{}

func (introspectionGate) ExtensionName() string { return "IntrospectionGate" }

func (introspectionGate) Validate(graphql.ExecutableSchema) error { return nil }

func (g introspectionGate) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	allowed := g.open || isStaff(ctx)
	opCtx.DisableIntrospection = !allowed
	if allowed || opCtx.Operation == nil || !selectsIntrospection(opCtx.Operation.SelectionSet) {
		return nil
	}
	if _, ok := auth.PrincipalFrom(ctx); !ok {
		return limitError(models.CodeUnauthenticated, "introspection is available to signed-in SUPPORT and ADMIN staff only")
	}
	return limitError(models.CodeForbidden, "introspection is available to SUPPORT and ADMIN staff only")
}

func isStaff(ctx context.Context) bool {
	p, ok := auth.PrincipalFrom(ctx)
	return ok && p.Has(auth.RoleSupport)
}

// selectsIntrospection reports whether a root selection asks for __schema or __type
// (__typename reveals nothing the client did not write).
func selectsIntrospection(set ast.SelectionSet) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				return true
			}
		case *ast.InlineFragment:
			if selectsIntrospection(s.SelectionSet) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && selectsIntrospection(s.Definition.SelectionSet) {
				return true
			}
		}
	}
	return false
}

// withoutSuggestions hides gqlparser's "Did you mean ...?" hints from callers who may
// not read the schema: a hint names fields the caller did not know about, which is
// introspection by guessing.
func withoutSuggestions(open bool, next graphql.ErrorPresenterFunc) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		e := next(ctx, err)
		if e == nil || open || isStaff(ctx) {
			return e
		}
		if i := strings.Index(e.Message, " Did you mean"); i >= 0 {
			c := *e
			c.Message = e.Message[:i]
			return &c
		}
		return e
	}
}

// costSchema prices list fields for the complexity limit the way the best-known
// GraphQL APIs do: a field with a first argument costs first times what it selects
// (paging.DefaultFirst when first is absent), so first: 1000000000 is refused before
// any resolver runs. Objects cost one and scalars nothing (see NewHandler).
type costSchema struct {
	graphql.ExecutableSchema
	// maxComplexity is the limit the costs are checked against; zero is
	// DefaultMaxComplexity.
	maxComplexity int
}

// boundedLists are the list fields without a first argument, each priced as its
// bound times what it selects, like a connection of that many.
var boundedLists = map[string]int{"Customer.subscriptions": paging.MaxList}

// ExportCost is exportMyData's price in the complexity limit max: more than half of
// it, so that an operation holds one export at most. The export reads everything
// held about the caller and opens each of their provider events; its rate is
// limited apart too (ratelimit.ScopeExport).
func ExportCost(max int) int { return orDefault(max, DefaultMaxComplexity)/2 + 1 }

func (c costSchema) Complexity(ctx context.Context, typeName, field string, childComplexity int, args map[string]any) (int, bool) {
	if typeName == "Query" && field == "exportMyData" {
		return addCost(ExportCost(c.maxComplexity), childComplexity), true
	}
	if n, ok := boundedLists[typeName+"."+field]; ok {
		return addCost(1, mulCost(max(1, childComplexity), n)), true
	}
	def := c.Schema().Types[typeName]
	if def == nil {
		return c.ExecutableSchema.Complexity(ctx, typeName, field, childComplexity, args)
	}
	f := def.Fields.ForName(field)
	if f == nil || f.Arguments.ForName("first") == nil {
		return c.ExecutableSchema.Complexity(ctx, typeName, field, childComplexity, args)
	}
	first := paging.DefaultFirst
	if v, ok := asInt(args["first"]); ok {
		first = max(0, v)
	}
	return addCost(1, mulCost(max(1, childComplexity), first)), true
}

// asInt reads an Int argument, whether it came from the document or a variable.
func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int32:
		return int(n), true
	case int64:
		return int(max(math.MinInt32, min(maxCost, n))), true
	case float64:
		return int(max(math.MinInt32, min(maxCost, n))), true
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return 0, false
		}
		return int(max(math.MinInt32, min(maxCost, i))), true
	}
	return 0, false
}
