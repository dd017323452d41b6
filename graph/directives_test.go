package graph

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/models"
)

func TestDirectives(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	d := NewDirectives(5*time.Minute, func() time.Time { return now })
	customer := &auth.Principal{Subject: "c", Roles: []auth.Role{auth.RoleCustomer}, AuthTime: now.Add(-time.Minute)}
	support := &auth.Principal{Subject: "s", Roles: []auth.Role{auth.RoleCustomer, auth.RoleSupport}, AuthTime: now.Add(-time.Minute)}
	admin := &auth.Principal{Subject: "a", Roles: []auth.Role{auth.RoleCustomer, auth.RoleAdmin}}
	stale := &auth.Principal{Subject: "o", Roles: []auth.Role{auth.RoleCustomer}, AuthTime: now.Add(-6 * time.Minute)}
	noAuthTime := &auth.Principal{Subject: "n", Roles: []auth.Role{auth.RoleCustomer}}
	future := &auth.Principal{Subject: "f", Roles: []auth.Role{auth.RoleCustomer}, AuthTime: now.Add(time.Hour)}

	type call func(ctx context.Context, next graphql.Resolver) (any, error)
	hasRole := func(r auth.Role) call {
		return func(ctx context.Context, next graphql.Resolver) (any, error) { return d.HasRole(ctx, nil, next, r) }
	}
	authD := func(ctx context.Context, next graphql.Resolver) (any, error) { return d.Auth(ctx, nil, next) }
	stepUp := func(ctx context.Context, next graphql.Resolver) (any, error) { return d.StepUp(ctx, nil, next) }

	cases := []struct {
		name      string
		directive call
		who       *auth.Principal
		wantCode  string // "" means allowed
	}{
		{"auth/anonymous", authD, nil, models.CodeUnauthenticated},
		{"auth/customer", authD, customer, ""},
		{"hasRole SUPPORT/anonymous", hasRole(auth.RoleSupport), nil, models.CodeUnauthenticated},
		{"hasRole SUPPORT/customer", hasRole(auth.RoleSupport), customer, models.CodeForbidden},
		{"hasRole SUPPORT/support", hasRole(auth.RoleSupport), support, ""},
		{"hasRole SUPPORT/admin (ADMIN implies SUPPORT)", hasRole(auth.RoleSupport), admin, ""},
		{"hasRole ADMIN/support", hasRole(auth.RoleAdmin), support, models.CodeForbidden},
		{"hasRole ADMIN/admin", hasRole(auth.RoleAdmin), admin, ""},
		{"hasRole CUSTOMER/customer", hasRole(auth.RoleCustomer), customer, ""},
		{"stepUp/anonymous", stepUp, nil, models.CodeUnauthenticated},
		{"stepUp/fresh", stepUp, customer, ""},
		{"stepUp/stale", stepUp, stale, models.CodeStepUpRequired},
		{"stepUp/missing auth_time", stepUp, noAuthTime, models.CodeStepUpRequired},
		{"stepUp/auth_time in the future", stepUp, future, models.CodeStepUpRequired},
	}
	present := NewErrorPresenter(slog.New(slog.DiscardHandler))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.who != nil {
				ctx = auth.WithPrincipal(ctx, tc.who)
			}
			called := false
			res, err := tc.directive(ctx, func(context.Context) (any, error) { called = true; return "value", nil })
			if tc.wantCode == "" {
				require.NoError(t, err)
				require.True(t, called)
				require.Equal(t, "value", res)
				return
			}
			require.False(t, called, "a refused field's resolver must not run")
			got := present(ctx, err)
			require.Equal(t, tc.wantCode, got.Extensions["code"])
			if tc.wantCode == models.CodeStepUpRequired {
				require.Equal(t, 300, got.Extensions["maxAge"])
			}
		})
	}
}

func TestErrorPresenterHidesInternals(t *testing.T) {
	t.Parallel()
	present := NewErrorPresenter(slog.New(slog.DiscardHandler))
	ctx := context.Background()

	internal := present(ctx, errors.New(`pq: relation "customers" does not exist: SELECT * FROM customers`))
	require.Equal(t, models.CodeInternal, internal.Extensions["code"])
	require.NotContains(t, internal.Message, "customers")

	recovered := present(ctx, NewRecoverFunc(slog.New(slog.DiscardHandler))(ctx, "nil map write at resolvers/x.go:12"))
	require.Equal(t, models.CodeInternal, recovered.Extensions["code"])
	require.NotContains(t, recovered.Message, "resolvers/x.go")

	wrapped := present(ctx, gqlerror.WrapPath(nil, auth.ErrForbidden))
	require.Equal(t, models.CodeForbidden, wrapped.Extensions["code"])

	validation := &gqlerror.Error{Message: `Cannot query field "nope" on type "Query".`, Extensions: map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}}
	require.Equal(t, validation, present(ctx, validation), "errors about the query itself pass unchanged")
}

func TestForbiddenHookHearsEachRefusedFieldOnce(t *testing.T) {
	t.Parallel()
	type refusal struct {
		subject, field string
		need           auth.Role
	}
	var heard []refusal
	d := NewDirectives(5*time.Minute, time.Now, OnForbidden(func(_ context.Context, p *auth.Principal, field string, need auth.Role) {
		heard = append(heard, refusal{p.Subject, field, need})
	}))
	customer := &auth.Principal{Subject: "c", Roles: []auth.Role{auth.RoleCustomer}}
	support := &auth.Principal{Subject: "s", Roles: []auth.Role{auth.RoleCustomer, auth.RoleSupport}}
	// Contexts nest as gqlgen's executor nests them: the operation's object, its
	// root field, and below a list field one context per row.
	field := func(ctx context.Context, object, name string) context.Context {
		ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: object})
		return graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: object, Field: graphql.CollectedField{Field: &ast.Field{Name: name}}})
	}
	// below is a field of a row of a list under a root field; the type is named like
	// the root Subscription type on purpose.
	below := func(ctx context.Context, object, name string) context.Context {
		ctx = field(ctx, "Query", "me")
		ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Customer", Field: graphql.CollectedField{Field: &ast.Field{Name: "subscriptions"}}})
		i := 0
		ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &i})
		return graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: object, Field: graphql.CollectedField{Field: &ast.Field{Name: name}}})
	}
	next := func(context.Context) (any, error) { return "value", nil }
	call := func(ctx context.Context, who *auth.Principal, need auth.Role) error {
		if who != nil {
			ctx = auth.WithPrincipal(ctx, who)
		}
		_, err := d.HasRole(ctx, nil, next, need)
		return err
	}

	ctx := context.Background()
	require.ErrorIs(t, call(field(ctx, "Mutation", "refundPayment"), support, auth.RoleAdmin), auth.ErrForbidden)
	require.ErrorIs(t, call(field(ctx, "Query", "auditLog"), customer, auth.RoleAdmin), auth.ErrForbidden)
	require.ErrorIs(t, call(field(ctx, "Query", "adminCustomers"), nil, auth.RoleSupport), auth.ErrUnauthenticated)
	require.NoError(t, call(field(ctx, "Query", "adminCustomers"), support, auth.RoleSupport))
	require.Equal(t, []refusal{
		{"s", "refundPayment", auth.RoleAdmin},
		{"c", "auditLog", auth.RoleAdmin},
	}, heard, "refusals of authenticated callers only; anonymous and allowed calls are not reported")

	// Within one operation, staff-only fields asked for on every row, and other
	// staff-only fields, are one report once the operation has run, naming the field
	// that sorts first whatever order they ran in.
	heard = nil
	op := RefusalsOnce{}
	op.InterceptResponse(ctx, func(ctx context.Context) *graphql.Response {
		require.ErrorIs(t, call(below(ctx, "Subscription", "providerSubscriptionId"), customer, auth.RoleSupport), auth.ErrForbidden)
		for range 3 {
			require.ErrorIs(t, call(below(ctx, "Customer", "providerCustomerId"), customer, auth.RoleSupport), auth.ErrForbidden)
		}
		require.ErrorIs(t, call(field(ctx, "Query", "auditLog"), customer, auth.RoleAdmin), auth.ErrForbidden)
		require.Empty(t, heard, "nothing is reported while the operation runs")
		return &graphql.Response{}
	})
	require.Equal(t, []refusal{
		{"c", "Customer.providerCustomerId", auth.RoleSupport},
	}, heard)
}
