package graph

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLoadPersistedDocumentsChecksEveryHash: a manifest must map the sha256 of
// each document's exact text to it; a key standing for another text, a key that
// is not a hex sha256, an empty manifest or one that is not a JSON object is
// refused, so the server does not start with it.
func TestLoadPersistedDocumentsChecksEveryHash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	plans := "query Plans { plans { id } }"
	good := write("good.json", `{"`+documentHash(plans)+`": "`+plans+`"}`)
	docs, err := LoadPersistedDocuments(good)
	require.NoError(t, err)
	require.Equal(t, 1, docs.Len())
	require.Equal(t, []string{plans}, docs.Documents())

	for name, content := range map[string]string{
		"another text":  `{"` + documentHash(plans) + `": "query Plans { me { email } }"}`,
		"upper case":    `{"` + strings.ToUpper(documentHash(plans)) + `": "` + plans + `"}`,
		"sha256 prefix": `{"sha256:` + documentHash(plans) + `": "` + plans + `"}`,
		"empty":         `{}`,
		"a list":        `["` + plans + `"]`,
	} {
		_, err := LoadPersistedDocuments(write(strings.ReplaceAll(name, " ", "-")+".json", content))
		require.Error(t, err, name)
		require.NotContains(t, err.Error(), "me { email }", "%s: the error quotes no document", name)
	}
	_, err = LoadPersistedDocuments(filepath.Join(dir, "missing.json"))
	require.Error(t, err)
}
