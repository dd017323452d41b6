package graph

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
)

// TestBoundedListsArePricedByTheirSize: Customer.subscriptions has no first argument
// but is bounded by paging.MaxList, so the complexity limit prices it as that many
// subscriptions, each with what it selects, through the real handler.
func TestBoundedListsArePricedByTheirSize(t *testing.T) {
	t.Parallel()
	e := newTestEndpoint(t, HandlerConfig{MaxComplexity: 1})
	// Objects cost 1, scalars 0; payments without first is a page of DefaultFirst.
	perSubscription := 1 + paging.DefaultFirst*(1+1) // payments { edges { node { id } } }
	cases := map[string]int{
		`{ me { subscriptions { id } } }`:                                                                                         1 + (1 + paging.MaxList*1),
		`{ me { subscriptions { payments { edges { node { id } } } } } }`:                                                         1 + (1 + paging.MaxList*perSubscription),
		`{ me { subscriptions { payments { edges { node { id } } } shipments { edges { node { id } } } } } }`:                     1 + (1 + paging.MaxList*2*perSubscription),
		`{ me { subscriptions { payments(first: 2) { edges { node { id } } } shipments(first: 2) { edges { node { id } } } } } }`: 1 + (1 + paging.MaxList*2*(1+2*2)),
	}
	for q, want := range cases {
		res := e.query(q, nil, customer)
		require.Equal(t, models.CodeComplexityLimit, res.code(), res.Raw)
		require.Equal(t, fmt.Sprintf("operation has complexity %d, which exceeds the limit of 1", want), res.Errors[0].Message, q)
	}
	// The customer dashboard (every subscription with its default pages) stays within
	// the default limit.
	d := newTestEndpoint(t, HandlerConfig{})
	res := d.query(`{ me { subscriptions { id plan { id } payments { edges { node { id amount { amount } } } } shipments { edges { node { id address { city } } } } } } }`, nil, customer)
	require.NotEqual(t, models.CodeComplexityLimit, res.code(), res.Raw)
}

// countingSchema counts the fields the complexity limit prices.
type countingSchema struct {
	graphql.ExecutableSchema
	priced atomic.Int64
}

func (c *countingSchema) Complexity(ctx context.Context, typeName, field string, childComplexity int, args map[string]any) (int, bool) {
	c.priced.Add(1)
	return c.ExecutableSchema.Complexity(ctx, typeName, field, childComplexity, args)
}

// TestOperationsWithoutVariablesArePricedOnce: the complexity limit prices an
// operation that declares no variable once and answers it from memory after, with
// the same stats; an operation with variables is priced again on every request,
// for the variables it came with; a refused operation is refused every time.
func TestOperationsWithoutVariablesArePricedOnce(t *testing.T) {
	t.Parallel()
	const limit = 1000
	es := &countingSchema{ExecutableSchema: costSchema{ExecutableSchema: NewExecutableSchema(Config{Resolvers: testRoot{}}), maxComplexity: limit}}
	p := newPricedOnce(limit, complexity.WithFixedScalarValue(0))
	require.NoError(t, p.Validate(es))
	load := func(q string) *ast.QueryDocument {
		doc, errs := gqlparser.LoadQueryWithRules(es.Schema(), q, nil) // nil: the default rules
		require.Empty(t, errs)
		return doc
	}
	run := func(doc *ast.QueryDocument, vars map[string]any) (*gqlerror.Error, *extension.ComplexityStats) {
		opCtx := &graphql.OperationContext{Doc: doc, Variables: vars}
		err := p.MutateOperationContext(context.Background(), opCtx)
		s, _ := opCtx.Stats.GetExtension("ComplexityLimit").(*extension.ComplexityStats)
		return err, s
	}

	fixed := load(`{ me { subscriptions { payments(first: 3) { edges { node { id } } } } } }`)
	err, first := run(fixed, nil)
	require.Nil(t, err)
	pricedFirst := es.priced.Load()
	require.Positive(t, pricedFirst)
	err, again := run(fixed, nil)
	require.Nil(t, err)
	require.Equal(t, pricedFirst, es.priced.Load(), "priced again")
	require.Equal(t, *first, *again)

	withVars := load(`query($n: Int) { me { subscriptions { payments(first: $n) { edges { node { id } } } } } }`)
	err, _ = run(withVars, map[string]any{"n": 1})
	require.Nil(t, err)
	before := es.priced.Load()
	err, _ = run(withVars, map[string]any{"n": 1000})
	require.NotNil(t, err, "the second request's variables were not priced")
	require.Greater(t, es.priced.Load(), before)

	tooDear := load(`{ me { subscriptions { payments(first: 1000) { edges { node { id } } } } } }`)
	for range 2 {
		err, _ := run(tooDear, nil)
		require.NotNil(t, err)
		require.Contains(t, err.Message, fmt.Sprintf("exceeds the limit of %d", limit))
	}
}

// TestPricedOnceKeepsEachOperationsOwnPrice: two operations of one document (the
// same text, so the same cached document) are priced each for itself: the cheap
// one's remembered price is never the dear one's, whichever comes first.
func TestPricedOnceKeepsEachOperationsOwnPrice(t *testing.T) {
	t.Parallel()
	const limit = 1000
	es := costSchema{ExecutableSchema: NewExecutableSchema(Config{Resolvers: testRoot{}}), maxComplexity: limit}
	p := newPricedOnce(limit, complexity.WithFixedScalarValue(0))
	require.NoError(t, p.Validate(es))
	doc, errs := gqlparser.LoadQueryWithRules(es.Schema(), `
		query Cheap { me { id } }
		query Dear { me { subscriptions { payments(first: 1000) { edges { node { id } } } } } }`, nil)
	require.Empty(t, errs)
	run := func(name string) *gqlerror.Error {
		opCtx := &graphql.OperationContext{Doc: doc, OperationName: name}
		return p.MutateOperationContext(context.Background(), opCtx)
	}
	for range 2 {
		require.Nil(t, run("Cheap"))
		require.NotNil(t, run("Dear"), "the dear operation passed at the cheap one's price")
	}
}
