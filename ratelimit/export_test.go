package ratelimit

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/scoville/scoville/models"
)

var exportSchema = gqlparser.MustLoadSchema(&ast.Source{Input: `
type Export { json: String }
type Query { exportMyData: Export me: Int }
`})

func TestExportsHaveTheirOwnAllowance(t *testing.T) {
	t.Parallel()
	l, c := newTestLimiter(t, Config{Export: PerMinute(4)}) // burst 2, one per 15 s
	ext := l.GraphQL().(graphql.OperationContextMutator)
	run := func(ctx context.Context, q string) string {
		doc, errs := gqlparser.LoadQueryWithRules(exportSchema, q, rules.NewDefaultRules())
		require.Empty(t, errs, q)
		if err := ext.MutateOperationContext(ctx, &graphql.OperationContext{Operation: doc.Operations[0]}); err != nil {
			return err.Extensions["code"].(string)
		}
		return ""
	}
	alice := callerCtx("alice", "192.0.2.1")

	require.Equal(t, models.CodeRateLimited, run(alice, `{ a: exportMyData { json } b: exportMyData { json } c: exportMyData { json } }`),
		"each alias is an export")
	require.Empty(t, run(alice, `{ ...F } fragment F on Query { exportMyData { json } }`))
	require.Empty(t, run(alice, `{ exportMyData { json } }`))
	require.Equal(t, models.CodeRateLimited, run(alice, `{ exportMyData { json } }`))
	require.Empty(t, run(alice, `{ me }`), "other queries are not held back")
	require.Empty(t, run(callerCtx("bob", "192.0.2.1"), `{ exportMyData { json } }`), "per caller")

	c.t = c.t.Add(15e9)
	require.Empty(t, run(alice, `{ exportMyData { json } }`))
}
