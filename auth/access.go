package auth

import (
	"context"
	"errors"
	"fmt"
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
// older than MaxAge (RFC 9470's max_age), and the token's auth_time is older or absent.
type StepUpRequiredError struct {
	MaxAge time.Duration
}

func (e *StepUpRequiredError) Error() string {
	return fmt.Sprintf("this operation needs a recent login: sign in again (max_age=%d)", int(e.MaxAge.Seconds()))
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
func RequireRecentLogin(ctx context.Context, maxAge time.Duration, now time.Time) (*Principal, error) {
	p, err := RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	const skew = time.Minute
	if p.AuthTime.IsZero() || now.Sub(p.AuthTime) > maxAge || p.AuthTime.After(now.Add(skew)) {
		return nil, &StepUpRequiredError{MaxAge: maxAge}
	}
	return p, nil
}
