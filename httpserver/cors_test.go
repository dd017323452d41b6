package httpserver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	ran := 0
	h := CORS([]string{"https://shop.example"}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ran++
		w.WriteHeader(http.StatusOK)
	}))
	preflight := func(origin, method, headers string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodOptions, "/graphql", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		if headers != "" {
			req.Header.Set("Access-Control-Request-Headers", headers)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	t.Run("preflight from an allowed origin", func(t *testing.T) {
		rec := preflight("https://shop.example", "POST", "authorization, content-type")
		require.Equal(t, http.StatusNoContent, rec.Code)
		require.Equal(t, "https://shop.example", rec.Header().Get("Access-Control-Allow-Origin"))
		require.Equal(t, "GET, POST", rec.Header().Get("Access-Control-Allow-Methods"))
		require.Equal(t, "Authorization, Content-Type, X-Request-Id", rec.Header().Get("Access-Control-Allow-Headers"))
		require.Equal(t, "600", rec.Header().Get("Access-Control-Max-Age"))
		require.Empty(t, rec.Header().Get("Access-Control-Allow-Credentials"), "no cookies, ever")
		require.Contains(t, rec.Header().Values("Vary"), "Origin")
	})
	refused := []struct{ name, origin, method, headers string }{
		{"another origin", "https://evil.example", "POST", "authorization"},
		{"a look-alike origin", "https://shop.example.evil.example", "POST", ""},
		{"http instead of https", "http://shop.example", "POST", ""},
		{"the null origin", "null", "POST", ""},
		{"a method we do not serve", "https://shop.example", "DELETE", ""},
		{"a header we do not accept", "https://shop.example", "POST", "authorization, x-forwarded-for"},
	}
	for _, tc := range refused {
		t.Run("preflight refused: "+tc.name, func(t *testing.T) {
			rec := preflight(tc.origin, tc.method, tc.headers)
			require.Equal(t, http.StatusForbidden, rec.Code)
			for k := range rec.Header() {
				require.NotContains(t, k, "Access-Control-", "no CORS header at all")
			}
			require.Contains(t, rec.Header().Values("Vary"), "Origin")
		})
	}
	require.Zero(t, ran, "a preflight never reaches the handler")

	t.Run("actual request from an allowed origin", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
		req.Header.Set("Origin", "https://shop.example")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, "https://shop.example", rec.Header().Get("Access-Control-Allow-Origin"))
		require.Contains(t, rec.Header().Get("Access-Control-Expose-Headers"), "Retry-After")
		require.Contains(t, rec.Header().Values("Vary"), "Origin")
	})
	t.Run("actual request from another origin gets nothing to read it with", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
		req.Header.Set("Origin", "https://evil.example")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"))
		require.Contains(t, rec.Header().Values("Vary"), "Origin")
	})
	t.Run("no origins configured allows none", func(t *testing.T) {
		none := CORS(nil, http.NotFoundHandler())
		req := httptest.NewRequest(http.MethodOptions, "/graphql", nil)
		req.Header.Set("Origin", "https://shop.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		rec := httptest.NewRecorder()
		none.ServeHTTP(rec, req)
		require.Equal(t, http.StatusForbidden, rec.Code)
		require.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"))
	})
	t.Run("a plain OPTIONS is no preflight", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodOptions, "/graphql", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
	})
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	want := map[string]string{}
	for _, kv := range securityHeaders {
		// One value and no room for more: an append copies instead of writing into the
		// array every response shares.
		require.Len(t, kv.value, 1, kv.key)
		require.Equal(t, 1, cap(kv.value), kv.key)
		want[kv.key] = kv.value[0]
	}
	require.Contains(t, want["Strict-Transport-Security"], "max-age=")
	require.Contains(t, want["Content-Security-Policy"], "default-src 'none'")
	require.Contains(t, want["Content-Security-Policy"], "frame-ancestors 'none'")
	require.Equal(t, "DENY", want["X-Frame-Options"])
	require.Equal(t, "nosniff", want["X-Content-Type-Options"])
	require.Equal(t, "no-referrer", want["Referrer-Policy"])
	require.Contains(t, want["Permissions-Policy"], "camera=()")

	handlers := map[string]http.Handler{
		"writes a body":     http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }),
		"writes a status":   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		"writes nothing":    http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
		"http.Error":        http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusTeapot) }),
		"flushes (streams)": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.NewResponseController(w).Flush() }),
		// Every response shares the defaults' value slices: changing the header after
		// it was sent must not write into them.
		"adds after writing": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Header().Add("X-Frame-Options", "SAMEORIGIN")
			w.Header()["Referrer-Policy"] = append(w.Header()["Referrer-Policy"], "origin")
		}),
	}
	for name, inner := range handlers {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(SecurityHeaders(inner))
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL)
			require.NoError(t, err)
			resp.Body.Close()
			for k, v := range want {
				require.Equal(t, v, resp.Header.Get(k), k)
			}
		})
	}
	for _, kv := range securityHeaders {
		require.Equal(t, []string{want[kv.key]}, kv.value, "the shared default of %s was changed", kv.key)
	}

	t.Run("a handler's own policy wins, however it set it", func(t *testing.T) {
		own := "default-src 'self'; frame-ancestors 'none'"
		for _, set := range []func(http.Header){
			func(h http.Header) { h.Set("Content-Security-Policy", own) },
			func(h http.Header) { h.Add("Content-Security-Policy", own) },
		} {
			rec := httptest.NewRecorder()
			SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				set(w.Header())
				w.Header().Set("Cache-Control", "no-cache")
				_, _ = w.Write([]byte("<html>"))
			})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/playground", nil))
			require.Equal(t, []string{own}, rec.Header().Values("Content-Security-Policy"))
			require.Equal(t, "no-cache", rec.Header().Get("Cache-Control"))
			require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
		}
	})
}
