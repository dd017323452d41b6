package ratelimit

import "github.com/vektah/gqlparser/v2/ast"

// ExportField is the query field charged to ScopeExport, once per selection
// (aliases included).
const ExportField = "exportMyData"

// exportFields counts the root selections of ExportField, through fragments (a
// validated document has no fragment cycles).
func exportFields(set ast.SelectionSet) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == ExportField {
				n++
			}
		case *ast.InlineFragment:
			n += exportFields(s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				n += exportFields(s.Definition.SelectionSet)
			}
		}
	}
	return n
}
