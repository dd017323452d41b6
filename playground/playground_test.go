package playground_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/playground"
)

const issuer = "https://login.example.com/realms/scoville"

func newServer(t *testing.T, cfg playground.Config) *httptest.Server {
	t.Helper()
	h, err := playground.New(cfg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("GET /playground", h)
	mux.Handle("GET /playground/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, rawURL string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	tr := &http.Transport{DisableCompression: true} // see Content-Encoding as sent
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

var assetRef = regexp.MustCompile(`(?:src|href)="(/playground/static/[0-9a-f]{16}/[^"]+)"`)

// pageAssets returns the asset URLs the page references, in order.
func pageAssets(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	for _, m := range assetRef.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestPageAndPolicy(t *testing.T) {
	t.Parallel()
	srv := newServer(t, playground.Config{Endpoint: "/graphql", IssuerURL: issuer, ClientID: "scoville-playground", Production: true})

	resp, body := get(t, srv.URL+"/playground", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Equal(t,
		"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "+
			"connect-src 'self' https://login.example.com; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		resp.Header.Get("Content-Security-Policy"))

	page := string(body)
	require.NotContains(t, page, "<script>", "no inline script")
	require.NotRegexp(t, `<script(?:\s[^>]*)?>[^<]`, page, "every script element is empty, loading a file")
	require.NotRegexp(t, `\son[a-z]+=`, page, "no inline event handler")
	require.NotContains(t, page, "<style", "no inline style element")
	require.NotContains(t, page, "style=", "no inline style attribute")
	require.Contains(t, page, `data-issuer="`+issuer+`"`)
	require.Contains(t, page, `data-client-id="scoville-playground"`)
	require.Contains(t, page, `data-endpoint="/graphql"`)
	require.Contains(t, page, "production")
	require.NotContains(t, page, "Sign-in is not configured")

	assets := pageAssets(t, page)
	require.Len(t, assets, 7, "two stylesheets, four scripts and the licenses")
}

func TestPolicyWithoutIssuer(t *testing.T) {
	t.Parallel()
	require.Equal(t,
		"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "+
			"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		playground.ContentSecurityPolicy(""))
	srv := newServer(t, playground.Config{Endpoint: "/graphql"})
	resp, body := get(t, srv.URL+"/playground", nil)
	require.Equal(t, playground.ContentSecurityPolicy(""), resp.Header.Get("Content-Security-Policy"))
	require.Contains(t, string(body), "Sign-in is not configured")
	require.Contains(t, string(body), "Paste a token in the Headers tab", "development explains how to use a token anyway")
}

func TestNoClientIDInProductionSaysSo(t *testing.T) {
	t.Parallel()
	srv := newServer(t, playground.Config{Endpoint: "/graphql", IssuerURL: issuer, Production: true})
	resp, body := get(t, srv.URL+"/playground", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "Sign-in is not configured (set PLAYGROUND_OIDC_CLIENT_ID")
	require.Contains(t, string(body), `data-client-id=""`)
}

func TestAssets(t *testing.T) {
	t.Parallel()
	srv := newServer(t, playground.Config{Endpoint: "/graphql", IssuerURL: issuer, ClientID: "c"})
	_, body := get(t, srv.URL+"/playground", nil)
	wantType := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
		".txt": "text/plain; charset=utf-8",
	}
	for _, u := range pageAssets(t, string(body)) {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			ext := u[strings.LastIndex(u, "."):]
			resp, plain := get(t, srv.URL+u, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, wantType[ext], resp.Header.Get("Content-Type"))
			require.Equal(t, playground.AssetCacheControl, resp.Header.Get("Cache-Control"))
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			require.Empty(t, resp.Header.Get("Content-Encoding"))
			require.NotEmpty(t, plain)
			etag := resp.Header.Get("ETag")
			require.NotEmpty(t, etag)

			// A revalidation with the ETag is answered 304.
			resp, _ = get(t, srv.URL+u, http.Header{"If-None-Match": {etag}})
			require.Equal(t, http.StatusNotModified, resp.StatusCode)

			// gzip when asked for, the same bytes once decompressed.
			resp, gz := get(t, srv.URL+u, http.Header{"Accept-Encoding": {"gzip, br"}})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, resp.Header.Values("Vary"), "Accept-Encoding")
			if resp.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(strings.NewReader(string(gz)))
				require.NoError(t, err)
				unzipped, err := io.ReadAll(zr)
				require.NoError(t, err)
				require.Equal(t, plain, unzipped)
				require.NotEqual(t, etag, resp.Header.Get("ETag"), "each encoding has its own ETag")
			}
			resp, _ = get(t, srv.URL+u, http.Header{"Accept-Encoding": {"gzip;q=0"}})
			require.Empty(t, resp.Header.Get("Content-Encoding"), "q=0 refuses gzip")
		})
	}
}

func TestLargeAssetsAreCompressed(t *testing.T) {
	t.Parallel()
	srv := newServer(t, playground.Config{Endpoint: "/graphql"})
	_, body := get(t, srv.URL+"/playground", nil)
	for _, u := range pageAssets(t, string(body)) {
		if strings.HasSuffix(u, "/graphiql.min.js") {
			resp, gz := get(t, srv.URL+u, http.Header{"Accept-Encoding": {"gzip"}})
			require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
			require.Less(t, len(gz), 700_000, "GraphiQL goes compressed")
			return
		}
	}
	t.Fatal("the page does not load graphiql.min.js")
}

func TestUnknownPathsAre404(t *testing.T) {
	t.Parallel()
	srv := newServer(t, playground.Config{Endpoint: "/graphql"})
	_, body := get(t, srv.URL+"/playground", nil)
	assets := pageAssets(t, string(body))
	require.NotEmpty(t, assets)
	stale := regexp.MustCompile(`/static/[0-9a-f]{16}/`).ReplaceAllString(assets[0], "/static/0000000000000000/")
	for _, p := range []string{
		"/playground/static/",
		"/playground/page.html",
		"/playground/static/page.html",
		"/playground/assets/playground.js",
		"/playground/static/0000000000000000/page.html",
		stale,
		"/playground/x",
	} {
		resp, _ := get(t, srv.URL+p, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	h, err := playground.New(playground.Config{Endpoint: "/graphql"})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/playground", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

// absoluteURLs returns the absolute http(s) URLs in text (plain string search: a
// regular expression over the 1.4 MB bundle is slow under the race detector).
func absoluteURLs(text string) []string {
	var out []string
	for i := 0; ; {
		j := strings.Index(text[i:], "http")
		if j < 0 {
			return out
		}
		start := i + j
		rest := text[start:]
		if !strings.HasPrefix(rest, "http://") && !strings.HasPrefix(rest, "https://") {
			i = start + 4
			continue
		}
		end := strings.IndexAny(rest, " \t\n\"'<>)\\,;{}`")
		if end < 0 {
			end = len(rest)
		}
		out = append(out, rest[:end])
		i = start + end
	}
}

// documentationHosts are the hosts whose URLs appear in the vendored bundles as
// text the code never fetches: XML namespaces React and GraphiQL pass to
// createElementNS, links in error messages and comments of the bundled libraries.
// A new host (a CDN after an upgrade, say) fails TestNoExternalURLs until someone
// has looked at how it is used.
var documentationHosts = map[string]bool{
	"www.w3.org":       true, // SVG/XLink/XHTML namespace names
	"json-schema.org":  true, // JSON Schema $schema identifier in graphql-language-service
	"reactjs.org":      true, // React error decoder links in messages
	"github.com":       true, // issue links in graphql-js messages
	"yarnpkg.com":      true, // graphql-js "multiple instances" message
	"www.framer.com":   true, // framer-motion warning text
	"radix-ui.com":     true, // Radix accessibility warning text
	"en.wikipedia.org": true, // markdown-it comment about entities
	"commonmark.org":   true, // markdown-it link-matching text
	"codemirror.net":   true, // CodeMirror banner
	"":                 true, // "http://" prefixes the linkifier tests text against
}

// cdnHosts must never appear in anything served, whatever the context.
var cdnHosts = []string{"unpkg.com", "cdn.jsdelivr.net", "cdnjs.cloudflare.com", "fonts.googleapis.com",
	"fonts.gstatic.com", "esm.sh", "cdn.skypack.dev", "jspm.io"}

func TestNoExternalURLs(t *testing.T) {
	t.Parallel()
	srv := newServer(t, playground.Config{Endpoint: "/graphql", IssuerURL: issuer, ClientID: "c"})
	_, body := get(t, srv.URL+"/playground", nil)
	page := string(body)

	check := func(name, text string, vendored bool) {
		t.Helper()
		lower := strings.ToLower(text)
		for _, h := range cdnHosts {
			require.False(t, strings.Contains(lower, h), "%s names the CDN %s", name, h)
		}
		for _, raw := range absoluteURLs(text) {
			if strings.HasPrefix(raw, issuer) {
				continue // the configured issuer, on the page only
			}
			require.True(t, vendored, "%s has an external URL: %s", name, raw)
			u, err := url.Parse(raw)
			require.NoError(t, err, raw)
			require.True(t, documentationHosts[u.Host], "%s has an external URL on a host not known to be documentation only: %s", name, raw)
		}
		// Nothing in a stylesheet loads from elsewhere: url() holds data: or a fragment.
		if strings.HasSuffix(name, ".css") {
			for rest := text; ; {
				k := strings.Index(rest, "url(")
				if k < 0 {
					break
				}
				rest = strings.TrimLeft(rest[k+4:], " \"'")
				require.True(t, strings.HasPrefix(rest, "data:") || strings.HasPrefix(rest, "#"), "%s loads %.60s", name, rest)
			}
		}
		require.NotContains(t, text, "@import", name)
	}

	check("the page", strings.ReplaceAll(page, `data-issuer="`+issuer+`"`, ""), false)
	require.Equal(t, 1, strings.Count(page, "https://"), "the issuer is the page's only absolute URL")
	for _, u := range pageAssets(t, page) {
		_, asset := get(t, srv.URL+u, nil)
		vendored := strings.Contains(u, ".min.") || strings.HasSuffix(u, ".txt")
		if strings.HasSuffix(u, ".txt") {
			continue // the licenses are text for people, never loaded by the page
		}
		check(u, string(asset), vendored)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]playground.Config{
		"no endpoint":                {},
		"relative issuer":            {Endpoint: "/graphql", IssuerURL: "login.example.com"},
		"issuer with other scheme":   {Endpoint: "/graphql", IssuerURL: "ftp://login.example.com"},
		"issuer origin with a quote": {Endpoint: "/graphql", IssuerURL: "https://login.example.com'x/"},
		"client without issuer":      {Endpoint: "/graphql", ClientID: "c"},
		"path with trailing slash":   {Endpoint: "/graphql", Path: "/playground/"},
		"relative path":              {Endpoint: "/graphql", Path: "playground"},
	} {
		_, err := playground.New(cfg)
		require.Error(t, err, name)
	}
}
