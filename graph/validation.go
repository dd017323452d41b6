package graph

import (
	"context"
	"errors"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/scoville/scoville/models"
)

// validationWork is what one document's validation did: field-merging work units
// (see budgetedOverlapRule) and nodes the validator's walk visited.
type validationWork struct {
	Comparisons int
	Nodes       int
}

// validationRules is gqlparser's default rule set with OverlappingFieldsCanBeMerged
// replaced by its budgeted copy. count, when set, is given a fresh tally for each
// validation, which a counting rule fills in (tests).
func validationRules(budget int, count func(*validationWork)) func() *rules.Rules {
	return func() *rules.Rules {
		r := rules.NewDefaultRules()
		var work *validationWork
		var spent func(int)
		if count != nil {
			work = &validationWork{}
			count(work)
			spent = func(n int) { work.Comparisons = n }
		}
		r.RemoveRule(overlapRuleName)
		r.AddRule(overlapRuleName, budgetedOverlapRule(budget, spent).RuleFunc)
		if work != nil {
			r.AddRule("CountVisitedNodes", func(observers *core.Events, _ core.AddErrFunc) {
				visit := func() { work.Nodes++ }
				observers.OnField(func(*core.Walker, *ast.Field) { visit() })
				observers.OnInlineFragment(func(*core.Walker, *ast.InlineFragment) { visit() })
				observers.OnFragmentSpread(func(*core.Walker, *ast.FragmentSpread) { visit() })
				observers.OnDirective(func(*core.Walker, *ast.Directive) { visit() })
				observers.OnValue(func(*core.Walker, *ast.Value) { visit() })
				observers.OnVariable(func(*core.Walker, *ast.VariableDefinition) { visit() })
				observers.OnOperation(func(*core.Walker, *ast.OperationDefinition) { visit() })
				observers.OnFragment(func(*core.Walker, *ast.FragmentDefinition) { visit() })
			})
		}
		return r
	}
}

// maxValidationErrors is how many errors about the request itself (parse and
// validation errors, which have no path) one answer carries, as graphql-js's validate
// does by default: past it the document is plainly not a client's mistake, and each
// further error only costs presenting and sending.
const maxValidationErrors = 100

// requestErrorCount counts one operation's request errors, in its Stats.
const requestErrorCount = "RequestErrorCount"

// withErrorCap drops request errors past maxValidationErrors before they are
// presented, the first one dropped becoming a note that the rest were.
func withErrorCap(next graphql.ErrorPresenterFunc) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var g *gqlerror.Error
		if !errors.As(err, &g) || g.Err != nil || len(g.Path) > 0 || !graphql.HasOperationContext(ctx) {
			return next(ctx, err)
		}
		stats := &graphql.GetOperationContext(ctx).Stats
		n, _ := stats.GetExtension(requestErrorCount).(*int)
		if n == nil {
			n = new(int)
			stats.SetExtension(requestErrorCount, n)
		}
		*n++
		switch {
		case *n <= maxValidationErrors:
			return next(ctx, err)
		case *n == maxValidationErrors+1:
			e := next(ctx, err)
			if e == nil {
				return nil
			}
			return &gqlerror.Error{
				Message:    fmt.Sprintf("too many errors: only the first %d are reported", maxValidationErrors),
				Extensions: e.Extensions,
			}
		}
		return nil
	}
}

// withBudgetCode gives the error of a spent validation budget its own code,
// models.CodeDocumentTooComplex, in place of gqlgen's generic validation code: the client
// must send a simpler document, not fix a mistake.
func withBudgetCode(next graphql.ErrorPresenterFunc) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		e := next(ctx, err)
		if e == nil || e.Rule != ruleValidationBudget {
			return e
		}
		c := *e
		c.Extensions = map[string]any{"code": models.CodeDocumentTooComplex}
		return &c
	}
}
