package auth

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/requestscope"
)

// UnauthorizedBody is the exact JSON body of the 401 the middleware sends for a bad
// token: a GraphQL-shaped error with code UNAUTHENTICATED, so clients handle it like
// any other API error.
const UnauthorizedBody = `{"errors":[{"message":"invalid or expired access token","extensions":{"code":"` + models.CodeUnauthenticated + `"}}],"data":null}`

// Middleware authenticates requests. Without an Authorization header the request
// continues anonymous (no principal in its context). With "Authorization: Bearer
// <token>" (scheme case-insensitive) the token is verified and the principal put in
// the context with WithPrincipal. Anything else — a bad token, a non-Bearer scheme,
// several Authorization headers, a token over MaxTokenBytes — refuses the whole
// request with 401, WWW-Authenticate: Bearer error="invalid_token" and
// UnauthorizedBody. A refusal is logged at warn level with its reason only (never
// the token or claim values) and reported to onFailure when it is not nil. A nil
// logger means slog.Default().
func Middleware(v TokenVerifier, logger *slog.Logger, onFailure func(reason string)) func(http.Handler) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			values := r.Header.Values("Authorization")
			if len(values) == 0 {
				next.ServeHTTP(w, r)
				return
			}
			refuse := func(reason string) {
				logger.LogAttrs(r.Context(), slog.LevelWarn, "access token refused", slog.String("reason", reason))
				if onFailure != nil {
					onFailure(reason)
				}
				writeUnauthorized(w)
			}
			raw, reason := bearerToken(values)
			if reason != "" {
				refuse(reason)
				return
			}
			p, err := v.Verify(r.Context(), raw)
			if err != nil || p == nil {
				reason := FailureReason(err)
				if reason == "" { // a TokenVerifier returned neither principal nor error
					reason = ReasonUnknown
				}
				refuse(reason)
				return
			}
			next.ServeHTTP(w, requestscope.Set(r, principalSlot, p))
		})
	}
}

// BearerToken extracts the token of one "Bearer <token>" value under the rules the
// middleware applies to an Authorization header (a WebSocket's connection_init
// carries it in its payload), or returns the reason it cannot.
func BearerToken(value string) (token, reason string) { return bearerToken([]string{value}) }

// bearerToken extracts the token of a single "Bearer <token>" header (RFC 6750
// section 2.1), or returns the reason it cannot.
func bearerToken(values []string) (token, reason string) {
	if len(values) != 1 {
		return "", ReasonBadHeader
	}
	scheme, rest, found := strings.Cut(values[0], " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", ReasonBadHeader
	}
	token = strings.TrimLeft(rest, " ")
	if len(token) > MaxTokenBytes {
		return "", ReasonTooLarge
	}
	if token == "" || strings.ContainsFunc(token, func(c rune) bool { return c <= ' ' || c >= 0x7f }) {
		return "", ReasonBadHeader
	}
	return token, ""
}

func writeUnauthorized(w http.ResponseWriter) {
	h := w.Header()
	h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(UnauthorizedBody))
}
