package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/httpserver"
	"github.com/scoville/scoville/live"
	"github.com/scoville/scoville/models"
)

// Live-update constants (API.md "Live updates").
const (
	// LiveSubprotocol is the only WebSocket subprotocol /graphql speaks (the
	// protocol of the graphql-ws client library).
	LiveSubprotocol = "graphql-transport-ws"
	// CloseForbidden closes a socket whose connection_init was refused (no token, a
	// bad one) and a socket whose token expired.
	CloseForbidden = 4403
	// CloseTooManySockets closes a socket whose principal holds as many as allowed.
	CloseTooManySockets = 4429
	// CloseSubscriberExists closes a socket whose client subscribes under the id of
	// one of its operations still running (graphql-transport-ws).
	CloseSubscriberExists = 4409
	// DefaultLiveInitTimeout is how long a socket may wait before connection_init.
	DefaultLiveInitTimeout = 10 * time.Second
	// DefaultLivePingInterval is how often the server pings; a client that does not
	// answer within two intervals is disconnected.
	DefaultLivePingInterval = 30 * time.Second
	// DefaultLiveReadLimit bounds one message from the client, as MaxBodyBytes
	// bounds a request.
	DefaultLiveReadLimit = MaxBodyBytes
)

// LiveConfig is what the WebSocket transport of /graphql needs. Every operation it
// carries passes the same limits as a query (parser, shape, validation,
// complexity, cfg.Extensions' rate limit) when it is subscribed.
type LiveConfig struct {
	// Hub bounds sockets and operations and fans out the announcements. Required.
	Hub *live.Hub
	// Verifier checks the connection_init token, as the middleware checks a bearer
	// header. Required.
	Verifier auth.TokenVerifier
	// AllowedOrigins are the browser origins that may open a socket
	// (CORS_ALLOWED_ORIGINS; "*" allows any). A request without Origin (a mobile or
	// server client) is accepted.
	AllowedOrigins []string
	// Address keys the client address of a request for the per-address bounds.
	// Required.
	Address func(context.Context) string
	// InitTimeout, PingInterval and ReadLimit default to the DefaultLive constants.
	InitTimeout  time.Duration
	PingInterval time.Duration
	ReadLimit    int64
	// OnTokenFailure, when set, is told the reason of each refused token.
	OnTokenFailure func(reason string)
}

// liveTransport is gqlgen's WebSocket transport behind the socket's own checks:
// Origin, subprotocol and the per-address bound before the upgrade, the token and
// the per-principal bound at connection_init, and a close (4403) when the token
// expires.
type liveTransport struct {
	cfg     LiveConfig
	origins httpserver.Origins // cfg.AllowedOrigins, the CORS rule
	logger  *slog.Logger
}

var _ graphql.Transport = liveTransport{}

func newLiveTransport(cfg LiveConfig, logger *slog.Logger) liveTransport {
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = DefaultLiveInitTimeout
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultLivePingInterval
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = DefaultLiveReadLimit
	}
	return liveTransport{cfg: cfg, origins: httpserver.NewOrigins(cfg.AllowedOrigins), logger: logger}
}

// Supports takes every upgrade request, so none reaches a transport that would
// treat it as a plain GET.
func (t liveTransport) Supports(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }

func (t liveTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	hub := t.cfg.Hub
	if !httpserver.WebSocketUpgrade(r) {
		// Refused here, in the API's error format: gqlgen's own refusal writes an
		// unstructured log line quoting the request's headers.
		WriteRequestError(w, http.StatusBadRequest, models.CodeBadRequest, "live updates need a WebSocket upgrade (GET)")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !t.origins.Allows(origin) {
		hub.Metrics().Refused(live.RefusedOrigin)
		WriteRequestError(w, http.StatusForbidden, models.CodeForbidden, "live updates are not open to this origin")
		return
	}
	if !offersSubprotocol(r, LiveSubprotocol) {
		hub.Metrics().Refused(live.RefusedSubprotocol)
		WriteRequestError(w, http.StatusBadRequest, models.CodeBadRequest,
			"live updates speak the "+LiveSubprotocol+" subprotocol only")
		return
	}
	r.Header.Set("Sec-WebSocket-Protocol", LiveSubprotocol)
	addr := t.cfg.Address(r.Context())
	releaseAddr, err := hub.OpenSocket(addr)
	if err != nil {
		w.Header().Set("Retry-After", "60")
		WriteRequestError(w, http.StatusTooManyRequests, models.CodeRateLimited,
			"too many live-update sockets from this address; close one and retry")
		return
	}
	defer releaseAddr()
	s := &socket{t: t, addr: addr}
	defer s.end()
	ws := transport.Websocket{
		Implementation:   s,
		InitFunc:         t.init,
		InitTimeout:      t.cfg.InitTimeout,
		PingPongInterval: t.cfg.PingInterval,
		PayloadReadLimit: &t.cfg.ReadLimit,
		ErrorFunc: func(ctx context.Context, err error) {
			t.logger.DebugContext(ctx, "live: socket ended", "error", err.Error())
		},
	}
	ws.Do(w, r.WithContext(context.WithValue(r.Context(), socketKey{}, s)), exec)
}

// socket is one connection's state: its address, its principal's slot and the
// timer that closes it when the token expires.
type socket struct {
	t    liveTransport
	addr string

	mu               sync.Mutex
	conn             transport.WebsocketConn
	expiry           *time.Timer
	releasePrincipal func()
	ended            bool
}

type socketKey struct{}

// Accept upgrades the request. Origin was checked by Do against AllowedOrigins.
func (s *socket) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := transport.CoderWebsocketImplementation{
		AcceptOptions: coderws.AcceptOptions{InsecureSkipVerify: true},
	}.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	ids := &operationIDs{WebsocketConn: conn, active: map[string]*operationID{}}
	s.mu.Lock()
	s.conn = ids
	s.mu.Unlock()
	return ids, nil
}

// operationIDs keeps the ids of a socket's running operations and closes the
// socket (CloseSubscriberExists) when a subscribe reuses one, as
// graphql-transport-ws requires: gqlgen would run a second operation under the
// id, and the client's complete would stop only the later one, the other pushing
// on, unstoppable, until the socket ends. An id is taken until the server ends
// its operation (complete or error); one the client completed may be subscribed
// again at once.
type operationIDs struct {
	transport.WebsocketConn

	mu     sync.Mutex
	active map[string]*operationID
}

// operationID counts the operations under one id the server has not ended yet;
// completed says the client completed the latest.
type operationID struct {
	running   int
	completed bool
}

var (
	_ transport.WebsocketReadLimiter   = (*operationIDs)(nil)
	_ transport.WebsocketReadDeadliner = (*operationIDs)(nil)
)

// errOperationIDInUse ends a socket whose client reused a running operation's id.
var errOperationIDInUse = errors.New("live: subscribe under the id of a running operation")

func (c *operationIDs) NextReader() (int, io.Reader, error) {
	typ, r, err := c.WebsocketConn.NextReader()
	if err != nil {
		return typ, r, err
	}
	b, err := io.ReadAll(r) // bounded by the read limit
	if err != nil {
		return typ, nil, err
	}
	var m struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	if json.Unmarshal(b, &m) == nil && m.ID != "" && !c.note(m.Type, m.ID) {
		_ = c.WebsocketConn.WriteClose(CloseSubscriberExists, "subscriber for this id already exists")
		return typ, nil, errOperationIDInUse
	}
	return typ, bytes.NewReader(b), nil
}

// note records a client message of type typ about operation id; it reports false
// for a subscribe under the id of a running operation the client did not complete.
func (c *operationIDs) note(typ, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	op := c.active[id]
	switch typ {
	case "subscribe":
		if op == nil {
			c.active[id] = &operationID{running: 1}
			return true
		}
		if !op.completed {
			return false
		}
		op.running++
		op.completed = false
	case "complete":
		if op != nil {
			op.completed = true
		}
	}
	return true
}

// ended records that the server ended an operation under id.
func (c *operationIDs) ended(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if op := c.active[id]; op != nil {
		if op.running--; op.running <= 0 {
			delete(c.active, id)
		}
	}
}

func (c *operationIDs) WriteJSON(v any) error {
	// gqlgen's message is an unexported struct with exported Type and ID fields.
	if rv := reflect.Indirect(reflect.ValueOf(v)); rv.Kind() == reflect.Struct {
		typ, id := rv.FieldByName("Type"), rv.FieldByName("ID")
		if typ.IsValid() && typ.Kind() == reflect.String && id.IsValid() && id.Kind() == reflect.String {
			if t := typ.String(); t == "complete" || t == "error" {
				c.ended(id.String())
			}
		}
	}
	return c.WebsocketConn.WriteJSON(v)
}

// SetReadLimit passes gqlgen's read limit on to the connection.
func (c *operationIDs) SetReadLimit(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

// SetReadDeadline passes gqlgen's pong deadline on to the connection.
func (c *operationIDs) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

// end releases what the socket held once gqlgen's transport returns.
func (s *socket) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	if s.expiry != nil {
		s.expiry.Stop()
	}
	if s.releasePrincipal != nil {
		s.releasePrincipal()
	}
}

// bind fixes the socket's principal: its slot, and the close when exp passes.
func (s *socket) bind(release func(), exp time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		release()
		return
	}
	s.releasePrincipal = release
	s.expiry = time.AfterFunc(time.Until(exp), func() {
		s.mu.Lock()
		conn := s.conn
		s.mu.Unlock()
		if conn != nil {
			s.t.cfg.Hub.Metrics().Refused(live.RefusedTokenExpired)
			_ = conn.WriteClose(CloseForbidden, "token expired")
		}
	})
}

// errInitRefused is what a refused connection_init tells the client: nothing about why.
var errInitRefused = errors.New("forbidden")

// init verifies connection_init's token like a bearer header and fixes the
// principal for the socket's life.
func (t liveTransport) init(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	s, _ := ctx.Value(socketKey{}).(*socket)
	refuse := func(code int, reason, tokenReason string) (context.Context, *transport.InitPayload, error) {
		t.cfg.Hub.Metrics().Refused(reason)
		if tokenReason != "" && t.cfg.OnTokenFailure != nil {
			t.cfg.OnTokenFailure(tokenReason)
		}
		t.logger.LogAttrs(ctx, slog.LevelWarn, "live: connection_init refused", slog.String("reason", reason),
			slog.String("token_reason", tokenReason))
		return transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, code), "forbidden"), nil, errInitRefused
	}
	if s == nil {
		return refuse(CloseForbidden, live.RefusedToken, "")
	}
	raw, reason := auth.BearerToken(payload.Authorization())
	if reason != "" {
		return refuse(CloseForbidden, live.RefusedToken, reason)
	}
	p, err := t.cfg.Verifier.Verify(ctx, raw)
	if err != nil || p == nil {
		reason := auth.FailureReason(err)
		if reason == "" {
			reason = auth.ReasonUnknown
		}
		return refuse(CloseForbidden, live.RefusedToken, reason)
	}
	principal := "principal " + p.Issuer + " " + p.Subject
	release, err := t.cfg.Hub.BindSocket(principal)
	if err != nil {
		ctx = transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, CloseTooManySockets), "too many sockets")
		return ctx, nil, errors.New("too many live-update sockets; close one and retry")
	}
	s.bind(release, p.Expiry)
	ctx = auth.WithPrincipal(ctx, p)
	return live.WithCaller(ctx, live.Caller{Principal: principal, Address: s.addr}), nil, nil
}

// offersSubprotocol reports whether the client offers name.
func offersSubprotocol(r *http.Request, name string) bool {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(p) == name {
				return true
			}
		}
	}
	return false
}

// LiveLimitError presents a refusal by the hub's operation bounds as RATE_LIMITED;
// any other error is returned as it is.
func LiveLimitError(err error) error {
	var limit *live.LimitError
	if errors.As(err, &limit) {
		return &gqlerror.Error{Message: limit.Error(), Extensions: map[string]any{"code": models.CodeRateLimited}}
	}
	return err
}

// SplitUpgrades sends WebSocket handshakes (live updates; isUpgrade says which,
// httpserver.WebSocketUpgrade in the application) to sockets and every other
// request to requests, so each keeps its own middleware. A request that merely
// carries an Upgrade header (a POST, another protocol) is a request: it keeps
// every request-scoped limit, and gqlgen's HTTP transports refuse it.
func SplitUpgrades(isUpgrade func(*http.Request) bool, sockets, requests http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUpgrade(r) {
			sockets.ServeHTTP(w, r)
			return
		}
		requests.ServeHTTP(w, r)
	})
}

// socketOnly refuses a subscription operation that did not come over a live-update
// socket (a POST carrying one would get a single push and hold a follow for nothing).
type socketOnly struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = socketOnly{}

func (socketOnly) ExtensionName() string { return "SubscriptionsOverSocketsOnly" }

func (socketOnly) Validate(graphql.ExecutableSchema) error { return nil }

func (socketOnly) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if opCtx.Operation == nil || opCtx.Operation.Operation != ast.Subscription || ctx.Value(socketKey{}) != nil {
		return nil
	}
	return &gqlerror.Error{
		Message:    "subscriptions are served over WebSocket (" + LiveSubprotocol + ") only",
		Extensions: map[string]any{"code": models.CodeBadRequest},
	}
}
