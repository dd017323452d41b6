package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// maxSelectionDepth bounds selectsField's walk through fragments (validation has
// already refused cycles); past it the answer is yes, which only reads more.
const maxSelectionDepth = 16

// selectsSubscriptions reports whether the field being resolved (a Customer) has
// subscriptions in its selection, directly or through fragments, so that they can
// be read with the customer. A yes where the field ends up skipped only reads more.
func selectsSubscriptions(ctx context.Context) bool {
	fc := graphql.GetFieldContext(ctx)
	return fc != nil && selectsField(fc.Field.Selections, "subscriptions", 0)
}

// selectsField walks set, through inline fragments and fragment spreads, for a
// field called name. It allocates nothing (gqlgen's CollectFields did, per request).
func selectsField(set ast.SelectionSet, name string, depth int) bool {
	if depth > maxSelectionDepth {
		return true
	}
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			if s.Name == name {
				return true
			}
		case *ast.InlineFragment:
			if selectsField(s.SelectionSet, name, depth+1) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition == nil || selectsField(s.Definition.SelectionSet, name, depth+1) {
				return true
			}
		}
	}
	return false
}
