package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
)

// TestDevIDPRefusesWhatConfigRefuses runs the devidp subcommand with settings that
// config.LoadDevIDP refuses: it stops with status 2 before listening, naming the
// variable.
func TestDevIDPRefusesWhatConfigRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"APP_ENV": "production"}, "APP_ENV=development"},
		{map[string]string{"DEVIDP_ADDR": "0.0.0.0:9096"}, "DEVIDP_ADDR"},
		{map[string]string{"OIDC_AUDIENCE": "two words"}, "OIDC_AUDIENCE"},
	} {
		stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
		require.NoError(t, err)
		require.Equal(t, 2, app.RunDevIDP(context.Background(), envOf(tc.env), stderr))
		require.NoError(t, stderr.Close())
		out, err := os.ReadFile(stderr.Name())
		require.NoError(t, err)
		require.Contains(t, string(out), tc.want)
	}
}
