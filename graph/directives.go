package graph

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/scoville/scoville/auth"
)

// ForbiddenHook is told when @hasRole refuses a field to an authenticated caller
// (FORBIDDEN), so refused privileged attempts leave a trace (OPS-4). field is the
// root field's name ("refundPayment"), or Type.field below the root
// ("Customer.providerCustomerId"). Anonymous callers are not reported. The hook runs
// before the refusal is returned and cannot change it.
type ForbiddenHook func(ctx context.Context, p *auth.Principal, field string, need auth.Role)

// DirectiveOption adjusts NewDirectives.
type DirectiveOption func(*directiveOptions)

type directiveOptions struct {
	onForbidden ForbiddenHook
	stepUpACR   []string
	stepUpAMR   []string
}

// OnForbidden reports every FORBIDDEN refusal of @hasRole to h. Within one operation
// running under RefusalsOnce, each field is reported once, however many list rows
// asked for it.
func OnForbidden(h ForbiddenHook) DirectiveOption {
	return func(o *directiveOptions) { o.onForbidden = h }
}

// StepUpFactors makes @stepUp fields also need an acr among acr and an amr holding
// one of amr (each only when not empty; see auth.StepUpPolicy).
func StepUpFactors(acr, amr []string) DirectiveOption {
	return func(o *directiveOptions) { o.stepUpACR, o.stepUpAMR = acr, amr }
}

// NewDirectives returns the access directives of the schema. They refuse by returning
// an error instead of calling next, so a refused field's resolver never runs.
// stepUpMaxAge is how recent a login @stepUp fields need (and StepUpFactors which
// factors); now is the clock.
func NewDirectives(stepUpMaxAge time.Duration, now func() time.Time, opts ...DirectiveOption) DirectiveRoot {
	var o directiveOptions
	for _, opt := range opts {
		opt(&o)
	}
	return DirectiveRoot{
		Auth: func(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
			if _, err := auth.RequireAuthenticated(ctx); err != nil {
				return nil, err
			}
			return next(ctx)
		},
		HasRole: func(ctx context.Context, _ any, next graphql.Resolver, role auth.Role) (any, error) {
			if _, err := auth.RequireRole(ctx, role); err != nil {
				if p, ok := auth.PrincipalFrom(ctx); ok && o.onForbidden != nil && errors.Is(err, auth.ErrForbidden) {
					if field := refusedField(ctx); firstRefusal(ctx, field) {
						o.onForbidden(ctx, p, field, role)
					}
				}
				return nil, err
			}
			return next(ctx)
		},
		StepUp: func(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
			policy := auth.StepUpPolicy{MaxAge: stepUpMaxAge, ACR: o.stepUpACR, AMR: o.stepUpAMR}
			if _, err := auth.RequireStepUp(ctx, policy, now()); err != nil {
				return nil, err
			}
			return next(ctx)
		},
	}
}

// AccessDirectives are the directive names that count as an explicit access rule.
var AccessDirectives = []string{"auth", "hasRole", "stepUp"}

// refusedField names the field being resolved: its name at the root, Type.name below.
func refusedField(ctx context.Context) string {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return "unknown"
	}
	// Below the root some ancestor is a field; the root's own ancestors are only the
	// operation's object. (The object's name alone cannot tell: a type may be called
	// Subscription.)
	for a := fc.Parent; a != nil; a = a.Parent {
		if a.Field.Field != nil {
			return fc.Object + "." + fc.Field.Name
		}
	}
	return fc.Field.Name
}

// RefusalsOnce is a handler extension that gives each operation a memory of the
// refusals already reported, so a list of a hundred rows asking for a staff-only field
// is one report, not a hundred.
type RefusalsOnce struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = RefusalsOnce{}

type refusalsKey struct{}

type refusals struct {
	mu   sync.Mutex
	seen map[string]bool
}

// ExtensionName names the extension for gqlgen.
func (RefusalsOnce) ExtensionName() string { return "RefusalsOnce" }

// Validate accepts every schema.
func (RefusalsOnce) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse runs the operation's fields with a fresh memory.
func (RefusalsOnce) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	return next(context.WithValue(ctx, refusalsKey{}, &refusals{seen: map[string]bool{}}))
}

// firstRefusal reports whether field has not been refused yet in this operation;
// without RefusalsOnce every refusal is a first.
func firstRefusal(ctx context.Context, field string) bool {
	r, ok := ctx.Value(refusalsKey{}).(*refusals)
	if !ok {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[field] {
		return false
	}
	r.seen[field] = true
	return true
}
