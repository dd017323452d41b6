package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/auth"
)

func ctxWith(p *auth.Principal) context.Context {
	if p == nil {
		return context.Background()
	}
	return auth.WithPrincipal(context.Background(), p)
}

func TestRequireRoleMatrix(t *testing.T) {
	t.Parallel()
	principals := map[string]*auth.Principal{
		"anonymous": nil,
		"no roles":  {Subject: "u0"},
		"customer":  {Subject: "u1", Roles: []auth.Role{auth.RoleCustomer}},
		"support":   {Subject: "u2", Roles: []auth.Role{auth.RoleCustomer, auth.RoleSupport}},
		"admin":     {Subject: "u3", Roles: []auth.Role{auth.RoleCustomer, auth.RoleAdmin}},
		"bogus":     {Subject: "u4", Roles: []auth.Role{"ROOT"}},
	}
	// want[caller][need]: nil = allowed.
	want := map[string]map[auth.Role]error{
		"anonymous": {auth.RoleCustomer: auth.ErrUnauthenticated, auth.RoleSupport: auth.ErrUnauthenticated, auth.RoleAdmin: auth.ErrUnauthenticated},
		"no roles":  {auth.RoleCustomer: auth.ErrForbidden, auth.RoleSupport: auth.ErrForbidden, auth.RoleAdmin: auth.ErrForbidden},
		"customer":  {auth.RoleCustomer: nil, auth.RoleSupport: auth.ErrForbidden, auth.RoleAdmin: auth.ErrForbidden},
		"support":   {auth.RoleCustomer: nil, auth.RoleSupport: nil, auth.RoleAdmin: auth.ErrForbidden},
		"admin":     {auth.RoleCustomer: nil, auth.RoleSupport: nil, auth.RoleAdmin: nil},
		"bogus":     {auth.RoleCustomer: auth.ErrForbidden, auth.RoleSupport: auth.ErrForbidden, auth.RoleAdmin: auth.ErrForbidden},
	}
	for caller, needs := range want {
		for need, wantErr := range needs {
			t.Run(fmt.Sprintf("%s needs %s", caller, need), func(t *testing.T) {
				t.Parallel()
				p, err := auth.RequireRole(ctxWith(principals[caller]), need)
				if wantErr != nil {
					require.ErrorIs(t, err, wantErr)
					require.Nil(t, p)
					return
				}
				require.NoError(t, err)
				require.Same(t, principals[caller], p)
			})
		}
	}
}

func TestRequireRecentLogin(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const maxAge = 10 * time.Minute

	tests := []struct {
		name      string
		principal *auth.Principal
		wantErr   error // nil: allowed; auth.ErrUnauthenticated; or step-up
		wantStep  bool
	}{
		{"anonymous", nil, auth.ErrUnauthenticated, false},
		{"missing auth_time", &auth.Principal{Subject: "u"}, nil, true},
		{"stale", &auth.Principal{Subject: "u", AuthTime: now.Add(-11 * time.Minute)}, nil, true},
		{"fresh", &auth.Principal{Subject: "u", AuthTime: now.Add(-9 * time.Minute)}, nil, false},
		{"exactly max age", &auth.Principal{Subject: "u", AuthTime: now.Add(-maxAge)}, nil, false},
		{"slightly in the future (skew)", &auth.Principal{Subject: "u", AuthTime: now.Add(30 * time.Second)}, nil, false},
		{"far in the future", &auth.Principal{Subject: "u", AuthTime: now.Add(5 * time.Minute)}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := auth.RequireRecentLogin(ctxWith(tt.principal), maxAge, now)
			switch {
			case tt.wantErr != nil:
				require.ErrorIs(t, err, tt.wantErr)
				require.Nil(t, p)
			case tt.wantStep:
				var step *auth.StepUpRequiredError
				require.True(t, errors.As(err, &step), "want *StepUpRequiredError, got %v", err)
				require.Equal(t, maxAge, step.MaxAge)
				require.Nil(t, p)
			default:
				require.NoError(t, err)
				require.Same(t, tt.principal, p)
			}
		})
	}
}

// TestRecentLoginFromDevIdPToken checks auth_time survives the whole path: the
// devidp mint endpoint, go-oidc verification and the step-up check.
func TestRecentLoginFromDevIdPToken(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	v := newVerifier(t, iss, "")
	const maxAge = 15 * time.Minute

	tests := []struct {
		authAge  string
		wantStep bool
	}{
		{"1m", false},
		{"30m", true},
		{"none", true},
	}
	for _, tt := range tests {
		t.Run("auth_age="+tt.authAge, func(t *testing.T) {
			t.Parallel()
			tok := postTokenForm(t, iss, url.Values{"sub": {"u"}, "auth_age": {tt.authAge}})
			p, err := v.Verify(context.Background(), tok)
			require.NoError(t, err)
			_, err = auth.RequireRecentLogin(auth.WithPrincipal(context.Background(), p), maxAge, time.Now())
			if !tt.wantStep {
				require.NoError(t, err)
				return
			}
			var step *auth.StepUpRequiredError
			require.ErrorAs(t, err, &step)
			require.Equal(t, maxAge, step.MaxAge)
		})
	}
}

func TestRequireStepUpFactors(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	fresh := now.Add(-time.Minute)
	acr := auth.StepUpPolicy{MaxAge: 5 * time.Minute, ACR: []string{"gold", "urn:example:loa:3"}}
	amr := auth.StepUpPolicy{MaxAge: 5 * time.Minute, AMR: []string{"mfa", "hwk"}}
	both := auth.StepUpPolicy{MaxAge: 5 * time.Minute, ACR: acr.ACR, AMR: amr.AMR}

	tests := []struct {
		name   string
		policy auth.StepUpPolicy
		p      auth.Principal
		ok     bool
	}{
		{"acr: listed value", acr, auth.Principal{AuthTime: fresh, ACR: "gold"}, true},
		{"acr: second listed value", acr, auth.Principal{AuthTime: fresh, ACR: "urn:example:loa:3"}, true},
		{"acr: absent", acr, auth.Principal{AuthTime: fresh}, false},
		{"acr: other case", acr, auth.Principal{AuthTime: fresh, ACR: "Gold"}, false},
		{"acr: trailing space", acr, auth.Principal{AuthTime: fresh, ACR: "gold "}, false},
		{"acr: prefix of a listed value", acr, auth.Principal{AuthTime: fresh, ACR: "gol"}, false},
		{"acr: listed value put in amr", acr, auth.Principal{AuthTime: fresh, AMR: []string{"gold"}}, false},
		{"acr: listed but the login is stale", acr, auth.Principal{AuthTime: now.Add(-6 * time.Minute), ACR: "gold"}, false},
		{"amr: contains a listed method", amr, auth.Principal{AuthTime: fresh, AMR: []string{"pwd", "mfa"}}, true},
		{"amr: only pwd", amr, auth.Principal{AuthTime: fresh, AMR: []string{"pwd"}}, false},
		{"amr: MFA upper case", amr, auth.Principal{AuthTime: fresh, AMR: []string{"MFA"}}, false},
		{"amr: \"mfa \"", amr, auth.Principal{AuthTime: fresh, AMR: []string{"mfa "}}, false},
		{"amr: listed value put in acr", amr, auth.Principal{AuthTime: fresh, ACR: "mfa"}, false},
		{"amr: empty", amr, auth.Principal{AuthTime: fresh, AMR: []string{}}, false},
		{"both: acr and amr", both, auth.Principal{AuthTime: fresh, ACR: "gold", AMR: []string{"mfa"}}, true},
		{"both: acr only", both, auth.Principal{AuthTime: fresh, ACR: "gold"}, false},
		{"both: amr only", both, auth.Principal{AuthTime: fresh, AMR: []string{"hwk"}}, false},
		{"no factor asked", auth.StepUpPolicy{MaxAge: 5 * time.Minute}, auth.Principal{AuthTime: fresh}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.p
			p.Subject = "u"
			got, err := auth.RequireStepUp(ctxWith(&p), tt.policy, now)
			if tt.ok {
				require.NoError(t, err)
				require.Same(t, &p, got)
				return
			}
			var step *auth.StepUpRequiredError
			require.ErrorAs(t, err, &step)
			require.Nil(t, got)
			require.Equal(t, tt.policy.MaxAge, step.MaxAge)
			require.Equal(t, tt.policy.ACR, step.ACRValues)
			require.Equal(t, tt.policy.AMR, step.AMRValues)
		})
	}
}
