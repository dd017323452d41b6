package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSettingsAreReadOnlyInConfig fails when a non-test Go file outside this package
// reads the environment itself: a call of os.Getenv, os.LookupEnv, os.Environ or
// syscall.Getenv, or of a getenv callback with a variable's name (test support
// packages such as database/dbtest excepted). Every setting,
// subcommands' and tools' included, is read, defaulted and checked here; the rest
// of the code passes getenv on to a Load function.
func TestSettingsAreReadOnlyInConfig(t *testing.T) {
	t.Parallel()
	here, err := filepath.Abs(".")
	require.NoError(t, err)
	root := filepath.Dir(here)
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "the module root is the parent of config")

	direct := map[string]bool{"os.Getenv": true, "os.LookupEnv": true, "os.Environ": true, "syscall.Getenv": true}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Test support packages (dbtest, webhooktest) read the test harness's
			// environment, not the application's settings.
			if path == here || (path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" ||
				d.Name() == "vendor" || strings.HasSuffix(d.Name(), "test"))) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		rel, _ := filepath.Rel(root, path)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			name := ""
			switch fn := call.Fun.(type) {
			case *ast.SelectorExpr:
				if pkg, ok := fn.X.(*ast.Ident); ok {
					name = pkg.Name + "." + fn.Sel.Name
				} else {
					name = fn.Sel.Name
				}
			case *ast.Ident:
				name = fn.Name
			}
			byName := strings.EqualFold(name, "getenv") || strings.HasSuffix(strings.ToLower(name), ".getenv")
			literal := false
			if byName && len(call.Args) == 1 {
				lit, ok := call.Args[0].(*ast.BasicLit)
				literal = ok && lit.Kind == token.STRING
			}
			if direct[name] || literal {
				t.Errorf("%s:%d: reads the environment (%s); read the setting in package config", rel, fset.Position(call.Pos()).Line, name)
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, checked, 50, "the walk must cover the module's Go files")
}
