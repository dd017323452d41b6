package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Defaults applied by NewStripe to zero Config fields.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultRetryBudget = 20 * time.Second
	DefaultMaxRetries  = 3
)

// Backoff bounds between attempts: stripe-go's own (500ms doubling to 5s), with
// jitter so that many callers failing together do not retry together.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Config configures the adapter. Only SecretKey is required.
type Config struct {
	// SecretKey is the account's secret (sk_) or restricted (rk_) key. It is sent
	// only in the Authorization header and never logged or put in an error.
	SecretKey string
	// APIBase overrides Stripe's API URL, e.g. http://127.0.0.1:12111 for
	// stripe-mock. "" means https://api.stripe.com.
	APIBase string
	// Timeout bounds one HTTP attempt (connect, headers and body). Default 10s.
	Timeout time.Duration
	// RetryBudget bounds a whole call, all attempts and waits included; the
	// caller's context deadline can only make it shorter. Default 20s.
	RetryBudget time.Duration
	// MaxRetries is how many times a transient failure is retried after the first
	// attempt. 0 means DefaultMaxRetries; negative means never retry.
	MaxRetries int
	// HTTPClient, when set, is copied and its Transport wrapped; it is not mutated.
	// Its Timeout is kept if set, else Timeout applies.
	HTTPClient *http.Client
	// Logger receives one line per call. nil discards.
	Logger *slog.Logger
	// Metrics counts calls and HTTP requests. nil counts nothing.
	Metrics *Metrics
}

// Stripe calls Stripe's API with its own key and backends. It is safe for
// concurrent use; build one per process with NewStripe.
type Stripe struct {
	api        *client.API
	key        string
	timeout    time.Duration
	budget     time.Duration
	maxRetries int
	log        *slog.Logger
	metrics    *Metrics
}

// NewStripe validates cfg, fills defaults and builds a client that never touches
// stripe-go's global key or backends.
func NewStripe(cfg Config) (*Stripe, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}

	httpClient := cfg.httpClient()
	backend := func(t stripe.SupportedBackend) stripe.Backend {
		bc := &stripe.BackendConfig{
			HTTPClient: httpClient,
			// stripe-go retries POST 5xx only when Stripe says so and sleeps
			// without watching the context; our loop in call does both, so its
			// own retries are off to keep one attempt per loop iteration.
			MaxNetworkRetries: stripe.Int64(0),
			// Its error logs print Stripe's messages, which can echo e-mails.
			LeveledLogger:   &stripe.LeveledLogger{Level: stripe.LevelNull},
			EnableTelemetry: stripe.Bool(false),
		}
		if cfg.APIBase != "" {
			bc.URL = stripe.String(cfg.APIBase)
		}
		return stripe.GetBackendWithConfig(t, bc)
	}
	api := client.New(cfg.SecretKey, &stripe.Backends{
		API:     backend(stripe.APIBackend),
		Connect: backend(stripe.ConnectBackend),
		Uploads: backend(stripe.UploadsBackend),
	})

	maxRetries := cfg.MaxRetries
	if maxRetries < 0 {
		maxRetries = 0
	}
	return &Stripe{
		api:        api,
		key:        cfg.SecretKey,
		timeout:    cfg.Timeout,
		budget:     cfg.RetryBudget,
		maxRetries: maxRetries,
		log:        cfg.Logger,
		metrics:    cfg.Metrics,
	}, nil
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RetryBudget <= 0 {
		c.RetryBudget = DefaultRetryBudget
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	return c
}

func (c Config) validate() error {
	// Never echo the key: only say what shape is expected.
	if !(strings.HasPrefix(c.SecretKey, "sk_") || strings.HasPrefix(c.SecretKey, "rk_")) ||
		strings.ContainsAny(c.SecretKey, " \t\r\n") {
		return errors.New("gateway: SecretKey must be a Stripe secret key (sk_...) or restricted key (rk_...)")
	}
	if c.APIBase != "" {
		u, err := url.Parse(c.APIBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return errors.New("gateway: APIBase must be an http(s) URL without credentials or query, e.g. http://127.0.0.1:12111")
		}
	}
	return nil
}

// httpClient gives every attempt explicit connect, TLS and header timeouts, and
// wraps the transport so each call can see statuses and request ids.
func (c Config) httpClient() *http.Client {
	if c.HTTPClient != nil {
		hc := *c.HTTPClient
		next := hc.Transport
		if next == nil {
			next = http.DefaultTransport
		}
		hc.Transport = &tracingTransport{next: next, metrics: c.Metrics}
		if hc.Timeout == 0 {
			hc.Timeout = c.Timeout
		}
		return &hc
	}
	dial := min(c.Timeout, 5*time.Second)
	return &http.Client{
		Timeout: c.Timeout,
		Transport: &tracingTransport{metrics: c.Metrics, next: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   dial,
			ResponseHeaderTimeout: c.Timeout,
			ExpectContinueTimeout: time.Second,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   20,
			IdleConnTimeout:       90 * time.Second,
		}},
	}
}

// verdict is what one attempt's failure means for the retry loop.
type verdict int

const (
	verdictRefused   verdict = iota // Stripe said no (4xx): final, not retried
	verdictLocal                    // failed here (bad params, unreadable answer): final
	verdictTransient                // network, timeout, 5xx, 429: retry if budget allows
	verdictGiveUp                   // transient, but Stripe says a retry cannot help
)

type judgement struct {
	verdict verdict
	err     error  // the error to return for Refused and Local
	detail  string // short, redacted reason for transient failures
	cause   error  // for errors.Is on ErrProviderUnavailable (context, net)
}

// call runs one Stripe request with retries. fn must build its params afresh with
// the given context and the same idempotency key each time; it is called once per
// attempt, and stripe-go's own retries are off.
func (s *Stripe) call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	start := time.Now()
	tr := &callTrace{}
	bctx, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()

	var final error
	var j judgement
	for attempt := 1; ; attempt++ {
		sentBefore := tr.last().attempts
		actx, cancelAttempt := context.WithTimeout(bctx, s.timeout)
		err := fn(withTrace(actx, tr))
		cancelAttempt()
		if err == nil {
			s.logCall(ctx, op, tr.last(), start, nil, judgement{})
			return nil
		}
		info := tr.last()
		j = s.judge(err, info, info.attempts > sentBefore)
		if j.verdict == verdictRefused || j.verdict == verdictLocal {
			final = j.err
			break
		}
		unavailable := func(why string, cause error) error {
			if cause == nil {
				cause = j.cause
			}
			return &unavailableError{attempts: info.attempts, cause: cause, detail: j.detail + why}
		}
		if ctx.Err() != nil {
			final = unavailable("; caller's context ended", ctx.Err())
			break
		}
		if bctx.Err() != nil {
			final = unavailable("; retry budget exhausted", context.DeadlineExceeded)
			break
		}
		if j.verdict == verdictGiveUp || attempt > s.maxRetries {
			final = unavailable("", nil)
			break
		}
		wait := s.backoff(attempt)
		// Skip a last attempt that would have almost no time to get an answer.
		if dl, ok := bctx.Deadline(); ok && time.Until(dl) <= wait+min(s.timeout/4, time.Second) {
			final = unavailable("; retry budget exhausted", nil)
			break
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-bctx.Done():
			timer.Stop()
			if ctx.Err() != nil {
				final = unavailable("; caller's context ended", ctx.Err())
			} else {
				final = unavailable("; retry budget exhausted", context.DeadlineExceeded)
			}
		}
		if final != nil {
			break
		}
	}
	s.logCall(ctx, op, tr.last(), start, final, j)
	return final
}

// judge classifies a failed attempt. sent tells whether a request left this process.
func (s *Stripe) judge(err error, info attemptInfo, sent bool) judgement {
	var se *stripe.Error
	if errors.As(err, &se) && se.HTTPStatusCode != 0 {
		status := se.HTTPStatusCode
		transient := status >= 500 || status == http.StatusTooManyRequests
		detail := fmt.Sprintf("HTTP %d %s", status, se.Type)
		switch {
		case info.shouldRetry == "true":
			// Stripe vouches that repeating this exact request is safe (lock
			// timeouts, concurrent use of one idempotency key).
			return judgement{verdict: verdictTransient, detail: detail}
		case transient && info.shouldRetry == "false":
			return judgement{verdict: verdictGiveUp, detail: detail}
		case transient:
			return judgement{verdict: verdictTransient, detail: detail}
		}
		return judgement{verdict: verdictRefused, err: s.providerError(se)}
	}

	switch {
	case info.status != 0 && info.bodyFailed:
		return judgement{verdict: verdictTransient, detail: fmt.Sprintf("HTTP %d body cut off", info.status), cause: s.scrub(err)}
	case info.status >= 500 || info.status == http.StatusTooManyRequests:
		// An error page that is not Stripe's JSON: a proxy or load balancer.
		return judgement{verdict: verdictTransient, detail: fmt.Sprintf("HTTP %d", info.status)}
	case info.status != 0:
		// stripe-go's message quotes the body, which may hold personal data.
		return judgement{verdict: verdictLocal, err: fmt.Errorf("gateway: unreadable answer from Stripe (HTTP %d, request %s)", info.status, info.requestID)}
	case sent || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return judgement{verdict: verdictTransient, detail: s.networkDetail(err), cause: s.scrub(err)}
	}
	return judgement{verdict: verdictLocal, err: fmt.Errorf("gateway: request not sent: %w", s.scrub(err))}
}

func (s *Stripe) providerError(se *stripe.Error) *ProviderError {
	return &ProviderError{
		HTTPStatus:  se.HTTPStatusCode,
		Type:        string(se.Type),
		Code:        string(se.Code),
		DeclineCode: string(se.DeclineCode),
		Param:       se.Param,
		Message:     s.redact(se.Msg),
		RequestID:   se.RequestID,
	}
}

// networkDetail names a transport failure without the request URL, whose query
// string may carry user input (a promotion code).
func (s *Stripe) networkDetail(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		path := ""
		if u, perr := url.Parse(ue.URL); perr == nil {
			path = u.Path
		}
		if ue.Timeout() {
			return fmt.Sprintf("%s %s: timeout", ue.Op, path)
		}
		return s.redact(fmt.Sprintf("%s %s: %v", ue.Op, path, ue.Err))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return s.redact(err.Error())
}

// scrub keeps err for errors.Is/As but presents a key-free message.
func (s *Stripe) scrub(err error) error {
	return &redactedError{msg: s.networkDetail(err), cause: err}
}

var keyPattern = regexp.MustCompile(`\b(sk|rk|pk)_(live|test)_[0-9A-Za-z]+`)

// redact removes our key, and anything shaped like a Stripe key, from text that
// may leave the package.
func (s *Stripe) redact(msg string) string {
	if s.key != "" {
		msg = strings.ReplaceAll(msg, s.key, "[REDACTED]")
	}
	return keyPattern.ReplaceAllString(msg, "[REDACTED]")
}

// backoff grows exponentially from minBackoff, capped, with "equal jitter": a
// wait in [d/2, d].
func (s *Stripe) backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 16 {
		d = min(minBackoff<<(attempt-1), maxBackoff)
	}
	half := d / 2
	return half + rand.N(half+1)
}

// logCall writes the one line per call: never the key, an e-mail, a name or
// Stripe's free-text message.
func (s *Stripe) logCall(ctx context.Context, op string, info attemptInfo, start time.Time, err error, j judgement) {
	attrs := []slog.Attr{
		slog.String("op", op),
		slog.String("stripe_request_id", info.requestID),
		slog.Int("status", info.status),
		slog.Int("attempts", info.attempts),
		slog.Int64("duration_ms", time.Since(start).Milliseconds()),
	}
	level := slog.LevelInfo
	var pe *ProviderError
	outcome := OutcomeFailed
	switch {
	case err == nil:
		outcome = OutcomeOK
		attrs = append(attrs, slog.String("outcome", "ok"))
	case errors.Is(err, ErrProviderUnavailable):
		outcome = OutcomeUnavailable
		level = slog.LevelError
		attrs = append(attrs, slog.String("outcome", "unavailable"), slog.String("error", j.detail))
	case errors.As(err, &pe):
		outcome = OutcomeRefused
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("outcome", "refused"),
			slog.String("error_type", pe.Type), slog.String("error_code", pe.Code),
			slog.String("decline_code", pe.DeclineCode), slog.String("param", pe.Param))
	default:
		level = slog.LevelError
		attrs = append(attrs, slog.String("outcome", "failed"), slog.String("error", s.redact(err.Error())))
	}
	s.metrics.observeCall(op, outcome, time.Since(start))
	s.log.LogAttrs(ctx, level, "stripe call", attrs...)
}

// checkKey enforces Stripe's limit before anything is sent; stripe-go would trim
// spaces silently, so a key must already be what the caller thinks it is.
func checkKey(key string) error {
	if key == "" || len(key) > 255 || strings.TrimSpace(key) != key {
		return ErrInvalidIdempotencyKey
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return ErrInvalidIdempotencyKey
		}
	}
	return nil
}
