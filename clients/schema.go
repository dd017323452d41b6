// Package clients holds the client kit of the API: the printed schema
// (schema.graphql), the storefront's operation documents (operations/), the
// TypeScript package generated from both (typescript/) and the manifest of
// persisted documents. Its tests keep the printed schema fresh and every
// document valid against it.
package clients

import (
	"bytes"
	"io"

	"github.com/vektah/gqlparser/v2/formatter"

	"github.com/scoville/scoville/graph"
)

// ManifestPath is the persisted-documents manifest, relative to this directory:
// the sha256 of each document's text mapped to the text, as GraphQL Code
// Generator's client preset writes it (PERSISTED_DOCUMENTS_MANIFEST reads it).
const ManifestPath = "typescript/src/gql/persisted-documents.json"

// RegenerateSchema is the command that rewrites schema.graphql; a failing
// freshness test names it.
const RegenerateSchema = "make clients (or: go run ./cmd/printschema > clients/schema.graphql)"

// PrintSchema writes the executable schema the server serves, every type and
// directive with its description, built-ins left out, in the order gqlparser's
// formatter prints it: the same bytes for the same schema.
func PrintSchema(w io.Writer) error {
	var buf bytes.Buffer
	buf.WriteString("# The Scoville API's schema, printed from the server's executable schema.\n")
	buf.WriteString("# Generated: do not edit. Regenerate with " + RegenerateSchema + ".\n\n")
	formatter.NewFormatter(&buf, formatter.WithIndent("  ")).FormatSchema(graph.NewExecutableSchema(graph.Config{}).Schema())
	_, err := w.Write(buf.Bytes())
	return err
}
