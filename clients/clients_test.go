package clients

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/scoville/scoville/graph"
)

// TestSchemaIsFresh fails when schema.graphql is not what the server serves: a
// change to graph/*.graphqls must be printed again, so every generated client sees it.
func TestSchemaIsFresh(t *testing.T) {
	t.Parallel()
	var want bytes.Buffer
	require.NoError(t, PrintSchema(&want))
	got, err := os.ReadFile("schema.graphql")
	require.NoError(t, err)
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("clients/schema.graphql is stale: it differs from the executable schema. Regenerate it with %s and commit it, with the TypeScript output that follows from it.", RegenerateSchema)
	}
}

// TestSchemaFileIsTheServedSchema reads schema.graphql back and finds every type
// and field of the executable schema in it, so the printer leaves nothing out.
func TestSchemaFileIsTheServedSchema(t *testing.T) {
	t.Parallel()
	printed, err := os.ReadFile("schema.graphql")
	require.NoError(t, err)
	got, gqlErr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: string(printed)})
	require.NoError(t, gqlErr)
	served := graph.NewExecutableSchema(graph.Config{}).Schema()
	for name, def := range served.Types {
		if def.BuiltIn {
			continue
		}
		other := got.Types[name]
		require.NotNil(t, other, "type %s", name)
		require.Equal(t, def.Kind, other.Kind, "type %s", name)
		require.Len(t, other.Fields, len(def.Fields), "fields of %s", name)
		require.Len(t, other.EnumValues, len(def.EnumValues), "values of %s", name)
	}
	require.Equal(t, served.Subscription.Name, got.Subscription.Name)
}

// operations reads every document of operations/ as one source each.
func operations(t *testing.T) []*ast.Source {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("operations", "*.graphql"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	sort.Strings(files)
	var out []*ast.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out = append(out, &ast.Source{Name: f, Input: string(b)})
	}
	return out
}

// TestOperationsAreValid validates every operation document against the schema
// with gqlparser's rules (fragments may live in another file), so no document can
// rot when the schema changes.
func TestOperationsAreValid(t *testing.T) {
	t.Parallel()
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	doc := &ast.QueryDocument{}
	for _, src := range operations(t) {
		d, err := parser.ParseQuery(src)
		require.NoError(t, err, src.Name)
		doc.Operations = append(doc.Operations, d.Operations...)
		doc.Fragments = append(doc.Fragments, d.Fragments...)
	}
	require.Empty(t, validator.ValidateWithRules(schema, doc, nil), "the operation documents do not validate against the schema")
	for _, op := range doc.Operations {
		require.NotEmpty(t, op.Name, "every operation is named (the generated client and the manifest key on names)")
	}
}

// TestOperationsCoverTheStorefront names the flows the kit promises; a document
// removed or renamed fails here, not in a storefront.
func TestOperationsCoverTheStorefront(t *testing.T) {
	t.Parallel()
	have := map[string]bool{}
	for _, src := range operations(t) {
		d, err := parser.ParseQuery(src)
		require.NoError(t, err, src.Name)
		for _, op := range d.Operations {
			for _, sel := range op.SelectionSet {
				have[string(op.Operation)+" "+sel.(*ast.Field).Name] = true
			}
		}
	}
	for _, want := range []string{
		"query plans", "query me", "query subscription", "query exportMyData",
		"mutation createSubscription", "mutation startCheckout", "mutation changeSubscriptionPlan",
		"mutation pauseSubscription", "mutation resumeSubscription", "mutation cancelSubscription",
		"mutation updateShippingAddress", "mutation createBillingPortalSession", "mutation deleteMyAccount",
		"subscription subscriptionUpdated",
	} {
		require.True(t, have[want], "no operation document for %s", want)
	}
}

// TestManifestMatchesOperations checks the committed persisted-documents
// manifest against the documents: each entry is the sha256 of its text
// (graph.LoadPersistedDocuments), validates against the schema, and every
// operation of operations/ is in it under its name. CI regenerates it and
// compares bytes as well (scripts/clients-check.sh).
func TestManifestMatchesOperations(t *testing.T) {
	t.Parallel()
	manifest, err := graph.LoadPersistedDocuments(ManifestPath)
	require.NoError(t, err)
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	inManifest := map[string]bool{}
	for _, text := range manifest.Documents() {
		doc, errs := gqlparser.LoadQueryWithRules(schema, text, nil)
		require.Empty(t, errs, "a manifest document does not validate: %.200s", text)
		for _, op := range doc.Operations {
			inManifest[op.Name] = true
		}
	}
	for _, src := range operations(t) {
		d, err := parser.ParseQuery(src)
		require.NoError(t, err)
		for _, op := range d.Operations {
			require.True(t, inManifest[op.Name], "operation %s (%s) is not in %s: regenerate with make clients", op.Name, src.Name, ManifestPath)
		}
	}
}
