package httpserver

import (
	"net/http"
	"slices"
	"strings"
)

// CORS request headers and methods a browser may use on the wrapped route. The API
// authenticates with a bearer token in Authorization, never with cookies, so
// credentials are never allowed and a page on another origin cannot ride on a
// signed-in user's session: there is no CSRF surface.
var (
	corsMethods        = []string{http.MethodGet, http.MethodPost}
	corsRequestHeaders = []string{"authorization", "content-type", "x-request-id"}
	corsExposeHeaders  = "Retry-After, X-Request-Id, WWW-Authenticate"
	// corsAllowHeaders answers a preflight with corsRequestHeaders, so the two never differ.
	corsAllowHeaders = allowHeaders(corsRequestHeaders)
)

func allowHeaders(names []string) string {
	canonical := make([]string, len(names))
	for i, n := range names {
		canonical[i] = http.CanonicalHeaderKey(n)
	}
	return strings.Join(canonical, ", ")
}

// Origins is CORS_ALLOWED_ORIGINS as a rule: the one place that says whether a
// browser origin may call the API, over HTTP (CORS) and over a socket (live updates).
type Origins struct {
	any bool
	set map[string][]string // each allowed origin as a header value, shared (see one)
}

// NewOrigins builds the rule of allowed ("*" allows any; config permits it in
// development only). Origins are compared exactly, as browsers send them.
func NewOrigins(allowed []string) Origins {
	o := Origins{any: slices.Contains(allowed, "*"), set: map[string][]string{}}
	for _, a := range allowed {
		o.set[a] = one(a)
	}
	return o
}

// Allows reports whether origin may call; an empty origin (no browser) never matches.
func (o Origins) Allows(origin string) bool { return origin != "" && (o.any || o.set[origin] != nil) }

// allowOrigin is Access-Control-Allow-Origin's value for origin: the shared slice
// of a listed origin, a new one under "*".
func (o Origins) allowOrigin(origin string) []string {
	if v := o.set[origin]; v != nil {
		return v
	}
	return []string{origin}
}

// Values CORS puts on every answer, shared as securityHeaders are.
var (
	varyOrigin      = one("Origin")
	corsExposeValue = one(corsExposeHeaders)
)

// corsMaxAge is how long (seconds) a browser may reuse a preflight answer.
const corsMaxAge = "600"

// CORS lets browsers on the allowed origins (CORS_ALLOWED_ORIGINS; "*" allows any,
// which config permits in development only) call next. A preflight from an allowed
// origin asking for allowed methods and headers gets 204 with the Access-Control
// headers; any other preflight gets 403 and no Access-Control header, so the browser
// refuses the call. Simple requests from other origins pass (a server cannot stop
// them) but get no Access-Control-Allow-Origin, so the page cannot read the answer.
// Every answer varies by Origin, so a cache never serves one origin's answer to
// another.
func CORS(allowed []string, next http.Handler) http.Handler {
	origins := NewOrigins(allowed)
	originAllowed := origins.Allows

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if _, set := h["Vary"]; set {
			h.Add("Vary", "Origin")
		} else {
			h["Vary"] = varyOrigin
		}
		origin := r.Header.Get("Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if !originAllowed(origin) || !slices.Contains(corsMethods, r.Header.Get("Access-Control-Request-Method")) ||
				!headersAllowed(r.Header.Values("Access-Control-Request-Headers")) {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", strings.Join(corsMethods, ", "))
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if originAllowed(origin) {
			h["Access-Control-Allow-Origin"] = origins.allowOrigin(origin)
			h["Access-Control-Expose-Headers"] = corsExposeValue
		}
		next.ServeHTTP(w, r)
	})
}

// headersAllowed reports whether every header a preflight asks for is allowed.
func headersAllowed(values []string) bool {
	for _, v := range values {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "" && !slices.Contains(corsRequestHeaders, name) {
				return false
			}
		}
	}
	return true
}
