package httpserver

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/scoville/scoville/models"
)

// DefaultRequestTimeout is the deadline of one /graphql request when none is
// configured (GRAPHQL_REQUEST_TIMEOUT).
const DefaultRequestTimeout = 15 * time.Second

// Deadline bounds each request by d (DefaultRequestTimeout when d <= 0): the
// request's context ends at d, so the handler's database and Stripe calls stop,
// and the client gets, at d, 503 with one GraphQL error, code REQUEST_TIMEOUT,
// whatever the handler is still doing; what it writes afterwards is dropped. The
// response is buffered until the handler returns, so it suits request/response
// routes only: a WebSocket upgrade (WebSocketUpgrade) is passed on untouched,
// without a deadline, since its connection outlives any one request.
func Deadline(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		d = DefaultRequestTimeout
	}
	body := fmt.Sprintf(`{"errors":[{"message":%q,"extensions":{"code":%q}}]}`+"\n",
		fmt.Sprintf("the request took longer than %s and was stopped; nothing more runs for it", d), models.CodeRequestTimeout)
	bounded := http.TimeoutHandler(next, d, body)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if WebSocketUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		// A body read blocked on a slow client holds the connection's body,
		// and the answer cannot be sent before that read ends: it ends a moment
		// after the deadline (the server's ReadTimeout ends it when sooner).
		if d+bodyGrace < readTimeout {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d + bodyGrace))
		}
		// Only the timeout answer reads this header: a handler's own answer
		// replaces the header with its own.
		w.Header().Set("Content-Type", "application/json")
		bounded.ServeHTTP(w, r)
	})
}

// bodyGrace lets the deadline's answer, not a failed body read, end a request
// whose body is late.
const bodyGrace = 250 * time.Millisecond

// WebSocketUpgrade reports whether r asks to become a WebSocket (RFC 6455: GET
// with Connection: upgrade and Upgrade: websocket). Such a request runs no
// operation over HTTP: gqlgen's GET and POST transports refuse any request that
// carries an Upgrade header, so exempting these from request-scoped limits
// exempts only the upgrade itself.
func WebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && hasToken(r.Header["Connection"], "upgrade") && hasToken(r.Header["Upgrade"], "websocket")
}

// hasToken reports whether a comma-separated header holds token (any case).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
