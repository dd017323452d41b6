// Package archtest checks which way imports point (docs/architecture.md).
package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/scoville/scoville"

// services hold the rules; they never reach up to the edges or the composition root.
// A name marked optional may not exist yet.
var services = map[string]bool{ // name -> required
	"catalog": true, "customers": true, "subscriptions": true, "payments": true,
	"fulfilment": true, "notifications": true, "idempotency": true, "audit": true,
	"eventindex": true, "privacy": false, "outbox": true,
}

// above are the packages a service must not import, directly or through another.
var above = []string{"graph", "resolvers", "httpserver", "playground", "app"}

// appImporters are the only packages that may import app: the command and the
// end-to-end tests.
var appImporters = []string{module, module + "/e2e"}

// pkg is the part of `go list -json` the rules read.
type pkg struct {
	ImportPath   string
	Imports      []string
	Deps         []string
	TestImports  []string
	XTestImports []string
}

// under reports whether path is the module's package name or one below it.
func under(path, name string) bool {
	p := module + "/" + name
	return path == p || strings.HasPrefix(path, p+"/")
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = ".." // the module root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// violations lists every import that breaks a rule, as "importer -> imported: rule".
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		direct := slices.Concat(p.Imports, p.TestImports, p.XTestImports)
		if !slices.Contains(appImporters, p.ImportPath) {
			for _, imp := range direct {
				if under(imp, "app") {
					out = append(out, p.ImportPath+" -> "+imp+": only the command and e2e import app")
				}
			}
		}
		for svc := range services {
			if !under(p.ImportPath, svc) {
				continue
			}
			for _, imp := range slices.Concat(p.Deps, direct) {
				for _, up := range above {
					if under(imp, up) {
						out = append(out, p.ImportPath+" -> "+imp+": a service never imports "+up)
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestImportsPointDown fails when a service imports an edge (graph, resolvers,
// httpserver, playground) or the composition root, and when anything but the
// command and e2e imports app.
func TestImportsPointDown(t *testing.T) {
	t.Parallel()
	pkgs := listPackages(t)
	for svc, required := range services {
		found := slices.ContainsFunc(pkgs, func(p pkg) bool { return p.ImportPath == module+"/"+svc })
		if required {
			require.True(t, found, "service package %s is gone: update the list in archtest", svc)
		}
	}
	require.True(t, slices.ContainsFunc(pkgs, func(p pkg) bool { return p.ImportPath == module+"/app" }),
		"the composition root app is gone: update archtest")
	require.Empty(t, violations(pkgs))
}

// TestTheRulesCatchEachKindOfViolation runs the rules on made-up packages, one
// breaking each rule and look-alikes that break none.
func TestTheRulesCatchEachKindOfViolation(t *testing.T) {
	t.Parallel()
	m := func(name string) string { return module + "/" + name }
	cases := []struct {
		name string
		p    pkg
		want int
	}{
		{"a service imports the schema", pkg{ImportPath: m("catalog"), Imports: []string{m("graph")}}, 1},
		{"a service reaches the edge through another package", pkg{ImportPath: m("subscriptions"), Deps: []string{m("httpserver")}}, 1},
		{"a service's sub-package imports resolvers", pkg{ImportPath: m("customers/internal"), Imports: []string{m("resolvers")}}, 1},
		{"a service's test imports the playground", pkg{ImportPath: m("audit"), TestImports: []string{m("playground")}}, 1},
		{"a service imports the composition root", pkg{ImportPath: m("privacy"), XTestImports: []string{m("app")}}, 2},
		{"the webhook route imports app", pkg{ImportPath: m("webhooks"), Imports: []string{m("app")}}, 1},
		{"the command imports app", pkg{ImportPath: module, Imports: []string{m("app")}}, 0},
		{"e2e imports app", pkg{ImportPath: m("e2e"), TestImports: []string{m("app")}}, 0},
		{"an edge imports services", pkg{ImportPath: m("resolvers"), Imports: []string{m("catalog"), m("graph")}}, 0},
		{"look-alike names", pkg{ImportPath: m("catalogue"), Imports: []string{m("graphql"), m("apps"), m("application")}}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Len(t, violations([]pkg{tc.p}), tc.want)
		})
	}
}
