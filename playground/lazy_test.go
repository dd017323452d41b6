package playground

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// New reads no asset: the first request does, once, and the page it serves names
// the assets it read.
func TestAssetsAreReadOnTheFirstRequest(t *testing.T) {
	t.Parallel()
	h, err := New(Config{Endpoint: "/graphql"})
	require.NoError(t, err)
	loads := 0
	read := h.load
	h.load = func() (map[string]*asset, error) {
		loads++
		return read()
	}
	for range 2 {
		for _, target := range []string{DefaultPath, DefaultPath + "/static/x/playground.js"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			require.NotEqual(t, http.StatusInternalServerError, rec.Code)
		}
	}
	require.Equal(t, 1, loads, "one read, on the first request")
	c, err := h.build()
	require.NoError(t, err)
	for u := range c.assets {
		require.Contains(t, string(c.page), u)
	}
}
