package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
)

func init() {
	// Refusals of the request's shape are request errors, like a parse failure:
	// HTTP 400 under application/graphql-response+json (200 under application/json,
	// see specAnswer), never any data.
	for _, c := range []string{models.CodeDepthLimit, models.CodeAliasLimit, models.CodeFieldLimit, models.CodeComplexityLimit, models.CodeDocumentTooComplex} {
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

// shapeLimit refuses a document that is too deep, uses too many aliases, selects too
// many fields once its fragments are expanded (a "fragment bomb" of fragments
// spreading each other twice is small on the wire and huge when run), or would cost
// validation too many node visits. It runs before validation (an
// OperationParameterMutator, after the persisted-query lookup), on its own parse of
// the document, in one pass linear in the document: gqlparser's validation walks each
// fragment once per operation and once more on its own, and its field-merging rule
// compares fields pairwise, so the bounds must hold before any of that starts.
// Every operation and fragment of the document is measured, not only the one run,
// because validation visits them all. A document already in the query cache passed
// before and is not measured again.
type shapeLimit struct {
	maxDepth, maxAliases, maxFields, maxNodes int
	tokenLimit                                int
	cache                                     graphql.Cache[*ast.QueryDocument]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = shapeLimit{}

func (shapeLimit) ExtensionName() string { return "ShapeLimit" }

func (shapeLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l shapeLimit) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if p.Query == "" {
		return nil
	}
	if l.cache != nil {
		if _, ok := l.cache.Get(ctx, p.Query); ok {
			return nil
		}
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, l.tokenLimit)
	if err != nil {
		return nil // gqlgen parses it again and reports the same error, the same way
	}
	return l.check(doc)
}

// check measures a parsed, unvalidated document.
func (l shapeLimit) check(doc *ast.QueryDocument) *gqlerror.Error {
	s, cycle := measureDocument(doc)
	switch {
	case cycle != "":
		err := gqlerror.Errorf("Cannot spread fragment %q within itself.", cycle)
		errcode.Set(err, errcode.ValidationFailed)
		return err
	case s.depth > l.maxDepth:
		return limitError(models.CodeDepthLimit, "operation is nested %d levels deep, which exceeds the limit of %d", s.depth, l.maxDepth)
	case s.aliases > l.maxAliases:
		return limitError(models.CodeAliasLimit, "operation uses %d aliases, which exceeds the limit of %d", s.aliases, l.maxAliases)
	case s.fields > l.maxFields:
		return limitError(models.CodeFieldLimit, "operation selects %d fields once fragments are expanded, which exceeds the limit of %d", s.fields, l.maxFields)
	case s.nodes > l.maxNodes:
		return limitError(models.CodeDocumentTooComplex, "document has %d nodes for validation to visit once fragments are expanded, which exceeds the limit of %d", s.nodes, l.maxNodes)
	}
	return nil
}

func limitError(code, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": code}}
}

// shape is what shapeLimit bounds. depth, aliases and fields are the largest of any
// one operation or fragment; nodes is summed over the whole document.
type shape struct{ depth, aliases, fields, nodes int }

// measureDocument measures every operation and fragment definition, each fragment
// expanded where it is spread (counted once per spread, measured once). nodes counts
// what validation visits: every selection, directive and value node of each
// operation and each fragment definition, spreads expanded. A fragment cycle, which
// validation refuses anyway, is returned by name instead.
func measureDocument(doc *ast.QueryDocument) (shape, string) {
	w := shapeWalker{
		frags:  make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		memo:   make(map[string]shape, len(doc.Fragments)),
		active: map[string]bool{},
	}
	for _, f := range doc.Fragments {
		if _, ok := w.frags[f.Name]; !ok { // the first of duplicates, as the validator does
			w.frags[f.Name] = f
		}
	}
	var out shape
	add := func(s shape) {
		out.depth = max(out.depth, s.depth)
		out.aliases = max(out.aliases, s.aliases)
		out.fields = max(out.fields, s.fields)
		out.nodes = addCost(out.nodes, s.nodes)
	}
	for _, op := range doc.Operations {
		s := w.set(op.SelectionSet)
		s.nodes = addCost(s.nodes, addCost(1, directiveNodes(op.Directives)))
		for _, v := range op.VariableDefinitions {
			s.nodes = addCost(s.nodes, addCost(addCost(1, valueNodes(v.DefaultValue)), directiveNodes(v.Directives)))
		}
		add(s)
	}
	for _, f := range doc.Fragments {
		s := w.set(f.SelectionSet)
		s.nodes = addCost(s.nodes, addCost(1, directiveNodes(f.Directives)))
		add(s)
	}
	return out, w.cycle
}

// shapeWalker measures selection sets; each fragment is measured once, so the walk
// is linear in the document.
type shapeWalker struct {
	frags  map[string]*ast.FragmentDefinition
	memo   map[string]shape
	active map[string]bool // fragments being measured: meeting one again is a cycle
	cycle  string
}

func (w *shapeWalker) set(set ast.SelectionSet) shape {
	var out shape
	merge := func(s shape, extraDepth int) {
		out.depth = max(out.depth, min(maxCost, s.depth+extraDepth))
		out.aliases = addCost(out.aliases, s.aliases)
		out.fields = addCost(out.fields, s.fields)
		out.nodes = addCost(out.nodes, s.nodes)
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			child := w.set(s.SelectionSet)
			child.fields = addCost(child.fields, 1)
			if s.Alias != "" && s.Alias != s.Name {
				child.aliases = addCost(child.aliases, 1)
			}
			own := addCost(1, directiveNodes(s.Directives))
			for _, a := range s.Arguments {
				own = addCost(own, valueNodes(a.Value))
			}
			child.nodes = addCost(child.nodes, own)
			merge(child, 1)
		case *ast.InlineFragment:
			child := w.set(s.SelectionSet)
			child.nodes = addCost(child.nodes, addCost(1, directiveNodes(s.Directives)))
			merge(child, 0)
		case *ast.FragmentSpread:
			merge(shape{nodes: addCost(1, directiveNodes(s.Directives))}, 0)
			def := w.frags[s.Name]
			if def == nil || w.cycle != "" {
				continue
			}
			m, ok := w.memo[s.Name]
			if !ok {
				if w.active[s.Name] {
					w.cycle = s.Name
					continue
				}
				w.active[s.Name] = true
				m = w.set(def.SelectionSet)
				m.nodes = addCost(m.nodes, directiveNodes(def.Directives))
				delete(w.active, s.Name)
				w.memo[s.Name] = m
			}
			merge(m, 0)
		}
	}
	return out
}

// directiveNodes counts directives and their argument values.
func directiveNodes(list ast.DirectiveList) int {
	n := 0
	for _, d := range list {
		n = addCost(n, 1)
		for _, a := range d.Arguments {
			n = addCost(n, valueNodes(a.Value))
		}
	}
	return n
}

// valueNodes counts a value and everything nested in it.
func valueNodes(v *ast.Value) int {
	if v == nil {
		return 0
	}
	n := 1
	for _, c := range v.Children {
		n = addCost(n, valueNodes(c.Value))
	}
	return n
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

// maxPricedOperations bounds what pricedOnce remembers; past it, it starts over.
const maxPricedOperations = 1000

// pricedOnce is the complexity limit (gqlgen's ComplexityLimit) remembering the
// cost of each operation that passed it and declares no variable: such an
// operation costs the same every time it runs, and the parsed documents are
// cached, so the same operation comes back as the same *ast.OperationDefinition.
// An operation with variables is priced on every request (its first: may be a
// variable), and one that was refused is priced again, and refused, every time.
// The answer and the ComplexityStats are those of the limit itself.
type pricedOnce struct {
	*extension.ComplexityLimit
	limit int

	mu   sync.Mutex
	cost map[*ast.OperationDefinition]int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = (*pricedOnce)(nil)

func newPricedOnce(limit int, opts ...complexity.Option) *pricedOnce {
	return &pricedOnce{ComplexityLimit: extension.FixedComplexityLimit(limit, opts...), limit: limit,
		cost: map[*ast.OperationDefinition]int{}}
}

func (p *pricedOnce) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	op := opCtx.Doc.Operations.ForName(opCtx.OperationName)
	fixed := op != nil && len(op.VariableDefinitions) == 0
	if fixed {
		p.mu.Lock()
		c, ok := p.cost[op]
		p.mu.Unlock()
		if ok {
			opCtx.Stats.SetExtension(p.ExtensionName(), &extension.ComplexityStats{Complexity: c, ComplexityLimit: p.limit})
			return nil
		}
	}
	if err := p.ComplexityLimit.MutateOperationContext(ctx, opCtx); err != nil || !fixed {
		return err
	}
	if s, ok := opCtx.Stats.GetExtension(p.ExtensionName()).(*extension.ComplexityStats); ok {
		p.mu.Lock()
		if len(p.cost) >= maxPricedOperations {
			clear(p.cost)
		}
		p.cost[op] = s.Complexity
		p.mu.Unlock()
	}
	return nil
}
