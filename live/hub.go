package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// Defaults of Config's bounds.
const (
	DefaultMaxSocketsPerPrincipal    = 8
	DefaultMaxSocketsPerAddress      = 64
	DefaultMaxOperationsPerPrincipal = 32
	DefaultMaxOperationsPerAddress   = 256
	// DefaultReconnectDelay is the wait before a lost LISTEN connection is opened
	// again.
	DefaultReconnectDelay = time.Second
)

// Config is what a Hub needs; NewHub fills defaults.
type Config struct {
	// Connect opens the connection the hub LISTENs on; the hub closes it. Required.
	Connect func(ctx context.Context) (*pgx.Conn, error)
	// ReconnectDelay is the wait before a lost LISTEN connection is opened again;
	// default DefaultReconnectDelay.
	ReconnectDelay time.Duration
	// Bounds of what one principal and one client address hold at once.
	MaxSocketsPerPrincipal, MaxSocketsPerAddress       int
	MaxOperationsPerPrincipal, MaxOperationsPerAddress int
	Metrics                                            *Metrics
	Logger                                             *slog.Logger
}

// LimitError refuses a socket or an operation over one of the hub's bounds; Reason
// is one of the Refused constants.
type LimitError struct{ Reason string }

func (e *LimitError) Error() string {
	return "live: too many open live updates (" + e.Reason + "); close one and retry"
}

// ErrClosed refuses a follow after Close.
var ErrClosed = errors.New("live: the hub is closed")

// Hub fans committed announcements out to the operations of this process. It
// LISTENs on Channel from the first Follow until Close, on its own connection; when
// that connection is lost it reconnects, and once LISTEN is in place again every
// operation is pushed its current state, so a change committed while it was down is
// never silently missed. It also counts sockets and operations against the bounds.
// Safe for concurrent use.
type Hub struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	start  sync.Once
	done   chan struct{} // closed by Close: every stream ends
	// stopped is closed when the listener returns (once started).
	stopped chan struct{}

	mu         sync.Mutex
	closed     bool
	started    bool
	byID       map[string]map[*Follow]struct{}
	byCustomer map[string]map[*Follow]struct{}
	counts     map[countKey]int
}

// countKey is one counted resource of one holder.
type countKey struct {
	kind   string // a Refused constant naming the bound
	holder string
}

// NewHub builds a hub; it connects on the first Follow.
func NewHub(cfg Config) *Hub {
	cfg.MaxSocketsPerPrincipal = orDefault(cfg.MaxSocketsPerPrincipal, DefaultMaxSocketsPerPrincipal)
	cfg.MaxSocketsPerAddress = orDefault(cfg.MaxSocketsPerAddress, DefaultMaxSocketsPerAddress)
	cfg.MaxOperationsPerPrincipal = orDefault(cfg.MaxOperationsPerPrincipal, DefaultMaxOperationsPerPrincipal)
	cfg.MaxOperationsPerAddress = orDefault(cfg.MaxOperationsPerAddress, DefaultMaxOperationsPerAddress)
	if cfg.ReconnectDelay <= 0 {
		cfg.ReconnectDelay = DefaultReconnectDelay
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{
		cfg: cfg, ctx: ctx, cancel: cancel, done: make(chan struct{}), stopped: make(chan struct{}),
		byID: map[string]map[*Follow]struct{}{}, byCustomer: map[string]map[*Follow]struct{}{},
		counts: map[countKey]int{},
	}
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Metrics is where the hub and the socket transport record.
func (h *Hub) Metrics() *Metrics { return h.cfg.Metrics }

// take counts one of each (kind, holder) pair, all or none, against limit(kind); it
// returns the release, or the LimitError of the first bound reached.
func (h *Hub) take(pairs ...countKey) (func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	for _, k := range pairs {
		if h.counts[k] >= h.limit(k.kind) {
			h.cfg.Metrics.Refused(k.kind)
			return nil, &LimitError{Reason: k.kind}
		}
	}
	for _, k := range pairs {
		h.counts[k]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			for _, k := range pairs {
				if h.counts[k] <= 1 {
					delete(h.counts, k)
				} else {
					h.counts[k]--
				}
			}
		})
	}, nil
}

func (h *Hub) limit(kind string) int {
	switch kind {
	case RefusedSocketsPerAddress:
		return h.cfg.MaxSocketsPerAddress
	case RefusedSocketsPerPrincipal:
		return h.cfg.MaxSocketsPerPrincipal
	case RefusedOperationsPerCaller:
		return h.cfg.MaxOperationsPerPrincipal
	default:
		return h.cfg.MaxOperationsPerAddress
	}
}

// OpenSocket counts a socket of the client address, or refuses it (*LimitError)
// when the address holds MaxSocketsPerAddress already. The release is safe to call
// more than once.
func (h *Hub) OpenSocket(address string) (release func(), err error) {
	free, err := h.take(countKey{RefusedSocketsPerAddress, address})
	if err != nil {
		return nil, err
	}
	h.cfg.Metrics.socketsAdd(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			free()
			h.cfg.Metrics.socketsAdd(-1)
		})
	}, nil
}

// BindSocket counts a socket of the principal whose token it accepted, or refuses
// it (*LimitError) when the principal holds MaxSocketsPerPrincipal already.
func (h *Hub) BindSocket(principal string) (release func(), err error) {
	return h.take(countKey{RefusedSocketsPerPrincipal, principal})
}

// Caller names who holds an operation: the principal (issuer and subject) and the
// client address.
type Caller struct{ Principal, Address string }

// Follow is one operation's interest: one subscription, or every subscription of
// one customer. The hub marks what changed; Stream reads and pushes it.
type Follow struct {
	h              *Hub
	subscriptionID string
	customerID     string
	release        func()
	signal         chan struct{} // holds one wake-up at most
	done           chan struct{} // closed by the hub's Close

	mu         sync.Mutex
	pending    map[string]struct{}
	everything bool
	closed     bool
}

// Follow registers an operation of c for subscription subscriptionID or, when that
// is empty, for every subscription of customer customerID. The caller has checked
// that c may see what it follows. It refuses (*LimitError) an operation over the
// principal's or the address's bound. The follow starts with everything pending, so
// its first push is the current state; Close (or the end of Stream) releases it.
func (h *Hub) Follow(c Caller, subscriptionID, customerID string) (*Follow, error) {
	if (subscriptionID == "") == (customerID == "") {
		return nil, errors.New("live: follow one subscription or one customer")
	}
	release, err := h.take(countKey{RefusedOperationsPerCaller, c.Principal}, countKey{RefusedOperationsPerAddress, c.Address})
	if err != nil {
		return nil, err
	}
	f := &Follow{
		h: h, subscriptionID: subscriptionID, customerID: customerID, release: release,
		signal: make(chan struct{}, 1), done: h.done, pending: map[string]struct{}{}, everything: true,
	}
	f.signal <- struct{}{}
	h.mu.Lock()
	index, key := h.indexOf(subscriptionID, customerID)
	if index[key] == nil {
		index[key] = map[*Follow]struct{}{}
	}
	index[key][f] = struct{}{}
	h.mu.Unlock()
	h.cfg.Metrics.operationsAdd(1)
	h.start.Do(func() {
		go h.listen()
	})
	return f, nil
}

// Close ends the follow's registration; it is safe to call more than once.
func (f *Follow) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.mu.Unlock()
	h := f.h
	h.mu.Lock()
	index, key := h.indexOf(f.subscriptionID, f.customerID)
	delete(index[key], f)
	if len(index[key]) == 0 {
		delete(index, key)
	}
	h.mu.Unlock()
	f.release()
	h.cfg.Metrics.operationsAdd(-1)
}

// indexOf is where a follow of customerID's subscriptions (when given) or of the
// one subscription is registered: the index and its key. Call it with h.mu held.
func (h *Hub) indexOf(subscriptionID, customerID string) (map[string]map[*Follow]struct{}, string) {
	if customerID != "" {
		return h.byCustomer, customerID
	}
	return h.byID, subscriptionID
}

// mark makes id pending (everything when id is empty) and wakes the stream.
func (f *Follow) mark(id string) {
	f.mu.Lock()
	if id == "" {
		f.everything = true
	} else {
		f.pending[id] = struct{}{}
	}
	f.mu.Unlock()
	select {
	case f.signal <- struct{}{}:
	default: // a wake-up is pending already; it will see this mark
	}
}

// takePending returns and clears what is pending.
func (f *Follow) takePending() (ids []string, everything bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range f.pending {
		ids = append(ids, id)
	}
	clear(f.pending)
	everything, f.everything = f.everything, false
	return ids, everything
}

// Close stops listening and ends every stream; the hub refuses later follows and
// sockets.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	started := h.started
	h.mu.Unlock()
	close(h.done)
	h.cancel()
	h.start.Do(func() {}) // a Follow racing with Close starts no listener
	if started {
		<-h.stopped
	}
}

// listen runs the LISTEN loop until Close.
func (h *Hub) listen() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.started = true
	h.mu.Unlock()
	defer close(h.stopped)
	l := &pgxlisten.Listener{
		Connect:        h.cfg.Connect,
		ReconnectDelay: h.cfg.ReconnectDelay,
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() == nil {
				h.cfg.Logger.WarnContext(ctx, "live: LISTEN connection failed; reconnecting, then every follower gets the current state",
					"error", err.Error())
			}
		},
	}
	l.Handle(Channel, handler{h})
	_ = l.Listen(h.ctx)
}

// handler receives the listener's notifications and (re)connections.
type handler struct{ h *Hub }

// HandleNotification marks the announced subscription for its followers, and for
// the followers of its customer.
func (hd handler) HandleNotification(ctx context.Context, n *pgconn.Notification, conn *pgx.Conn) error {
	h, id := hd.h, n.Payload
	h.mu.Lock()
	targets := make([]*Follow, 0, len(h.byID[id]))
	for f := range h.byID[id] {
		targets = append(targets, f)
	}
	anyCustomer := len(h.byCustomer) > 0
	h.mu.Unlock()
	for _, f := range targets {
		f.mark(id)
	}
	if !anyCustomer {
		return nil
	}
	var customerID string
	err := conn.QueryRow(ctx, "SELECT customer_id::text FROM subscriptions WHERE id::text = $1", id).Scan(&customerID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("live: the customer of an announced subscription: %w", err)
	}
	h.mu.Lock()
	targets = targets[:0]
	for f := range h.byCustomer[customerID] {
		targets = append(targets, f)
	}
	h.mu.Unlock()
	for _, f := range targets {
		f.mark(id)
	}
	return nil
}

// HandleBacklog runs each time LISTEN is in place, the first time and after each
// reconnect: whatever was announced while no connection listened is unknown, so
// every follower is pushed its current state.
func (hd handler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h := hd.h
	h.cfg.Metrics.listened()
	h.mu.Lock()
	var all []*Follow
	for _, index := range []map[string]map[*Follow]struct{}{h.byID, h.byCustomer} {
		for _, fs := range index {
			for f := range fs {
				all = append(all, f)
			}
		}
	}
	h.mu.Unlock()
	for _, f := range all {
		f.mark("")
	}
	return nil
}

// callerKey carries the Caller of a socket's operations.
type callerKey struct{}

// WithCaller returns a context whose operations are counted as c's.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the Caller WithCaller set; without one, every operation of
// the context counts as one unknown caller's, the strictest bound.
func CallerFrom(ctx context.Context) Caller {
	if c, ok := ctx.Value(callerKey{}).(Caller); ok {
		return c
	}
	return Caller{Principal: "unknown", Address: "unknown"}
}
