package playground

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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

// A page that cannot be built is a 500 that says nothing to the browser, and one
// ERROR line for the operator however many requests meet it.
func TestABuildThatFailsIsLogged(t *testing.T) {
	t.Parallel()
	var logged bytes.Buffer
	h, err := New(Config{Endpoint: "/graphql", Logger: slog.New(slog.NewJSONHandler(&logged, nil))})
	require.NoError(t, err)
	h.load = func() (map[string]*asset, error) { return nil, errors.New("embedded asset vendor/x.js: broken") }
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, DefaultPath, nil))
		require.Equal(t, http.StatusInternalServerError, rec.Code)
		require.NotContains(t, rec.Body.String(), "vendor/x.js")
	}
	require.Equal(t, 1, strings.Count(logged.String(), `"level":"ERROR"`), logged.String())
	require.Contains(t, logged.String(), "vendor/x.js: broken")
}
