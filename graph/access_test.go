package graph

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"
)

// publicOperations are the only root fields anyone may call without an access rule.
// Adding to this list is a security decision; make it in review.
var publicOperations = []string{"Query.plans"}

// TestEveryOperationHasAnAccessRule walks the schema so that no Query or Mutation field
// becomes public by accident: each carries @auth, @hasRole or @stepUp, or is listed above.
func TestEveryOperationHasAnAccessRule(t *testing.T) {
	t.Parallel()
	schema := NewExecutableSchema(Config{}).Schema()
	checked := 0
	for _, def := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		if def == nil {
			continue
		}
		root := def.Name
		for _, f := range def.Fields {
			if len(f.Name) >= 2 && f.Name[:2] == "__" {
				continue
			}
			name := root + "." + f.Name
			checked++
			hasRule := slices.ContainsFunc(f.Directives, func(d *ast.Directive) bool {
				return slices.Contains(AccessDirectives, d.Name)
			})
			if slices.Contains(publicOperations, name) {
				require.False(t, hasRule, "%s is on the public list but carries an access directive; remove one", name)
				continue
			}
			require.True(t, hasRule, "%s has no access directive (@auth, @hasRole, @stepUp) and is not on the public list", name)
		}
	}
	require.GreaterOrEqual(t, checked, 2, "the walk found the root fields")
}

// TestProviderIdsAreStaffOnly pins the field-level rule of API.md.
func TestProviderIdsAreStaffOnly(t *testing.T) {
	t.Parallel()
	schema := NewExecutableSchema(Config{}).Schema()
	found := 0
	for _, typ := range schema.Types {
		for _, f := range typ.Fields {
			if len(f.Name) > len("provider") && f.Name[:len("provider")] == "provider" {
				found++
				d := f.Directives.ForName("hasRole")
				require.NotNil(t, d, "%s.%s must carry @hasRole(role: SUPPORT)", typ.Name, f.Name)
				require.Equal(t, "SUPPORT", d.Arguments.ForName("role").Value.Raw, "%s.%s", typ.Name, f.Name)
			}
		}
	}
	require.Positive(t, found)
}
