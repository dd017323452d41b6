package migrations

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm/schema"
)

// owners names, for every table the migrations create, the package (its directory
// in the module) that writes it. Any other package reads it, or asks its owner.
var owners = map[string]string{
	"products":               "catalog",
	"plans":                  "catalog",
	"catalog_version":        "catalog",
	"customers":              "customers",
	"idempotency_keys":       "idempotency",
	"idempotency_tombstones": "idempotency",
	"subscriptions":          "subscriptions",
	"reconciliation_state":   "subscriptions",
	"payments":               "payments",
	"shipments":              "fulfilment",
	"notifications":          "notifications",
	"webhook_events":         "webhooks",
	"webhook_event_subjects": "eventindex",
	"audit_log":              "audit",
	// Outgoing webhooks (00011).
	"webhook_endpoints":              "outbox",
	"webhook_messages":               "outbox",
	"webhook_deliveries":             "outbox",
	"webhook_delivery_attempts":      "outbox",
	"webhook_subscription_sequences": "outbox",
	"rate_limit_buckets":             "ratelimit",
}

// alsoWrites are the writes of a table by a package other than its owner that the
// schema itself assigns: eventindex marks an event indexed in the column
// webhook_events.subjects_indexed_at, which its migration (00009) added for it.
var alsoWrites = map[string][]string{
	"webhook_events": {"eventindex"},
}

// notApplication are directories whose Go code is not the application: tools that
// seed a throwaway database, and models, which declares the persisted types (and
// their table names) that the owners write through.
var notApplication = map[string]bool{"cmd/webhookload": true, "cmd/readload": true, "models": true}

var (
	createTable = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)`)
	sqlWrite    = regexp.MustCompile(`(?i)\b(FOR\s+|DO\s+)?(UPDATE|DELETE\s+FROM|INSERT\s+INTO|TRUNCATE(?:\s+TABLE)?)\s+(?:ONLY\s+)?([a-z_][a-z0-9_]*)`)
)

// TestEveryTableHasOneOwner keeps the map above whole: a new table gets an owner.
func TestEveryTableHasOneOwner(t *testing.T) {
	t.Parallel()
	files, err := fs.Glob(FS, "*.sql")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, f := range files {
		b, err := FS.ReadFile(f)
		require.NoError(t, err)
		for _, m := range createTable.FindAllStringSubmatch(string(b), -1) {
			table := strings.ToLower(m[1])
			seen[table] = true
			require.Contains(t, owners, table, "%s creates %s: name its owner in owners", f, table)
		}
	}
	for table := range owners {
		require.True(t, seen[table], "owners names %s, which no migration creates", table)
	}
}

// TestNoPackageWritesAnotherPackagesTable reads the module's non-test Go files and
// flags a TableName method naming another package's table (a local row type to
// write it through), SQL in a string literal that writes another package's table
// (UPDATE, DELETE FROM, INSERT INTO, TRUNCATE), and a gorm write (Create, Save,
// Update, Updates, Delete...) whose row, Model or Table is another package's table.
func TestNoPackageWritesAnotherPackagesTable(t *testing.T) {
	t.Parallel()
	violations := ownershipViolations(t, "..")
	violations = append(violations, gormWriteViolations(t, "..")...)
	require.Empty(t, violations, "a package writes a table it does not own; call the owner instead")
}

func ownershipViolations(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		if notApplication[pkg] {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		flag := func(pos token.Pos, table, how string) {
			if !writes(pkg, table) {
				out = append(out, fset.Position(pos).String()+": package "+pkg+" "+how+" "+table+", owned by "+owners[table])
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if table, ok := tableNameResult(n); ok {
					flag(n.Pos(), table, "declares a row type of")
				}
			case *ast.BasicLit:
				if n.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(n.Value)
				if err != nil {
					return true
				}
				for _, m := range sqlWrite.FindAllStringSubmatch(s, -1) {
					if m[1] != "" { // FOR UPDATE, DO UPDATE: a lock or an upsert's clause
						continue
					}
					flag(n.Pos(), strings.ToLower(m[3]), "writes")
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

// writes reports whether pkg may write table: it owns it, the schema assigns it
// a column there, or the table is not the application's (River's, say).
func writes(pkg, table string) bool {
	owner, ok := owners[table]
	if !ok || owner == pkg {
		return true
	}
	for _, p := range alsoWrites[table] {
		if p == pkg {
			return true
		}
	}
	return false
}

// tableNameResult is the table a method `TableName() string { return "t" }` names.
func tableNameResult(fn *ast.FuncDecl) (string, bool) {
	if fn.Recv == nil || fn.Name.Name != "TableName" || fn.Body == nil {
		return "", false
	}
	for _, st := range fn.Body.List {
		ret, ok := st.(*ast.ReturnStmt)
		if !ok || len(ret.Results) != 1 {
			continue
		}
		lit, ok := ret.Results[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			continue
		}
		s, err := strconv.Unquote(lit.Value)
		if err == nil {
			return strings.ToLower(s), true
		}
	}
	return "", false
}

// gormWrites are the methods of *gorm.DB that write the table of their receiver's
// Model or Table, or of their row argument.
var gormWrites = map[string]bool{
	"Create": true, "CreateInBatches": true, "Save": true, "FirstOrCreate": true,
	"Update": true, "Updates": true, "UpdateColumn": true, "UpdateColumns": true, "Delete": true,
}

// listed is what go list says of a package.
type listed struct {
	ImportPath, Dir, Export string
	GoFiles                 []string
	Module                  *struct{ Path string }
}

// gormWriteViolations type-checks the module's packages (their imports from the
// build cache's export data) and flags each gorm write of another package's table.
func gormWriteViolations(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Dir,Export,GoFiles,Module", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	absRoot, err := filepath.Abs(root)
	require.NoError(t, err)
	var mine []listed
	exports := map[string]string{}
	var module string
	for dec := json.NewDecoder(bytes.NewReader(raw)); ; {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		exports[p.ImportPath] = p.Export
		if p.Module != nil && p.Dir == absRoot {
			module = p.Module.Path
		}
		if p.Module != nil && strings.HasPrefix(p.Dir, absRoot) {
			mine = append(mine, p)
		}
	}
	require.NotEmpty(t, module, "the module's root package")

	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, errors.New("no export data for " + path)
		}
		return os.Open(f)
	})
	// The row types that name their table themselves, by "package path.Type".
	named := map[string]string{}
	type checked struct {
		pkg   string
		files []*ast.File
		info  *types.Info
	}
	var all []checked
	for _, p := range mine {
		rel, err := filepath.Rel(absRoot, p.Dir)
		require.NoError(t, err)
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			require.NoError(t, err)
			files = append(files, f)
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok {
					continue
				}
				if table, ok := tableNameResult(fn); ok {
					named[p.ImportPath+"."+receiverType(fn)] = table
				}
			}
		}
		info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
		conf := types.Config{Importer: imp}
		_, err = conf.Check(p.ImportPath, fset, files, info)
		require.NoError(t, err, p.ImportPath)
		all = append(all, checked{pkg: filepath.ToSlash(rel), files: files, info: info})
	}

	tableOf := func(info *types.Info, e ast.Expr) string {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			if f := strings.Fields(s); len(f) > 0 {
				return strings.ToLower(f[0])
			}
			return ""
		}
		typ := info.TypeOf(e)
		for typ != nil {
			switch u := typ.(type) {
			case *types.Pointer:
				typ = u.Elem()
				continue
			case *types.Slice:
				typ = u.Elem()
				continue
			case *types.Named:
				obj := u.Obj()
				if obj.Pkg() == nil || !strings.HasPrefix(obj.Pkg().Path(), module) {
					return ""
				}
				if table, ok := named[obj.Pkg().Path()+"."+obj.Name()]; ok {
					return table
				}
				return schema.NamingStrategy{}.TableName(obj.Name())
			}
			return ""
		}
		return ""
	}
	isGormDB := func(info *types.Info, sel *ast.SelectorExpr) bool {
		s := info.Selections[sel]
		if s == nil {
			return false
		}
		recv := s.Recv()
		if p, ok := recv.(*types.Pointer); ok {
			recv = p.Elem()
		}
		n, ok := recv.(*types.Named)
		return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "gorm.io/gorm" && n.Obj().Name() == "DB"
	}

	var out []string
	for _, c := range all {
		if notApplication[c.pkg] {
			continue
		}
		for _, f := range c.files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || !gormWrites[sel.Sel.Name] || !isGormDB(c.info, sel) {
					return true
				}
				var tables []string
				if len(call.Args) > 0 && sel.Sel.Name != "Update" && sel.Sel.Name != "UpdateColumn" {
					tables = append(tables, tableOf(c.info, call.Args[0]))
				}
				// The receiver chain: tx.Model(x).Where(...).Updates(...), tx.Table("t")...
				for x := sel.X; ; {
					inner, ok := x.(*ast.CallExpr)
					if !ok {
						break
					}
					isel, ok := inner.Fun.(*ast.SelectorExpr)
					if !ok {
						break
					}
					if (isel.Sel.Name == "Model" || isel.Sel.Name == "Table") && len(inner.Args) > 0 && isGormDB(c.info, isel) {
						tables = append(tables, tableOf(c.info, inner.Args[0]))
					}
					x = isel.X
				}
				for _, table := range tables {
					if table != "" && !writes(c.pkg, table) {
						out = append(out, fset.Position(call.Pos()).String()+": package "+c.pkg+" writes "+table+" through gorm, owned by "+owners[table])
					}
				}
				return true
			})
		}
	}
	sort.Strings(out)
	return out
}

// receiverType is the name of a method's receiver type.
func receiverType(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return ""
	}
	e := fn.Recv.List[0].Type
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
