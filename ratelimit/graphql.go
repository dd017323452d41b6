package ratelimit

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/scoville/scoville/models"
)

// GraphQL returns the gqlgen extension that charges each operation before any
// resolver runs: a query to ScopeQuery (plus one ScopeExport token per
// exportMyData it selects), a mutation to ScopeMutation, plus one ScopePayment
// token per root field it selects that the schema marks with @provider
// (ProviderDirective), aliases and fragments included. A refused
// operation runs nothing and answers RATE_LIMITED with retryAfter; behind PerAddress
// the HTTP answer is 429 with Retry-After. The handler refuses to start with a
// schema that does not declare @provider.
func (l *Limiter) GraphQL() graphql.HandlerExtension { return operationLimit{l} }

type operationLimit struct{ l *Limiter }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = operationLimit{}

func (operationLimit) ExtensionName() string { return "RateLimit" }

func (operationLimit) Validate(es graphql.ExecutableSchema) error {
	if es.Schema().Directives[ProviderDirective] == nil {
		return fmt.Errorf("ratelimit: the schema declares no @%s directive, so no field would be charged as a payment operation", ProviderDirective)
	}
	return nil
}

func (o operationLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	op := opCtx.Operation
	if op == nil {
		return nil
	}
	charges := []Charge{{Scope: ScopeQuery, N: 1}}
	if n := exportFields(op.SelectionSet); n > 0 && op.Operation == ast.Query {
		charges = append(charges, Charge{Scope: ScopeExport, N: n})
	}
	if op.Operation == ast.Mutation {
		charges = []Charge{{Scope: ScopeMutation, N: 1}}
	}
	if n := providerFields(op.SelectionSet); n > 0 {
		charges = append(charges, Charge{Scope: ScopePayment, N: n})
	}
	ref := o.l.Take(ctx, charges...)
	if ref == nil {
		return nil
	}
	markRefused(ctx, ref)
	return &gqlerror.Error{
		Message: ref.Error(),
		Extensions: map[string]any{
			"code":       models.CodeRateLimited,
			"retryAfter": ref.RetryAfterSeconds(),
		},
	}
}

// providerFields counts the root selections of fields the schema marks @provider,
// each alias once, through fragments (a validated document has no fragment cycles,
// and validation has bound every field to its definition). Identical selections
// that GraphQL merges into one field are counted as written, never fewer than run.
func providerFields(set ast.SelectionSet) int {
	return rootFields(set, func(f *ast.Field) bool {
		return f.Definition != nil && f.Definition.Directives.ForName(ProviderDirective) != nil
	})
}
