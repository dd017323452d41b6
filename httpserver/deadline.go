package httpserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
//
// The handler runs on the request's own goroutine; Deadline returns when it
// does, and never writes to w after that. A handler's panic is passed on (the
// caller's recovery answers it when the deadline has not).
func Deadline(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		d = DefaultRequestTimeout
	}
	body := []byte(fmt.Sprintf(`{"errors":[{"message":%q,"extensions":{"code":%q}}]}`+"\n",
		fmt.Sprintf("the request took longer than %s and was stopped; nothing more runs for it", d), models.CodeRequestTimeout))
	length := []string{strconv.Itoa(len(body))}
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
		ctx, cancel := context.WithDeadlineCause(r.Context(), time.Now().Add(d), errDeadline)
		bw := &deadlineWriter{w: w, h: make(http.Header), ctx: ctx, body: body, length: length, buf: answerBuffers.Get().(*bytes.Buffer)}
		// At d, or when the client goes, the answer is written from another
		// goroutine while the handler may still run; the writer's lock orders it
		// with the handler's own answer, and close keeps it from coming later.
		stop := context.AfterFunc(ctx, bw.expire)
		defer func() {
			stop()
			bw.close()
			cancel()
			bw.release()
		}()
		next.ServeHTTP(bw, r.WithContext(ctx))
		bw.answer()
	})
}

// jsonContentType is the Content-Type of an answer that set none, shared as
// securityHeaders are.
var jsonContentType = one("application/json")

// answerBuffers hold the handlers' answers while they are buffered, so that an
// answer's buffer is not grown anew for every request.
var answerBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledAnswer bounds the buffers kept for reuse: a rare large answer's is dropped.
const maxPooledAnswer = 64 << 10

// release gives the buffer back once the writer is closed: nothing reads or
// writes it after close (Write refuses, answer and expire are done or find the
// writer answered).
func (bw *deadlineWriter) release() {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	if bw.buf == nil || !bw.answered {
		return
	}
	if bw.buf.Cap() <= maxPooledAnswer {
		bw.buf.Reset()
		answerBuffers.Put(bw.buf)
	}
	bw.buf = nil
}

// errDeadline is the cause of a request context that Deadline ended, which tells
// it from a client that went away.
var errDeadline = errors.New("httpserver: request deadline")

// bodyGrace lets the deadline's answer, not a failed body read, end a request
// whose body is late.
const bodyGrace = 250 * time.Millisecond

// deadlineWriter buffers a handler's answer until the handler returns. Every
// method holds mu: the handler, the deadline and the return race only through
// it, and once the answer is decided (answered) nothing else reaches w. A handler
// that returns once ctx is past its deadline has not answered in time, whatever
// it wrote: the deadline's answer is sent in its place.
type deadlineWriter struct {
	w      http.ResponseWriter
	h      http.Header
	ctx    context.Context
	body   []byte
	length []string

	mu          sync.Mutex
	buf         *bytes.Buffer // from answerBuffers; nil once released
	code        int
	wroteHeader bool
	answered    bool  // w has its answer, or will get none from here
	err         error // what Write returns once answered
}

func (bw *deadlineWriter) Header() http.Header { return bw.h }

func (bw *deadlineWriter) WriteHeader(code int) {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	bw.writeHeaderLocked(code)
}

func (bw *deadlineWriter) writeHeaderLocked(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if bw.answered || bw.wroteHeader {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An informational answer (103 Early Hints) cannot precede a buffered
		// one: it is dropped, and the final status comes after it.
		return
	}
	bw.wroteHeader = true
	bw.code = code
}

func (bw *deadlineWriter) Write(p []byte) (int, error) {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	if bw.answered {
		return 0, bw.err
	}
	if bw.pastDeadline() {
		return 0, http.ErrHandlerTimeout
	}
	if !bw.wroteHeader {
		bw.writeHeaderLocked(http.StatusOK)
	}
	return bw.buf.Write(p)
}

// answer sends the handler's buffered answer, unless the deadline answered first.
func (bw *deadlineWriter) answer() {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	if bw.answered {
		return
	}
	if bw.pastDeadline() {
		bw.expireLocked()
		return
	}
	bw.answered = true
	dst := bw.w.Header()
	if _, ok := bw.h["Content-Type"]; !ok {
		// As the deadline's answer: JSON unless the handler said otherwise.
		dst["Content-Type"] = jsonContentType
	}
	maps.Copy(dst, bw.h)
	if !bw.wroteHeader {
		bw.code = http.StatusOK
	}
	bw.w.WriteHeader(bw.code)
	_, _ = bw.w.Write(bw.buf.Bytes())
}

// pastDeadline reports whether the request's deadline (not the client's going)
// ended ctx.
func (bw *deadlineWriter) pastDeadline() bool {
	return bw.ctx.Err() != nil && context.Cause(bw.ctx) == errDeadline
}

// expire answers for the handler when ctx ends: at the deadline with body, when
// the client went away with the status alone (as http.TimeoutHandler did).
func (bw *deadlineWriter) expire() {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	if !bw.answered {
		bw.expireLocked()
	}
}

func (bw *deadlineWriter) expireLocked() {
	bw.answered = true
	bw.err = http.ErrHandlerTimeout
	if !bw.pastDeadline() {
		bw.err = context.Canceled
		bw.w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h := bw.w.Header()
	h.Set("Content-Type", "application/json")
	h["Content-Length"] = bw.length
	bw.w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = bw.w.Write(bw.body)
	// The whole answer leaves now, though the handler still holds the request.
	_ = http.NewResponseController(bw.w).Flush()
}

// close ends the writer when the handler returned or panicked: from here nothing
// reaches w. A panic before the deadline is answered by the caller; past it, the
// deadline's answer is sent now if it was not already.
func (bw *deadlineWriter) close() {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	switch {
	case bw.answered:
	case bw.pastDeadline():
		bw.expireLocked()
	default:
		bw.answered = true
		bw.err = http.ErrHandlerTimeout
	}
}

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
