package ratelimit

import "github.com/vektah/gqlparser/v2/ast"

// ExportField is the query field charged to ScopeExport, once per selection
// (aliases included).
const ExportField = "exportMyData"

// exportFields counts the root selections of ExportField, through fragments (a
// validated document has no fragment cycles).
func exportFields(set ast.SelectionSet) int {
	return rootFields(set, func(f *ast.Field) bool { return f.Name == ExportField })
}

// rootFields counts the fields of set that match, each alias once, through inline
// fragments and fragment spreads (a validated document has no fragment cycles); it
// does not look into the fields' own selections. Identical selections that GraphQL
// merges into one field are counted as written.
func rootFields(set ast.SelectionSet, match func(*ast.Field) bool) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if match(s) {
				n++
			}
		case *ast.InlineFragment:
			n += rootFields(s.SelectionSet, match)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				n += rootFields(s.Definition.SelectionSet, match)
			}
		}
	}
	return n
}
