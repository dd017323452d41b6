package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// maxSelectionDepth bounds selectsField's walk through fragments (validation has
// already refused cycles); past it the answer is yes, which only reads more.
const maxSelectionDepth = 16

// subscriptionReads reports what the field being resolved (a Customer) selects of
// its subscriptions, directly or through fragments and under any alias: whether
// it selects them at all (so that they are read with the customer), and whether
// any selection of them asks for the shipping address (so that it is opened). A
// yes where the field ends up skipped only reads more.
func subscriptionReads(ctx context.Context) (subscriptions, addresses bool) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return false, false
	}
	eachField(fc.Field.Selections, "subscriptions", 0, func(f *ast.Field) bool {
		subscriptions = true
		addresses = f == nil || selectsField(f.SelectionSet, "shippingAddress", 0)
		return !addresses
	})
	return subscriptions, addresses
}

// eachField calls fn with each field called name in set, through inline
// fragments and fragment spreads, until fn returns false; with nil where it
// cannot tell (past maxSelectionDepth, a spread without its definition). It
// reports whether to go on.
func eachField(set ast.SelectionSet, name string, depth int, fn func(*ast.Field) bool) bool {
	if depth > maxSelectionDepth {
		return fn(nil)
	}
	for _, s := range set {
		var more bool
		switch s := s.(type) {
		case *ast.Field:
			more = s.Name != name || fn(s)
		case *ast.InlineFragment:
			more = eachField(s.SelectionSet, name, depth+1, fn)
		case *ast.FragmentSpread:
			if s.Definition == nil {
				more = fn(nil)
			} else {
				more = eachField(s.Definition.SelectionSet, name, depth+1, fn)
			}
		default:
			more = true
		}
		if !more {
			return false
		}
	}
	return true
}

// selectsField reports whether set selects a field called name, through inline
// fragments and fragment spreads (yes where it cannot tell). It allocates nothing
// (gqlgen's CollectFields did, per request).
func selectsField(set ast.SelectionSet, name string, depth int) bool {
	return !eachField(set, name, depth, func(*ast.Field) bool { return false })
}
