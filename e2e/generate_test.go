package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGeneratedCodeIsFresh regenerates the GraphQL code in a copy of the module and
// fails when it differs from what is committed: run `make generate` after editing
// graph/*.graphqls or gqlgen.yml.
func TestGeneratedCodeIsFresh(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Log("regeneration runs in the full suite (make test)")
	}
	wd, err := os.Getwd()
	require.NoError(t, err)
	root := filepath.Dir(wd) // the module, above e2e
	work := t.TempDir()
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(work, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(work, rel), b, 0o644)
	}))

	cmd := exec.Command("go", "tool", "gqlgen", "generate")
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "gqlgen generate failed:\n%s", out)

	for _, dir := range []string{"graph", "models", "resolvers"} {
		entries, err := os.ReadDir(filepath.Join(work, dir))
		require.NoError(t, err)
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".go") {
				continue
			}
			rel := filepath.Join(dir, e.Name())
			fresh, err := os.ReadFile(filepath.Join(work, rel))
			require.NoError(t, err)
			committed, err := os.ReadFile(filepath.Join(root, rel))
			require.NoError(t, err, "%s is generated but missing: run `make generate`", rel)
			require.True(t, bytes.Equal(fresh, committed), "%s is stale: run `make generate` and commit the result", rel)
		}
	}
}
