package models

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// codesFile is the one file that spells the codes of API.md.
const codesFile = "codes.go"

// definedCodes reads the string constants of codes.go, so a code added there is
// guarded by TestCodesAreSpelledOnlyInCodesGo without touching this test.
func definedCodes(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), codesFile, nil, 0)
	require.NoError(t, err)
	codes := map[string]string{} // value -> constant name
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				require.True(t, ok && lit.Kind == token.STRING, "%s must be a string literal", vs.Names[i].Name)
				s, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				if other, dup := codes[s]; dup {
					t.Errorf("%q is defined twice: %s and %s", s, other, vs.Names[i].Name)
				}
				codes[s] = vs.Names[i].Name
			}
		}
	}
	return codes
}

// TestCodesAreSpelledOnlyInCodesGo fails when a code's literal appears in any other
// non-test, non-generated Go file of the module, alone or inside a longer string (a
// hand-written JSON body): such a copy would drift from the contract unnoticed.
func TestCodesAreSpelledOnlyInCodesGo(t *testing.T) {
	t.Parallel()
	codes := definedCodes(t)
	require.Contains(t, codes, "RATE_LIMITED")
	require.Contains(t, codes, "NOT_FOUND")

	names := make([]string, 0, len(codes))
	for c := range codes {
		names = append(names, regexp.QuoteMeta(c))
	}
	// A code is a whole word: NOT_FOUND inside PERSISTED_QUERY_NOT_FOUND is not it.
	word := regexp.MustCompile(`(?:^|[^A-Z0-9_])(` + strings.Join(names, "|") + `)(?:$|[^A-Z0-9_])`)

	self, err := filepath.Abs(codesFile)
	require.NoError(t, err)
	root := filepath.Dir(filepath.Dir(self))
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "the module root is the parent of models")

	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || path == self {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil // gqlgen's copy of the schema, whose enums list the codes
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				s = lit.Value
			}
			if m := word.FindStringSubmatch(s); m != nil {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d: the code %q is spelled here; use models.%s", rel, fset.Position(lit.Pos()).Line, m[1], codes[m[1]])
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, checked, 50, "the walk must cover the module's Go files")
}
