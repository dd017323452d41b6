// Package playground serves the admin GraphQL IDE (GraphiQL) at /playground. Every
// asset is embedded in the binary, so the page loads nothing from a third party, and
// it runs under a Content-Security-Policy that allows scripts from this server only.
// The admin signs in from the browser through the OIDC issuer (authorization code
// with PKCE S256, a public client); the access token stays in the tab's memory and
// sessionStorage, never in a cookie, and every GraphQL request carries it as a
// bearer token.
package playground

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"
)

//go:embed assets/page.html assets/playground.js assets/playground.css assets/vendor
var files embed.FS

// DefaultPath is where the IDE is served unless Config.Path says otherwise; the
// redirect URI registered at the issuer is the server's origin followed by it.
const DefaultPath = "/playground"

// Scopes are what the sign-in asks the issuer for.
const Scopes = "openid profile email"

// Config says where the IDE sends queries and how it signs in.
type Config struct {
	// Path is where the handler is mounted (default DefaultPath); assets are served
	// under Path + "/static/".
	Path string
	// Endpoint is the GraphQL URL path the IDE posts to, e.g. /graphql.
	Endpoint string
	// IssuerURL is the OIDC issuer (OIDC_ISSUER_URL); the browser reads its discovery
	// document and exchanges the code at its token endpoint, so its origin is the
	// only one besides this server's that the policy lets the page connect to.
	IssuerURL string
	// ClientID is the issuer's public client for the IDE (PLAYGROUND_OIDC_CLIENT_ID);
	// empty disables sign-in and the page says how to enable it.
	ClientID string
	// Production only changes the wording on the page; the policy is the same.
	Production bool
	// Logger hears once of a page that could not be built (nil: discarded), which
	// is then answered with a bare 500 on every request.
	Logger *slog.Logger
}

// Handler serves the page and its assets. Build it with New.
type Handler struct {
	path   string
	csp    string
	build  func() (*content, error) // once, on the first request
	load   func() (map[string]*asset, error)
	logger *slog.Logger
	// logFailure logs a failed build once: the failure is kept, and a line per
	// request would let any client fill the log.
	logFailure sync.Once
}

// content is what the first request builds: the assets are read and compressed
// only when someone opens the IDE, so a server nobody opens it on holds none of
// them in memory.
type content struct {
	page   []byte
	assets map[string]*asset // by URL path
}

type asset struct {
	contentType string
	hash        string // of body, in the URL
	etag        string
	body        []byte
	gzipped     []byte // nil when compression does not pay
}

// assetTypes lists what may be served from the embedded tree, with its type; any
// other file (the page template) is never served as an asset.
var assetTypes = map[string]string{
	"playground.js":                      "text/javascript; charset=utf-8",
	"playground.css":                     "text/css; charset=utf-8",
	"vendor/react.production.min.js":     "text/javascript; charset=utf-8",
	"vendor/react-dom.production.min.js": "text/javascript; charset=utf-8",
	"vendor/graphiql.min.js":             "text/javascript; charset=utf-8",
	"vendor/graphiql.min.css":            "text/css; charset=utf-8",
	"vendor/THIRD_PARTY_LICENSES.txt":    "text/plain; charset=utf-8",
}

// AssetCacheControl is sent with every asset: their URLs carry a hash of their
// content, so a changed file gets a new URL and browsers may keep each for a year.
const AssetCacheControl = "public, max-age=31536000, immutable"

// PageCacheControl is sent with the page: it names the current asset URLs and the
// configuration, so it is never reused from a cache.
const PageCacheControl = "no-store"

// originPattern is what an issuer origin must look like to be written into the
// policy: no space, quote, comma or semicolon can reach the header.
var originPattern = regexp.MustCompile(`^https?://[A-Za-z0-9.\-]+(:[0-9]+)?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]+)?$`)

// New checks cfg and builds the handler. The embedded assets are hashed and
// compressed (once per process) and the page rendered on the handler's first
// request, not here.
func New(cfg Config) (*Handler, error) {
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if !strings.HasPrefix(cfg.Path, "/") || strings.HasSuffix(cfg.Path, "/") {
		return nil, errors.New("playground: Path must start with / and not end with /")
	}
	if cfg.Endpoint == "" {
		return nil, errors.New("playground: Endpoint is required")
	}
	issuerOrigin := ""
	if cfg.IssuerURL != "" {
		u, err := url.Parse(cfg.IssuerURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("playground: IssuerURL must be an absolute http(s) URL")
		}
		issuerOrigin = u.Scheme + "://" + u.Host
		if !originPattern.MatchString(issuerOrigin) {
			return nil, errors.New("playground: IssuerURL has an origin that cannot be written into a Content-Security-Policy")
		}
	}
	if cfg.ClientID != "" && cfg.IssuerURL == "" {
		return nil, errors.New("playground: a client id needs an IssuerURL to sign in with")
	}

	tmpl, err := template.ParseFS(files, "assets/page.html")
	if err != nil {
		return nil, fmt.Errorf("playground: page template: %w", err)
	}
	data := pageData{
		Title:       "Scoville Playground",
		Environment: "development",
		Path:        cfg.Path,
		Endpoint:    cfg.Endpoint,
		Issuer:      cfg.IssuerURL,
		ClientID:    cfg.ClientID,
		Scopes:      Scopes,
	}
	if cfg.Production {
		data.Title = "Scoville Playground (production)"
		data.Environment = "production"
	}
	switch {
	case cfg.ClientID == "" && cfg.Production:
		data.Notice = "Sign-in is not configured (set PLAYGROUND_OIDC_CLIENT_ID to the issuer's public client for the Playground). " +
			"Requests go without a token unless you add an Authorization header in the Headers tab."
	case cfg.ClientID == "":
		data.Notice = `Sign-in is not configured (PLAYGROUND_OIDC_CLIENT_ID is empty). Paste a token in the Headers tab: {"Authorization": "Bearer <token>"} (make run prints some).`
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{path: cfg.Path, csp: ContentSecurityPolicy(issuerOrigin), load: loadAssets, logger: logger}
	h.build = sync.OnceValues(func() (*content, error) { return render(h.load, tmpl, data) })
	return h, nil
}

// render builds the page for data, with the assets' URLs, and the assets by URL.
func render(load func() (map[string]*asset, error), tmpl *template.Template, data pageData) (*content, error) {
	all, err := load()
	if err != nil {
		return nil, err
	}
	c := &content{assets: map[string]*asset{}}
	data.URL = map[string]string{}
	for name, a := range all {
		u := data.Path + "/static/" + a.hash + "/" + path.Base(name)
		c.assets[u] = a
		data.URL[name] = u
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("playground: render page: %w", err)
	}
	c.page = buf.Bytes()
	return c, nil
}

// ContentSecurityPolicy is the policy of the page: scripts, styles, images and fonts
// from this server only (data: images and fonts for GraphiQL's embedded icons and
// typefaces), no inline script, connections to this server and, when not empty, to
// issuerOrigin (discovery and the token exchange), no framing, no plugins, no <base>,
// and no form posts (sign-in is a top-level navigation).
func ContentSecurityPolicy(issuerOrigin string) string {
	connect := "'self'"
	if issuerOrigin != "" {
		connect += " " + issuerOrigin
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; " +
		"connect-src " + connect + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

type pageData struct {
	Title, Environment, Notice               string
	Path, Endpoint, Issuer, ClientID, Scopes string
	URL                                      map[string]string
}

// ServeHTTP serves the page at Path and the assets under Path/static/; anything
// else under Path is 404. Mount it for both Path and Path + "/".
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	c, err := h.build()
	if err != nil {
		h.logFailure.Do(func() { h.logger.ErrorContext(r.Context(), "playground: the IDE could not be built", "err", err) })
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if r.URL.Path == h.path {
		hd := w.Header()
		hd.Set("Content-Security-Policy", h.csp)
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Cache-Control", PageCacheControl)
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(c.page))
		return
	}
	a, ok := c.assets[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", AssetCacheControl)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Add("Vary", "Accept-Encoding")
	body, etag := a.body, a.etag
	if a.gzipped != nil && acceptsGzip(r) {
		hd.Set("Content-Encoding", "gzip")
		body, etag = a.gzipped, strings.TrimSuffix(a.etag, `"`)+`-gz"`
	}
	hd.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether the request's Accept-Encoding lists gzip without q=0.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// loadAssets reads, hashes and compresses the embedded assets, once per process
// however many handlers are built; the result is shared and never modified.
var loadAssets = sync.OnceValues(func() (map[string]*asset, error) {
	out := make(map[string]*asset, len(assetTypes))
	for name, ctype := range assetTypes {
		body, err := fs.ReadFile(files, "assets/"+name)
		if err != nil {
			return nil, fmt.Errorf("playground: embedded asset %s: %w", name, err)
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:8])
		a := &asset{contentType: ctype, hash: hash, etag: `"` + hash + `"`, body: body}
		if gz := compress(body); len(gz) < len(body)*9/10 {
			a.gzipped = gz
		}
		out[name] = a
	}
	return out, nil
})

func compress(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}
