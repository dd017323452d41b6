package auth

import (
	"fmt"
	"io"
	"strconv"
)

// Role is a level of access. Roles nest: ADMIN can do everything SUPPORT can, and
// every authenticated principal is a CUSTOMER, so checks ask "at least this role".
type Role string

// The roles of API.md. Token role names are the lower-case forms of these.
const (
	RoleCustomer Role = "CUSTOMER"
	RoleSupport  Role = "SUPPORT"
	RoleAdmin    Role = "ADMIN"
)

// rank orders roles so that a higher role satisfies every lower one.
var rank = map[Role]int{RoleCustomer: 1, RoleSupport: 2, RoleAdmin: 3}

// IsValid reports whether r is one of the three roles; the GraphQL layer refuses others.
func (r Role) IsValid() bool { return rank[r] > 0 }

// Satisfies reports whether holding r grants what need asks for.
func (r Role) Satisfies(need Role) bool { return r.IsValid() && rank[r] >= rank[need] }

// String returns the GraphQL enum value.
func (r Role) String() string { return string(r) }

// UnmarshalGQL lets gqlgen bind the schema's Role enum to this type.
func (r *Role) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("role must be a string")
	}
	*r = Role(s)
	if !r.IsValid() {
		return fmt.Errorf("%q is not a valid Role", s)
	}
	return nil
}

// MarshalGQL writes the enum value as gqlgen expects.
func (r Role) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(r))) }
