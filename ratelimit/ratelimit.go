// Package ratelimit owns how often a caller may use the API (API-2): token buckets per
// principal and per client address, stricter for mutations and stricter still for
// operations that move money or touch the payment provider, generous for the Stripe
// webhook route. A refusal is RATE_LIMITED with retryAfter (seconds) and a
// Retry-After header, and is counted in scoville_rate_limited_total{scope}.
//
// Client addresses come from the clientip middleware, which believes forwarding
// headers only from TRUSTED_PROXIES, so a client cannot pick a new address per request.
package ratelimit

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/clientip"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/requestscope"
)

// Scope names a kind of traffic with its own allowance; it is the metric's label.
type Scope string

// The scopes, from the most generous to the strictest.
const (
	// ScopeWebhook is every request to POST /webhooks/stripe from one address.
	ScopeWebhook Scope = "webhook"
	// ScopeAddress is every /graphql request from one client address, counted before
	// the request is parsed, whoever the caller is.
	ScopeAddress Scope = "address"
	// ScopeQuery is a query operation, per caller.
	ScopeQuery Scope = "query"
	// ScopeMutation is a mutation operation, per caller.
	ScopeMutation Scope = "mutation"
	// ScopePayment is one selection of a field marked @provider (ProviderDirective),
	// per caller; a mutation selecting two of them, or one twice under aliases, costs
	// two.
	ScopePayment Scope = "payment"
	// ScopeExport is one exportMyData (ExportField), per caller: it reads
	// everything held about the caller, so it has an allowance of its own.
	ScopeExport Scope = "export"
)

// Rule is an allowance: PerMinute on average, up to Burst at once.
type Rule struct {
	PerMinute int
	Burst     int
}

// PerMinute builds a Rule whose burst is half a minute's allowance (at least one),
// the shape every configured limit takes.
func PerMinute(n int) Rule { return Rule{PerMinute: n, Burst: max(1, (n+1)/2)} }

// ProviderDirective marks, in the GraphQL schema, a field that calls the payment
// provider (Stripe) while it runs: card testing and refund abuse go through these, and
// Stripe's own rate limit is shared by the whole account, so each selection of such a
// field is charged to ScopePayment. The schema is the only list: a field renamed or
// added keeps or lacks the directive where it is defined.
const ProviderDirective = "provider"

// Config is every allowance; zero fields take the defaults of Defaults.
type Config struct {
	Address  Rule // all /graphql requests from one address
	Query    Rule // per caller
	Mutation Rule // per caller
	Payment  Rule // per caller
	Webhook  Rule // per address on the webhook route
	Export   Rule // exportMyData per caller
	// AddressFactor multiplies the per-caller query, mutation and payment rules into
	// a second allowance shared by every caller on one address, so many accounts on
	// one address (card testing) are held back too. Default 5.
	AddressFactor int
	// MaxKeys bounds the buckets kept per allowance (memory); default 100,000.
	MaxKeys int
	// InFlightPerCaller and InFlightPerAddress bound the requests in flight at once
	// (see InFlight); defaults DefaultInFlightPerCaller and DefaultInFlightPerAddress.
	InFlightPerCaller, InFlightPerAddress int
	// InFlightTotal bounds the requests in flight at once from every caller
	// together (see Busy); default DefaultInFlightTotal.
	InFlightTotal int
	// FloodPause is how long a request over its address allowance (ScopeAddress) waits
	// before its refusal is written; default DefaultFloodPause, negative: none.
	FloodPause time.Duration
	// Shared, when set, also keeps the per-caller Mutation and Payment allowances
	// in this database (table rate_limit_buckets), so that they hold across every
	// process using it (see shared.go).
	Shared *sql.DB
}

// Flooding. A client over its address allowance that resends the moment it is
// refused would keep the cores busy writing refusals, however cheap each one is. So
// such a refusal is written after a pause (never longer than its Retry-After), which
// costs the server a sleeping goroutine and holds the client's connection: a flood
// from a few connections is slowed to a few requests a second each. At most
// floodSlots refusals wait at once; past that they are written at once. The webhook
// route's allowance is never paused: Stripe's retries are its own.
const (
	DefaultFloodPause = 500 * time.Millisecond
	floodSlots        = 1024
)

// Defaults are the allowances when nothing is configured (RATE_LIMIT_* in README).
func Defaults() Config {
	return Config{
		Address:       PerMinute(1200),
		Query:         PerMinute(300),
		Mutation:      PerMinute(60),
		Payment:       PerMinute(10),
		Webhook:       PerMinute(60000),
		Export:        PerMinute(5),
		AddressFactor: 5,
		MaxKeys:       100_000,
	}
}

// Limiter decides and counts refusals. It is safe for concurrent use.
type Limiter struct {
	perCaller map[Scope]*buckets
	perAddr   map[Scope]*buckets
	inFlight  *inFlight
	total     chan struct{} // one slot per request in flight (Busy)
	refused   *prometheus.CounterVec
	now       func() time.Time
	// pause holds a flooding client's refusal (see FloodPause); floods bounds how
	// many are held at once.
	pause  time.Duration
	floods chan struct{}
	sleep  func(ctx context.Context, d time.Duration)
	shared *shared // nil: per-process allowances only
}

// New builds a Limiter and registers scoville_rate_limited_total on reg (nil: not
// registered, for tests).
func New(cfg Config, reg prometheus.Registerer) *Limiter {
	def := Defaults()
	orDefault := func(r, d Rule) Rule {
		if r.PerMinute <= 0 {
			return d
		}
		if r.Burst <= 0 {
			r.Burst = PerMinute(r.PerMinute).Burst
		}
		return r
	}
	cfg.Address = orDefault(cfg.Address, def.Address)
	cfg.Query = orDefault(cfg.Query, def.Query)
	cfg.Mutation = orDefault(cfg.Mutation, def.Mutation)
	cfg.Payment = orDefault(cfg.Payment, def.Payment)
	cfg.Webhook = orDefault(cfg.Webhook, def.Webhook)
	cfg.Export = orDefault(cfg.Export, def.Export)
	if cfg.AddressFactor <= 0 {
		cfg.AddressFactor = def.AddressFactor
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = def.MaxKeys
	}
	switch {
	case cfg.FloodPause == 0:
		cfg.FloodPause = DefaultFloodPause
	case cfg.FloodPause < 0:
		cfg.FloodPause = 0
	}
	scaled := func(r Rule) Rule {
		return Rule{PerMinute: saturatingMul(r.PerMinute, cfg.AddressFactor), Burst: saturatingMul(r.Burst, cfg.AddressFactor)}
	}
	l := &Limiter{
		perCaller: map[Scope]*buckets{
			ScopeQuery:    newBuckets(cfg.Query, cfg.MaxKeys),
			ScopeMutation: newBuckets(cfg.Mutation, cfg.MaxKeys),
			ScopePayment:  newBuckets(cfg.Payment, cfg.MaxKeys),
			ScopeExport:   newBuckets(cfg.Export, cfg.MaxKeys),
		},
		perAddr: map[Scope]*buckets{
			ScopeAddress:  newBuckets(cfg.Address, cfg.MaxKeys),
			ScopeWebhook:  newBuckets(cfg.Webhook, cfg.MaxKeys),
			ScopeQuery:    newBuckets(scaled(cfg.Query), cfg.MaxKeys),
			ScopeMutation: newBuckets(scaled(cfg.Mutation), cfg.MaxKeys),
			ScopePayment:  newBuckets(scaled(cfg.Payment), cfg.MaxKeys),
			ScopeExport:   newBuckets(scaled(cfg.Export), cfg.MaxKeys),
		},
		inFlight: newInFlight(cfg.InFlightPerCaller, cfg.InFlightPerAddress),
		total:    newTotal(cfg.InFlightTotal),
		pause:    cfg.FloodPause,
		floods:   make(chan struct{}, floodSlots),
		sleep:    sleepCtx,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scoville_rate_limited_total",
			Help: "Requests and operations refused with " + models.CodeRateLimited + ", by scope.",
		}, []string{"scope"}),
		now: time.Now,
	}
	for _, s := range []Scope{ScopeWebhook, ScopeAddress, ScopeQuery, ScopeMutation, ScopePayment, ScopeExport, ScopeInFlight, ScopeBusy} {
		l.refused.WithLabelValues(string(s)) // every series exists from the start, for alert rules
	}
	if cfg.Shared != nil {
		l.shared = newShared(cfg.Shared, map[Scope]Rule{ScopeMutation: cfg.Mutation, ScopePayment: cfg.Payment})
	}
	if reg != nil {
		reg.MustRegister(l.refused)
		if l.shared != nil {
			reg.MustRegister(l.shared.errors)
		}
	}
	return l
}

func saturatingMul(a, b int) int {
	if a > 0 && b > math.MaxInt32/a {
		return math.MaxInt32
	}
	return a * b
}

// Charge is n tokens from one scope.
type Charge struct {
	Scope Scope
	N     int
}

// Refusal says why and for how long a request was refused.
type Refusal struct {
	Scope      Scope
	RetryAfter time.Duration
}

// RetryAfterSeconds is what Retry-After and extensions.retryAfter carry: whole
// seconds, rounded up, at least one.
func (r *Refusal) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(r.RetryAfter.Seconds())))
}

// Error is the message a client sees.
func (r *Refusal) Error() string {
	return fmt.Sprintf("too many requests; retry after %d seconds", r.RetryAfterSeconds())
}

// Take charges the caller of ctx (the principal, or the client address when
// anonymous) and the client address. Either every charge is taken or none is: a
// refused request costs nothing, so a caller who waits retryAfter gets through.
func (l *Limiter) Take(ctx context.Context, charges ...Charge) *Refusal {
	addr := addressKey(ctx)
	caller := "" // named when a charge is per caller
	type taken struct {
		res   *rate.Reservation
		scope Scope
	}
	now := l.now()
	var room [4]taken
	all := room[:0]
	for _, c := range charges {
		if b := l.perCaller[c.Scope]; b != nil {
			if caller == "" {
				caller = callerKey(ctx, addr)
			}
			all = append(all, taken{b.reserve(caller, c.N, now), c.Scope})
		}
		if b := l.perAddr[c.Scope]; b != nil {
			all = append(all, taken{b.reserve(addr, c.N, now), c.Scope})
		}
	}
	var refusal *Refusal
	for _, t := range all {
		var wait time.Duration
		switch {
		case !t.res.OK(): // more at once than the burst: never allowed as one request
			wait = time.Minute
		default:
			wait = t.res.DelayFrom(now)
		}
		if wait > 0 && (refusal == nil || wait > refusal.RetryAfter) {
			refusal = &Refusal{Scope: t.scope, RetryAfter: wait}
		}
	}
	if refusal == nil && l.shared != nil {
		if caller == "" {
			caller = callerKey(ctx, addr)
		}
		refusal = l.shared.take(ctx, caller, charges)
	}
	if refusal == nil {
		return nil
	}
	for _, t := range all {
		t.res.CancelAt(now)
	}
	l.refused.WithLabelValues(string(refusal.Scope)).Inc()
	return refusal
}

// AddressKey is the key under which the client address of ctx is limited (an IPv6
// client by its /64), for bounds kept outside this package.
func AddressKey(ctx context.Context) string { return addressKey(ctx) }

// addressKey is the key of the client address's allowances. An IPv6 client is
// normally given a whole /64 (often more), so its addresses share one allowance:
// keyed by the full address, rotating through the /64 would give every request a
// fresh bucket.
func addressKey(ctx context.Context) string {
	if sw, ok := ctx.Value(writerSlot).(*statusWriter); ok {
		return sw.addr
	}
	return addressKeyOf(ctx)
}

// addressKeyOf is addressKey found from the client address.
func addressKeyOf(ctx context.Context) string {
	a := clientip.From(ctx)
	if !a.IsValid() {
		return "unknown"
	}
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.WithZone("").Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

// PerAddress limits a whole route per client address (ScopeAddress for /graphql,
// ScopeWebhook for the Stripe route): a refused request gets 429, Retry-After and a
// GraphQL-shaped RATE_LIMITED body, before anything reads it. It also lets the
// GraphQL extension answer its own refusals with 429 and Retry-After.
func (l *Limiter) PerAddress(scope Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The address key is found once: the limits below read it from sw.
		sw := &statusWriter{ResponseWriter: w, addr: addressKeyOf(r.Context())}
		r = requestscope.Set(r, writerSlot, sw)
		if ref := l.Take(r.Context(), Charge{Scope: scope, N: 1}); ref != nil {
			if scope == ScopeAddress {
				l.holdFlood(r.Context(), ref)
			}
			WriteRefusal(w, ref)
			return
		}
		next.ServeHTTP(sw, r)
	})
}

// holdFlood waits before a flooding client's refusal is written: the pause, never
// past the refusal's Retry-After, unless floodSlots refusals wait already or the
// client goes away.
func (l *Limiter) holdFlood(ctx context.Context, ref *Refusal) {
	d := min(l.pause, time.Duration(ref.RetryAfterSeconds())*time.Second)
	if d <= 0 {
		return
	}
	select {
	case l.floods <- struct{}{}:
		defer func() { <-l.floods }()
		l.sleep(ctx, d)
	default:
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// WriteRefusal answers a refused HTTP request: 429, Retry-After and a GraphQL error
// body with code RATE_LIMITED and retryAfter.
func WriteRefusal(w http.ResponseWriter, ref *Refusal) {
	secs := ref.RetryAfterSeconds()
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = fmt.Fprintf(w, `{"errors":[{"message":%q,"extensions":{"code":"`+models.CodeRateLimited+`","retryAfter":%d}}]}`+"\n", ref.Error(), secs)
}

// writerSlot holds the request's statusWriter.
var writerSlot = requestscope.NewSlot()

// statusWriter turns the GraphQL transport's answer into 429 with Retry-After when
// the operation was refused by the rate limit.
type statusWriter struct {
	http.ResponseWriter
	addr    string // the request's address key (addressKey), set before the handler runs
	refusal *Refusal
	wrote   bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote && s.refusal != nil && code == http.StatusOK {
		s.Header().Set("Retry-After", strconv.Itoa(s.refusal.RetryAfterSeconds()))
		code = http.StatusTooManyRequests
	}
	s.wrote = true
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// markRefused tells the HTTP layer of a refusal decided inside GraphQL.
func markRefused(ctx context.Context, ref *Refusal) {
	if sw, ok := ctx.Value(writerSlot).(*statusWriter); ok {
		sw.refusal = ref
		sw.Header().Set("Retry-After", strconv.Itoa(ref.RetryAfterSeconds()))
	}
}

// CallerKey names the caller of ctx as every per-caller limit counts it: the
// principal, or the client address (an IPv6 client by its /64) when anonymous.
func CallerKey(ctx context.Context) string { return callerKey(ctx, addressKey(ctx)) }

// callerKey is CallerKey given the address key of ctx.
func callerKey(ctx context.Context, addr string) string {
	if p, ok := auth.PrincipalFrom(ctx); ok {
		return "principal " + p.Issuer + " " + p.Subject
	}
	return "addr " + addr
}
