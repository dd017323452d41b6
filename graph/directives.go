package graph

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/scoville/scoville/auth"
)

// NewDirectives returns the access directives of the schema. They refuse by returning
// an error instead of calling next, so a refused field's resolver never runs.
// stepUpMaxAge is how recent a login @stepUp fields need; now is the clock.
func NewDirectives(stepUpMaxAge time.Duration, now func() time.Time) DirectiveRoot {
	return DirectiveRoot{
		Auth: func(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
			if _, err := auth.RequireAuthenticated(ctx); err != nil {
				return nil, err
			}
			return next(ctx)
		},
		HasRole: func(ctx context.Context, _ any, next graphql.Resolver, role auth.Role) (any, error) {
			if _, err := auth.RequireRole(ctx, role); err != nil {
				return nil, err
			}
			return next(ctx)
		},
		StepUp: func(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
			if _, err := auth.RequireRecentLogin(ctx, stepUpMaxAge, now()); err != nil {
				return nil, err
			}
			return next(ctx)
		},
	}
}

// AccessDirectives are the directive names that count as an explicit access rule.
var AccessDirectives = []string{"auth", "hasRole", "stepUp"}
