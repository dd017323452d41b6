package graph

import (
	"fmt"
	"strings"

	"github.com/scoville/scoville/models"
)

// hostileDocument is one shape of attack on parsing and validation, at the limits:
// as large as the token limit allows, or as large as the other limits let through to
// validation.
type hostileDocument struct {
	name  string
	query string
	// codes are the answers that refuse it; which one depends on the limit the shape
	// reaches first.
	codes []string
	vars  map[string]any
}

// repeat joins n copies of what part(i) writes.
func repeat(n int, part func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(part(i))
		b.WriteByte(' ')
	}
	return b.String()
}

func same(s string) func(int) string { return func(int) string { return s } }

const (
	codeValidationFailed = "GRAPHQL_VALIDATION_FAILED"
	codeParseFailed      = "GRAPHQL_PARSE_FAILED"
	// parserMaxDepth is gqlparser's own bound on nesting while parsing.
	parserMaxDepth = 1000
)

// hostileDocuments is the corpus: every shape the issue and OWASP API4 name, each
// sized to just fit the parser's token limit (tokens, below) unless its name says
// otherwise.
func hostileDocuments() []hostileDocument {
	const tokens = DefaultParserTokenLimit
	tooComplex := []string{models.CodeDocumentTooComplex}
	invalid := []string{codeValidationFailed}
	return []hostileDocument{
		{"duplicate fields", "{ " + repeat(tokens-2, same("__typename")) + "}", tooComplex, nil},
		{"duplicate fields in a list field", "{ plans { " + repeat(tokens-5, same("id")) + "} }", tooComplex, nil},
		{"duplicate fields with subselections", "{ " + repeat((tokens-2)/8, same("plans { id price { amount } }")) + "}", tooComplex, nil},
		{"one field with differing arguments", "{ " + repeat((tokens-2)/12, func(i int) string {
			return fmt.Sprintf("adminSubscriptions(first: %d) { pageInfo { hasNextPage } }", i)
		}) + "}", tooComplex, nil},
		{"aliases with differing arguments", "{ " + repeat(DefaultMaxAliases, func(i int) string {
			return fmt.Sprintf("a: adminSubscriptions(first: %d) { edges { cursor } }", i)
		}) + repeat((tokens-2-14*DefaultMaxAliases)/3, same("a: __typename")) + "}", []string{models.CodeAliasLimit}, nil},
		{"aliases within the limit, then duplicates", "{ " + repeat(DefaultMaxAliases, func(i int) string {
			return fmt.Sprintf("a: adminSubscriptions(first: %d) { edges { cursor } }", i)
		}) + repeat(tokens-2-14*DefaultMaxAliases, same("__typename")) + "}", tooComplex, nil},
		{"aliases over the limit", "{ " + repeat((tokens-2)/3, func(i int) string { return fmt.Sprintf("a%d: __typename", i) }) + "}",
			[]string{models.CodeAliasLimit}, nil},
		{"nested inline fragments", "{ " + strings.Repeat("... { ", (tokens-3)/3) + "__typename" + strings.Repeat(" }", (tokens-3)/3) + " }", tooComplex, nil},
		{"nested inline fragments with duplicates", "{ " + strings.Repeat("... { __typename __typename ", (tokens-2)/6) +
			strings.Repeat(" }", (tokens-2)/6) + " }", tooComplex, nil},
		{"named fragment fan-out (bomb)", fragmentBomb(30), []string{models.CodeFieldLimit}, nil},
		{"many fragments spread together", "{ " + repeat(tokens/9, func(i int) string { return fmt.Sprintf("...F%d", i) }) + "}\n" +
			repeat(tokens/9, func(i int) string { return fmt.Sprintf("fragment F%d on Query { __typename }", i) }), tooComplex, nil},
		{"a chain of fragments", "{ ...F0 }\n" + repeat(tokens/9-1, func(i int) string {
			return fmt.Sprintf("fragment F%d on Query { __typename ...F%d }", i, i+1)
		}) + fmt.Sprintf("fragment F%d on Query { __typename }", tokens/9-1), tooComplex, nil},
		{"many operations spreading one fragment", repeat(tokens/12, func(i int) string { return fmt.Sprintf("query Q%d { ...F }", i) }) +
			"fragment F on Query { " + repeat(tokens/2-6, same("__typename")) + "}", tooComplex, nil},
		{"a fragment cycle", "{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }", invalid, nil},
		{"repeated directives", "{ __typename " + repeat((tokens-3)/7, same("@skip(if: false)")) + "}", invalid, nil},
		{"repeated directives on duplicate fields", "{ " + repeat((tokens-2)/8, same("__typename @include(if: true)")) + "}", tooComplex, nil},
		{"deeply nested argument lists", "{ adminSubscriptions(first: " + strings.Repeat("[", parserMaxDepth-10) + "1" +
			strings.Repeat("]", parserMaxDepth-10) + ") { edges { cursor } } }", invalid, nil},
		{"deeply nested input objects", "{ adminSubscriptions(first: " + strings.Repeat("{a: ", (tokens-20)/4) + "1" +
			strings.Repeat("}", (tokens-20)/4) + ") { edges { cursor } } }", invalid, nil},
		{"unknown fields", "{ " + repeat(tokens-2, func(i int) string { return fmt.Sprintf("plan%d", i%10) }) + "}", invalid, nil},
		{"unknown arguments", "{ plans(" + repeat((tokens-8)/3, func(i int) string { return fmt.Sprintf("a%d: 1", i) }) + ") { id } }", invalid, nil},
		{"large variables JSON", `query($v: [Int!]) { adminSubscriptions(first: 1) { edges { cursor } } }`, invalid,
			map[string]any{"v": largeList(5_000), "unused": strings.Repeat("x", MaxBodyBytes-40_000)}},
		{"over the token limit", "{ " + repeat(tokens, same("__typename")) + "}", []string{codeParseFailed}, nil},
	}
}

func largeList(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
