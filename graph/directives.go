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
// ("Customer.providerCustomerId"); it is the schema's name, never the client's alias.
// Anonymous callers are not reported. The hook cannot change the refusal.
type ForbiddenHook func(ctx context.Context, p *auth.Principal, field string, need auth.Role)

// DirectiveOption adjusts NewDirectives.
type DirectiveOption func(*directiveOptions)

type directiveOptions struct {
	onForbidden ForbiddenHook
	stepUpACR   []string
	stepUpAMR   []string
}

// OnForbidden reports FORBIDDEN refusals of @hasRole to h: each one as it happens,
// or, within an operation running under RefusalsOnce, once per operation when it has
// run, however many fields, aliases and list rows were refused.
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
					field := refusedField(ctx)
					if !deferRefusal(ctx, refusal{hook: o.onForbidden, p: p, field: field, need: role}) {
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

// RefusalsOnce is a handler extension that makes each operation report at most one
// refusal, after its fields have run: a request selecting many staff-only fields (under
// aliases, or on every row of a list) leaves one trace, not one per field. The one
// reported is the refused field whose name sorts first, so the choice does not depend
// on the order in which fields ran.
type RefusalsOnce struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = RefusalsOnce{}

type refusalsKey struct{}

// refusal is one refused field with the hook that is to hear of it.
type refusal struct {
	hook  ForbiddenHook
	p     *auth.Principal
	field string
	need  auth.Role
}

// refusals is one operation's memory: the refusal to report, if any.
type refusals struct {
	mu    sync.Mutex
	first *refusal
}

// ExtensionName names the extension for gqlgen.
func (RefusalsOnce) ExtensionName() string { return "RefusalsOnce" }

// Validate accepts every schema.
func (RefusalsOnce) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse runs the operation's fields with a fresh memory, then reports the
// one refusal kept, if any.
func (RefusalsOnce) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	mem := &refusals{}
	resp := next(context.WithValue(ctx, refusalsKey{}, mem))
	mem.mu.Lock()
	r := mem.first
	mem.mu.Unlock()
	if r != nil {
		r.hook(ctx, r.p, r.field, r.need)
	}
	return resp
}

// deferRefusal keeps r for the operation's one report and says whether it did;
// without RefusalsOnce nothing is kept and the caller reports r itself.
func deferRefusal(ctx context.Context, r refusal) bool {
	mem, ok := ctx.Value(refusalsKey{}).(*refusals)
	if !ok {
		return false
	}
	mem.mu.Lock()
	defer mem.mu.Unlock()
	if mem.first == nil || r.field < mem.first.field {
		mem.first = &r
	}
	return true
}
