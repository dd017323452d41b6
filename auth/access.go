package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors the GraphQL error presenter maps to API.md codes. Callers compare with errors.Is.
var (
	// ErrUnauthenticated: the operation needs a verified token and the request has none.
	ErrUnauthenticated = errors.New("authentication required: send an access token as 'Authorization: Bearer <token>'")
	// ErrForbidden: the caller is known but lacks the role the operation needs.
	ErrForbidden = errors.New("forbidden: your role does not allow this operation")
)

// StepUpRequiredError asks the client to sign in again: the operation needs a login no
// older than MaxAge (RFC 9470's max_age), and the token's auth_time is older or absent,
// or the login lacks a factor the policy asks for. ACRValues and AMRValues repeat the
// policy's lists (empty when it asks for none), so the client knows what to request.
type StepUpRequiredError struct {
	MaxAge    time.Duration
	ACRValues []string
	AMRValues []string
}

func (e *StepUpRequiredError) Error() string {
	if len(e.ACRValues) == 0 && len(e.AMRValues) == 0 {
		return fmt.Sprintf("this operation needs a recent login: sign in again (max_age=%d)", int(e.MaxAge.Seconds()))
	}
	return fmt.Sprintf("this operation needs a recent login with a stronger authentication: sign in again (max_age=%d, see acrValues/amrValues)", int(e.MaxAge.Seconds()))
}

// StepUpPolicy is what a step-up operation needs from the caller's login (SUB-2).
type StepUpPolicy struct {
	// MaxAge bounds how long ago the login (auth_time) may have happened.
	MaxAge time.Duration
	// ACR, when not empty, lists the authentication context classes that count: the
	// token's acr must be a string equal (exactly, case-sensitively) to one of them.
	ACR []string
	// AMR, when not empty, lists the authentication methods that count: the token's
	// amr must be an array of strings of which at least one equals (exactly) one of
	// them. When both ACR and AMR are set, the login must satisfy both.
	AMR []string
}

// RequireAuthenticated returns the caller, or ErrUnauthenticated for an anonymous request.
func RequireAuthenticated(ctx context.Context) (*Principal, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return nil, ErrUnauthenticated
	}
	return p, nil
}

// RequireRole refuses anonymous callers with ErrUnauthenticated and callers below need
// with ErrForbidden.
func RequireRole(ctx context.Context, need Role) (*Principal, error) {
	p, err := RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	if !p.Has(need) {
		return nil, ErrForbidden
	}
	return p, nil
}

// RequireRecentLogin refuses a caller whose login (auth_time) is missing or older than
// maxAge at now. A login stamped in the future beyond a small skew counts as missing.
// It is RequireStepUp with a policy that asks for no factor.
func RequireRecentLogin(ctx context.Context, maxAge time.Duration, now time.Time) (*Principal, error) {
	return RequireStepUp(ctx, StepUpPolicy{MaxAge: maxAge}, now)
}

// RequireStepUp refuses anonymous callers with ErrUnauthenticated, and with a
// *StepUpRequiredError naming the whole policy a caller whose login (auth_time) is
// missing, older than policy.MaxAge at now or stamped in the future beyond a small
// skew, or lacks the acr or amr the policy asks for.
func RequireStepUp(ctx context.Context, policy StepUpPolicy, now time.Time) (*Principal, error) {
	p, err := RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	const skew = time.Minute
	recent := !p.AuthTime.IsZero() && now.Sub(p.AuthTime) <= policy.MaxAge && !p.AuthTime.After(now.Add(skew))
	acrOK := len(policy.ACR) == 0 || slices.Contains(policy.ACR, p.ACR)
	amrOK := len(policy.AMR) == 0 || slices.ContainsFunc(p.AMR, func(m string) bool { return slices.Contains(policy.AMR, m) })
	if !recent || !acrOK || !amrOK {
		return nil, &StepUpRequiredError{MaxAge: policy.MaxAge, ACRValues: policy.ACR, AMRValues: policy.AMR}
	}
	return p, nil
}
