package auth

import (
	"context"
	"slices"
	"time"

	"github.com/scoville/scoville/requestscope"
)

// Principal is who a verified access token says the caller is. It is only ever built
// from a token that passed verification, so code below the middleware may trust it.
type Principal struct {
	Issuer  string
	Subject string
	Email   string
	// EmailVerified is true only when the token's email_verified claim is the JSON
	// boolean true; a missing claim, false, "true" as a string or any other value
	// leaves it false. An unverified Email is only what the caller typed at the
	// identity provider: it names no one and must not be trusted as theirs.
	EmailVerified bool
	Name          string
	Roles         []Role    // always holds RoleCustomer; SUPPORT and ADMIN from the roles claim
	AuthTime      time.Time // zero when the token carries no auth_time
	// ACR is the acr claim when it is a JSON string, else "".
	ACR string
	// AMR is the amr claim when it is a JSON array of strings only, else nil.
	AMR    []string
	Expiry time.Time
}

// Has reports whether the principal holds need or a role above it.
func (p *Principal) Has(need Role) bool {
	return p != nil && slices.ContainsFunc(p.Roles, func(r Role) bool { return r.Satisfies(need) })
}

// principalSlot is unexported so only this package can put a principal in a context.
var principalSlot = requestscope.NewSlot()

// WithPrincipal returns a context that carries p for the rest of the request.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalSlot, p)
}

// PrincipalFrom returns the caller, or false for an anonymous request.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalSlot).(*Principal)
	return p, ok && p != nil
}
