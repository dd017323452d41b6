package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	stripe "github.com/stripe/stripe-go/v76"

	"github.com/scoville/scoville/logging/logtest"
)

// The tests in this file put a fault-injecting server in Stripe's place.

const (
	testKey   = "sk_test_FaultInjectionSecret0123456789"
	testEmail = "ada@example.com"
	testName  = "Ada Lovelace"

	testTimeout = 200 * time.Millisecond
	testBudget  = time.Second
)

// logBuffer is a log sink safe to read while handlers write.
type logBuffer struct{ logtest.Buffer }

// lines returns the decoded "stripe call" log records.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		if m["msg"] == "stripe call" {
			out = append(out, m)
		}
	}
	return out
}

// recorded is one request as the fake Stripe saw it.
type recorded struct {
	method, path   string
	idempotencyKey string
	authorization  string
	form           url.Values
}

type fakeStripe struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	handle func(n int, w http.ResponseWriter, r *http.Request)
}

func (f *fakeStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{
		method: r.Method, path: r.URL.Path,
		idempotencyKey: r.Header.Get("Idempotency-Key"),
		authorization:  r.Header.Get("Authorization"),
		form:           r.Form,
	})
	n := len(f.reqs)
	f.mu.Unlock()
	w.Header().Set("Request-Id", fmt.Sprintf("req_%d", n))
	w.Header().Set("Content-Type", "application/json")
	f.handle(n, w, r)
}

func (f *fakeStripe) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

type faultBundle struct {
	gw   *Stripe
	fake *fakeStripe
	log  *logBuffer
}

// setup starts a fake Stripe answering with handle (n counts attempts from 1) and
// an adapter with short timeouts so the suite stays fast.
func setup(t *testing.T, handle func(n int, w http.ResponseWriter, r *http.Request)) faultBundle {
	t.Helper()
	fake := &fakeStripe{handle: handle}
	fake.srv = httptest.NewServer(fake)
	t.Cleanup(fake.srv.Close)
	logs := &logBuffer{}
	gw, err := NewStripe(Config{
		SecretKey:   testKey,
		APIBase:     fake.srv.URL,
		Timeout:     testTimeout,
		RetryBudget: testBudget,
		Logger:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	return faultBundle{gw: gw, fake: fake, log: logs}
}

// genericOK decodes into every object the adapter reads.
const genericOK = `{"id":"obj_1","object":"thing","url":"https://stripe.test/s/1","default_price":"price_1","status":"active","currency":"eur","customer":"cus_1"}`

func ok(w http.ResponseWriter) { _, _ = w.Write([]byte(genericOK)) }

// firstThenOK answers the first attempt with first and every later one with ok: a
// fault that a retry gets past.
func firstThenOK(first func(w http.ResponseWriter, r *http.Request)) func(n int, w http.ResponseWriter, r *http.Request) {
	return func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			first(w, r)
			return
		}
		ok(w)
	}
}

// succeeds is the check of a call that must end without an error.
func succeeds(t *testing.T, err error, _ int) { require.NoError(t, err) }

func stripeError(w http.ResponseWriter, status int, typ, code, decline, param, msg string) {
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{"error": map[string]string{
		"type": typ, "code": code, "decline_code": decline, "param": param, "message": msg,
	}})
	_, _ = w.Write(body)
}

func hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

// mutatingOps calls every method that changes something at Stripe.
var mutatingOps = []struct {
	name  string
	run   func(ctx context.Context, gw *Stripe, key string) error
	steps []string // key suffixes of the requests one call makes; nil: one request under the key
}{
	{"CreateCustomer", func(ctx context.Context, gw *Stripe, key string) error {
		_, err := gw.CreateCustomer(ctx, key, CustomerInput{OurCustomerID: "c_1", Email: testEmail, Name: testName})
		return err
	}, nil},
	{"CreateProductAndPrice", func(ctx context.Context, gw *Stripe, key string) error {
		_, _, err := gw.CreateProductAndPrice(ctx, key, PlanInput{Name: "Box", Interval: IntervalMonth, Amount: 100, Currency: "EUR", OurPlanID: "p_1"})
		return err
	}, []string{"-product", "-price"}},
	{"CreateCheckoutSession", func(ctx context.Context, gw *Stripe, key string) error {
		_, err := gw.CreateCheckoutSession(ctx, key, CheckoutInput{CustomerID: "cus_1", PriceID: "price_1", SuccessURL: "https://s.example/ok", CancelURL: "https://s.example/no"})
		return err
	}, nil},
	{"CreateSubscription", func(ctx context.Context, gw *Stripe, key string) error {
		_, _, err := gw.CreateSubscription(ctx, key, SubscriptionInput{CustomerID: "cus_1", PriceID: "price_1"})
		return err
	}, nil},
	{"ChangeSubscriptionPrice", func(ctx context.Context, gw *Stripe, key string) error {
		_, err := gw.ChangeSubscriptionPrice(ctx, key, "sub_1", ChangePriceInput{ItemID: "si_1", PriceID: "price_2", Prorate: true})
		return err
	}, nil},
	{"PauseSubscription", func(ctx context.Context, gw *Stripe, key string) error {
		_, err := gw.PauseSubscription(ctx, key, "sub_1", nil)
		return err
	}, nil},
	{"ResumeSubscription", func(ctx context.Context, gw *Stripe, key string) error {
		_, err := gw.ResumeSubscription(ctx, key, "sub_1")
		return err
	}, nil},
	{"CancelSubscription at period end", func(ctx context.Context, gw *Stripe, key string) error {
		_, err := gw.CancelSubscription(ctx, key, "sub_1", true)
		return err
	}, nil},
	{"CancelSubscription now", func(ctx context.Context, gw *Stripe, key string) error {
		_, err := gw.CancelSubscription(ctx, key, "sub_1", false)
		return err
	}, nil},
	{"CreateBillingPortalSession", func(ctx context.Context, gw *Stripe, key string) error {
		_, err := gw.CreateBillingPortalSession(ctx, key, "cus_1", "https://s.example/account")
		return err
	}, nil},
}

func TestEveryMutationRetriesWithTheCallersKey(t *testing.T) {
	t.Parallel()
	for _, op := range mutatingOps {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, firstThenOK(func(w http.ResponseWriter, _ *http.Request) {
				stripeError(w, 500, "api_error", "", "", "", "An unknown error occurred")
			}))
			key := "order-42:" + op.name
			require.NoError(t, op.run(context.Background(), b.gw, key))

			steps := op.steps
			if steps == nil {
				steps = []string{""}
			}
			// The first request fails once and is retried; the others go through.
			wantKeys := []string{key + steps[0]}
			for _, s := range steps {
				wantKeys = append(wantKeys, key+s)
			}
			reqs := b.fake.requests()
			require.Len(t, reqs, len(wantKeys))
			for i, r := range reqs {
				require.Equal(t, wantKeys[i], r.idempotencyKey, "the same caller-derived key on every attempt")
				require.Equal(t, "Bearer "+testKey, r.authorization, "the adapter's own key, not stripe.Key")
			}
			lines := b.log.lines(t)
			require.Len(t, lines, len(steps), "one log line per request")
			require.EqualValues(t, 2, lines[0]["attempts"])
			require.Equal(t, "req_2", lines[0]["stripe_request_id"])
		})
	}
	require.Empty(t, stripe.Key, "the global key is never set")
}

func TestFaults(t *testing.T) {
	t.Parallel()
	createCustomer := func(ctx context.Context, gw *Stripe) error {
		_, err := gw.CreateCustomer(ctx, "cus-create-1", CustomerInput{OurCustomerID: "c_1", Email: testEmail, Name: testName})
		return err
	}
	getSubscription := func(ctx context.Context, gw *Stripe) error {
		_, err := gw.GetSubscription(ctx, "sub_1")
		return err
	}
	getInvoice := func(ctx context.Context, gw *Stripe) error {
		_, err := gw.GetInvoice(ctx, "in_1")
		return err
	}
	getCharge := func(ctx context.Context, gw *Stripe) error {
		_, err := gw.GetCharge(ctx, "ch_1")
		return err
	}

	tests := []struct {
		name         string
		call         func(context.Context, *Stripe) error
		handle       func(n int, w http.ResponseWriter, r *http.Request)
		wantAttempts int // 0: checked by check instead
		check        func(t *testing.T, err error, attempts int)
	}{
		{
			name: "500 then 200 succeeds on the second attempt",
			call: createCustomer,
			handle: firstThenOK(func(w http.ResponseWriter, r *http.Request) {
				stripeError(w, 500, "api_error", "", "", "", "boom")
			}),
			wantAttempts: 2,
			check:        succeeds,
		},
		{
			name: "an answer slower than Timeout is abandoned and retried",
			call: createCustomer,
			handle: firstThenOK(func(w http.ResponseWriter, r *http.Request) {
				hang(r)
			}),
			wantAttempts: 2,
			check:        succeeds,
		},
		{
			name: "a body that stalls after the headers is retried",
			call: createCustomer,
			handle: firstThenOK(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"id":`))
				w.(http.Flusher).Flush()
				hang(r)
			}),
			wantAttempts: 2,
			check:        succeeds,
		},
		{
			name: "a proxy's HTML 502 is retried",
			call: createCustomer,
			handle: firstThenOK(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(502)
				_, _ = w.Write([]byte("<html>Bad gateway</html>"))
			}),
			wantAttempts: 2,
			check:        succeeds,
		},
		{
			name: "a GET is retried too, without an idempotency key",
			call: getSubscription,
			handle: firstThenOK(func(w http.ResponseWriter, r *http.Request) {
				stripeError(w, 503, "api_error", "", "", "", "unavailable")
			}),
			wantAttempts: 2,
			check:        succeeds,
		},
		{
			name: "429 lock_timeout then 200",
			call: createCustomer,
			handle: firstThenOK(func(w http.ResponseWriter, r *http.Request) {
				stripeError(w, 429, "invalid_request_error", "lock_timeout", "", "", "locked")
			}),
			wantAttempts: 2,
			check:        succeeds,
		},
		{
			name: "402 card_declined is not retried",
			call: createCustomer,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				stripeError(w, 402, "card_error", "card_declined", "insufficient_funds", "payment_method", "Your card has insufficient funds.")
			},
			wantAttempts: 1,
			check: func(t *testing.T, err error, _ int) {
				require.True(t, IsCardDeclined(err))
				require.NotErrorIs(t, err, ErrProviderUnavailable)
				var pe *ProviderError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, ProviderError{
					HTTPStatus: 402, Type: "card_error", Code: "card_declined", DeclineCode: "insufficient_funds",
					Param: "payment_method", Message: "Your card has insufficient funds.", RequestID: "req_1",
				}, *pe)
			},
		},
		{
			name: "400 is not retried",
			call: createCustomer,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				stripeError(w, 400, "invalid_request_error", "email_invalid", "", "email", "Invalid email address: "+testEmail)
			},
			wantAttempts: 1,
			check: func(t *testing.T, err error, _ int) {
				require.False(t, IsCardDeclined(err))
				var pe *ProviderError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, 400, pe.HTTPStatus)
				require.Equal(t, "email", pe.Param)
				require.NotContains(t, err.Error(), testEmail, "Stripe's message echoes input: kept out of Error()")
			},
		},
		{
			name: "404 resource_missing is ErrNotFound",
			call: getSubscription,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				stripeError(w, 404, "invalid_request_error", "resource_missing", "", "id", "No such subscription: 'sub_1'")
			},
			wantAttempts: 1,
			check: func(t *testing.T, err error, _ int) {
				require.ErrorIs(t, err, ErrNotFound)
				require.NotErrorIs(t, err, ErrProviderUnavailable)
			},
		},
		{
			name: "GetInvoice of an unknown invoice is ErrNotFound",
			call: getInvoice,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				stripeError(w, 404, "invalid_request_error", "resource_missing", "", "id", "No such invoice: 'in_1'")
			},
			wantAttempts: 1,
			check: func(t *testing.T, err error, _ int) {
				require.ErrorIs(t, err, ErrNotFound)
				require.NotErrorIs(t, err, ErrProviderUnavailable)
			},
		},
		{
			name: "GetCharge of an unknown charge is ErrNotFound",
			call: getCharge,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				stripeError(w, 404, "invalid_request_error", "resource_missing", "", "id", "No such charge: 'ch_1'")
			},
			wantAttempts: 1,
			check: func(t *testing.T, err error, _ int) {
				require.ErrorIs(t, err, ErrNotFound)
				require.NotErrorIs(t, err, ErrProviderUnavailable)
			},
		},
		{
			name: "GetInvoice retries 5xx",
			call: getInvoice,
			handle: firstThenOK(func(w http.ResponseWriter, r *http.Request) {
				stripeError(w, 500, "api_error", "", "", "", "unavailable")
			}),
			wantAttempts: 2,
			check:        succeeds,
		},
		{
			name: "GetCharge retries 5xx",
			call: getCharge,
			handle: firstThenOK(func(w http.ResponseWriter, r *http.Request) {
				stripeError(w, 503, "api_error", "", "", "", "unavailable")
			}),
			wantAttempts: 2,
			check:        succeeds,
		},
		{
			name: "GetCharge gives ErrProviderUnavailable when 5xx persists",
			call: getCharge,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				stripeError(w, 502, "api_error", "", "", "", "down")
			},
			check: func(t *testing.T, err error, attempts int) {
				require.ErrorIs(t, err, ErrProviderUnavailable)
				require.NotErrorIs(t, err, ErrNotFound)
				require.GreaterOrEqual(t, attempts, 2)
			},
		},
		{
			name: "409 idempotency_error is Stripe's refusal, not retried",
			call: createCustomer,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				stripeError(w, 409, "idempotency_error", "", "", "", "Keys for idempotent requests can only be used with the same parameters")
			},
			wantAttempts: 1,
			check: func(t *testing.T, err error, _ int) {
				var pe *ProviderError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, "idempotency_error", pe.Type)
			},
		},
		{
			name: "always 503 gives ErrProviderUnavailable within the budget",
			call: createCustomer,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				stripeError(w, 503, "api_error", "", "", "", "down")
			},
			check: func(t *testing.T, err error, attempts int) {
				require.ErrorIs(t, err, ErrProviderUnavailable)
				var pe *ProviderError
				require.False(t, errors.As(err, &pe), "unavailable never reads as Stripe's refusal")
				require.GreaterOrEqual(t, attempts, 2)
				require.LessOrEqual(t, attempts, 1+DefaultMaxRetries)
			},
		},
		{
			name: "always 429 gives ErrProviderUnavailable",
			call: createCustomer,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				stripeError(w, 429, "invalid_request_error", "rate_limit", "", "", "Too many requests")
			},
			check: func(t *testing.T, err error, attempts int) {
				require.ErrorIs(t, err, ErrProviderUnavailable)
				require.GreaterOrEqual(t, attempts, 2)
			},
		},
		{
			name: "always hanging gives ErrProviderUnavailable within the budget",
			call: createCustomer,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				hang(r)
			},
			check: func(t *testing.T, err error, attempts int) {
				require.ErrorIs(t, err, ErrProviderUnavailable)
				require.GreaterOrEqual(t, attempts, 2)
			},
		},
		{
			name: "Stripe-Should-Retry: false stops at one attempt",
			call: createCustomer,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Stripe-Should-Retry", "false")
				stripeError(w, 500, "api_error", "", "", "", "cached failure")
			},
			wantAttempts: 1,
			check:        func(t *testing.T, err error, _ int) { require.ErrorIs(t, err, ErrProviderUnavailable) },
		},
		{
			name: "401 echoing the key never surfaces it",
			call: createCustomer,
			handle: func(n int, w http.ResponseWriter, r *http.Request) {
				stripeError(w, 401, "invalid_request_error", "", "", "", "Invalid API Key provided: "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			},
			wantAttempts: 1,
			check: func(t *testing.T, err error, _ int) {
				var pe *ProviderError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, 401, pe.HTTPStatus)
				require.NotContains(t, pe.Message, testKey)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.handle)
			start := time.Now()
			err := tt.call(context.Background(), b.gw)
			elapsed := time.Since(start)

			reqs := b.fake.requests()
			if tt.wantAttempts > 0 {
				require.Len(t, reqs, tt.wantAttempts)
			}
			tt.check(t, err, len(reqs))
			require.Less(t, elapsed, testBudget+300*time.Millisecond, "the retry budget bounds the call")

			keys := map[string]bool{}
			for _, r := range reqs {
				keys[r.idempotencyKey] = true
			}
			require.Len(t, keys, 1, "one idempotency key across attempts")

			logs := b.log.String()
			lines := b.log.lines(t)
			require.Len(t, lines, 1, "one log line per call")
			require.EqualValues(t, len(reqs), lines[0]["attempts"])
			for _, secret := range []string{testKey, testEmail, testName} {
				require.NotContains(t, logs, secret)
				if err != nil {
					require.NotContains(t, err.Error(), secret)
				}
			}
		})
	}
}

// closedAddr is a loopback address nothing listens on: a connection is refused at once.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestConnectionRefusedIsUnavailable(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	gw, err := NewStripe(Config{
		SecretKey: testKey, APIBase: "http://" + closedAddr(t),
		Timeout: testTimeout, RetryBudget: testBudget,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	require.NoError(t, err)

	start := time.Now()
	_, err = gw.CreateCustomer(context.Background(), "cus-create-1", CustomerInput{OurCustomerID: "c_1", Email: testEmail})
	require.ErrorIs(t, err, ErrProviderUnavailable)
	require.Less(t, time.Since(start), testBudget+300*time.Millisecond)
	require.NotContains(t, err.Error(), testKey)
	require.NotContains(t, logs.String(), testKey)
	require.NotContains(t, logs.String(), testEmail)
	lines := logs.lines(t)
	require.Len(t, lines, 1)
	require.Equal(t, "unavailable", lines[0]["outcome"])
	require.GreaterOrEqual(t, lines[0]["attempts"], float64(2))
}

func TestCallerContextEndsTheCall(t *testing.T) {
	t.Parallel()
	b := setup(t, func(n int, w http.ResponseWriter, r *http.Request) { hang(r) })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.gw.GetSubscription(ctx, "sub_1")
	require.ErrorIs(t, err, ErrProviderUnavailable)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), testTimeout, "the caller's deadline wins over Timeout")
	require.Len(t, b.fake.requests(), 1)
}

func TestBadArgumentsSendNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, func(n int, w http.ResponseWriter, r *http.Request) { ok(w) })
	ctx := context.Background()
	past := time.Now().Add(-time.Hour)

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"empty key", func() error {
			_, err := b.gw.CreateCustomer(ctx, "", CustomerInput{OurCustomerID: "c_1"})
			return err
		}, ErrInvalidIdempotencyKey},
		{"key over 255 characters", func() error {
			_, err := b.gw.ResumeSubscription(ctx, strings.Repeat("k", 256), "sub_1")
			return err
		}, ErrInvalidIdempotencyKey},
		{"key with a newline", func() error {
			_, err := b.gw.CancelSubscription(ctx, "a\nb", "sub_1", false)
			return err
		}, ErrInvalidIdempotencyKey},
		{"key with surrounding space", func() error {
			_, err := b.gw.CreateBillingPortalSession(ctx, " k ", "cus_1", "https://s.example")
			return err
		}, ErrInvalidIdempotencyKey},
		{"unknown interval", func() error {
			_, _, err := b.gw.CreateProductAndPrice(ctx, "k", PlanInput{Name: "x", Interval: "WEEK", Amount: 1, Currency: "EUR", OurPlanID: "p"})
			return err
		}, ErrInvalidInput},
		{"lower-case currency", func() error {
			_, _, err := b.gw.CreateProductAndPrice(ctx, "k", PlanInput{Name: "x", Interval: IntervalYear, Amount: 1, Currency: "eur", OurPlanID: "p"})
			return err
		}, ErrInvalidInput},
		{"zero amount", func() error {
			_, _, err := b.gw.CreateProductAndPrice(ctx, "k", PlanInput{Name: "x", Interval: IntervalYear, Amount: 0, Currency: "EUR", OurPlanID: "p"})
			return err
		}, ErrInvalidInput},
		{"relative success URL", func() error {
			_, err := b.gw.CreateCheckoutSession(ctx, "k", CheckoutInput{CustomerID: "c", PriceID: "p", SuccessURL: "/ok", CancelURL: "https://s.example"})
			return err
		}, ErrInvalidInput},
		{"negative trial", func() error {
			_, _, err := b.gw.CreateSubscription(ctx, "k", SubscriptionInput{CustomerID: "c", PriceID: "p", TrialDays: -1})
			return err
		}, ErrInvalidInput},
		{"resume date in the past", func() error {
			_, err := b.gw.PauseSubscription(ctx, "k", "sub_1", &past)
			return err
		}, ErrInvalidInput},
		{"missing subscription id", func() error {
			_, err := b.gw.GetSubscription(ctx, "")
			return err
		}, ErrInvalidInput},
		{"missing invoice id", func() error {
			_, err := b.gw.GetInvoice(ctx, " ")
			return err
		}, ErrInvalidInput},
		{"missing charge id", func() error {
			_, err := b.gw.GetCharge(ctx, "")
			return err
		}, ErrInvalidInput},
		{"empty promotion code", func() error {
			_, err := b.gw.FindPromotionCode(ctx, "  ")
			return err
		}, ErrPromotionCodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, tt.call(), tt.want)
		})
	}
	require.Empty(t, b.fake.requests())
}

func TestNewStripeValidatesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no key", Config{}},
		{"publishable key", Config{SecretKey: "pk_test_Abc123"}},
		{"key with whitespace", Config{SecretKey: "sk_test_Abc 123"}},
		{"relative base", Config{SecretKey: testKey, APIBase: "127.0.0.1:12111"}},
		{"credentials in base", Config{SecretKey: testKey, APIBase: "http://u:p@127.0.0.1:12111"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewStripe(tt.cfg)
			require.Error(t, err)
			require.NotContains(t, err.Error(), "Abc")
			require.NotContains(t, err.Error(), testKey)
		})
	}
	gw, err := NewStripe(Config{SecretKey: testKey})
	require.NoError(t, err)
	require.Equal(t, DefaultTimeout, gw.timeout)
	require.Equal(t, DefaultRetryBudget, gw.budget)
	require.Equal(t, DefaultMaxRetries, gw.maxRetries)
}

// requestShape runs one call against a fake that answers body, and returns the last
// request it saw (the one that matters when a call makes several).
func requestShape(t *testing.T, body string, call func(gw *Stripe) error) recorded {
	t.Helper()
	b := setup(t, func(n int, w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) })
	require.NoError(t, call(b.gw))
	reqs := b.fake.requests()
	require.NotEmpty(t, reqs)
	return reqs[len(reqs)-1]
}

func TestRequestsSayWhatStripeNeeds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	resumeAt := time.Now().Add(48 * time.Hour).Truncate(time.Second)

	tests := []struct {
		name       string
		call       func(gw *Stripe) error
		wantMethod string
		wantPath   string
		wantForm   map[string]string
		wantAbsent []string
	}{
		{
			name: "customer carries our id, e-mail and name",
			call: func(gw *Stripe) error {
				_, err := gw.CreateCustomer(ctx, "k1", CustomerInput{OurCustomerID: "c_9", Email: testEmail, Name: testName})
				return err
			},
			wantMethod: "POST", wantPath: "/v1/customers",
			wantForm: map[string]string{"metadata[scoville_customer_id]": "c_9", "email": testEmail, "name": testName},
		},
		{
			name: "quarterly plan is every 3 months, currency lower case",
			call: func(gw *Stripe) error {
				_, _, err := gw.CreateProductAndPrice(ctx, "k2", PlanInput{Name: "Box", Description: "Hot", Interval: IntervalQuarter, Amount: 4500, Currency: "EUR", OurPlanID: "p_9"})
				return err
			},
			wantMethod: "POST", wantPath: "/v1/prices",
			wantForm: map[string]string{
				"metadata[scoville_plan_id]": "p_9", "currency": "eur", "unit_amount": "4500",
				"recurring[interval]": "month", "recurring[interval_count]": "3",
			},
		},
		{
			name: "checkout is subscription mode with trial, discount, metadata and tax",
			call: func(gw *Stripe) error {
				_, err := gw.CreateCheckoutSession(ctx, "k3", CheckoutInput{
					CustomerID: "cus_1", PriceID: "price_1", SuccessURL: "https://s.example/ok", CancelURL: "https://s.example/no",
					ClientReferenceID: "ref_1", TrialDays: 14, PromotionCodeID: "promo_1",
					Metadata: map[string]string{"scoville_subscription_id": "s_1"}, AutomaticTax: true,
					ShippingCountries: []string{"US", "CA"},
				})
				return err
			},
			wantMethod: "POST", wantPath: "/v1/checkout/sessions",
			wantForm: map[string]string{
				"mode": "subscription", "customer": "cus_1", "line_items[0][price]": "price_1", "line_items[0][quantity]": "1",
				"success_url": "https://s.example/ok", "cancel_url": "https://s.example/no", "client_reference_id": "ref_1",
				"subscription_data[trial_period_days]": "14", "discounts[0][promotion_code]": "promo_1",
				"metadata[scoville_subscription_id]": "s_1", "subscription_data[metadata][scoville_subscription_id]": "s_1",
				"automatic_tax[enabled]": "true", "customer_update[address]": "auto",
				"shipping_address_collection[allowed_countries][0]": "US", "shipping_address_collection[allowed_countries][1]": "CA",
			},
			wantAbsent: []string{"payment_method_types[0]"},
		},
		{
			name: "subscription is default_incomplete and saves the payment method",
			call: func(gw *Stripe) error {
				_, _, err := gw.CreateSubscription(ctx, "k4", SubscriptionInput{CustomerID: "cus_1", PriceID: "price_1", TrialDays: 7, PromotionCodeID: "promo_1"})
				return err
			},
			wantMethod: "POST", wantPath: "/v1/subscriptions",
			wantForm: map[string]string{
				"customer": "cus_1", "items[0][price]": "price_1", "items[0][quantity]": "1",
				"payment_behavior": "default_incomplete", "payment_settings[save_default_payment_method]": "on_subscription",
				"expand[0]": "latest_invoice.payment_intent", "expand[1]": "pending_setup_intent",
				"trial_period_days": "7", "promotion_code": "promo_1",
			},
		},
		{
			name: "plan change prorates",
			call: func(gw *Stripe) error {
				_, err := gw.ChangeSubscriptionPrice(ctx, "k5", "sub_1", ChangePriceInput{ItemID: "si_1", PriceID: "price_2", Prorate: true})
				return err
			},
			wantMethod: "POST", wantPath: "/v1/subscriptions/sub_1",
			wantForm: map[string]string{"items[0][id]": "si_1", "items[0][price]": "price_2", "proration_behavior": "create_prorations"},
		},
		{
			name: "plan change without proration credits nothing",
			call: func(gw *Stripe) error {
				_, err := gw.ChangeSubscriptionPrice(ctx, "k5n", "sub_1", ChangePriceInput{ItemID: "si_1", PriceID: "price_2"})
				return err
			},
			wantMethod: "POST", wantPath: "/v1/subscriptions/sub_1",
			wantForm: map[string]string{"items[0][id]": "si_1", "items[0][price]": "price_2", "proration_behavior": "none"},
		},
		{
			name: "pause voids invoices until the resume date",
			call: func(gw *Stripe) error {
				_, err := gw.PauseSubscription(ctx, "k6", "sub_1", &resumeAt)
				return err
			},
			wantMethod: "POST", wantPath: "/v1/subscriptions/sub_1",
			wantForm: map[string]string{"pause_collection[behavior]": "void", "pause_collection[resumes_at]": fmt.Sprint(resumeAt.Unix())},
		},
		{
			name: "resume unsets pause_collection",
			call: func(gw *Stripe) error {
				_, err := gw.ResumeSubscription(ctx, "k7", "sub_1")
				return err
			},
			wantMethod: "POST", wantPath: "/v1/subscriptions/sub_1",
			wantForm: map[string]string{"pause_collection": ""},
		},
		{
			name: "cancel at period end is an update",
			call: func(gw *Stripe) error {
				_, err := gw.CancelSubscription(ctx, "k8", "sub_1", true)
				return err
			},
			wantMethod: "POST", wantPath: "/v1/subscriptions/sub_1",
			wantForm: map[string]string{"cancel_at_period_end": "true"},
		},
		{
			name: "cancel now is Stripe's cancel",
			call: func(gw *Stripe) error {
				_, err := gw.CancelSubscription(ctx, "k9", "sub_1", false)
				return err
			},
			wantMethod: "DELETE", wantPath: "/v1/subscriptions/sub_1",
		},
		{
			name: "billing portal returns to our page",
			call: func(gw *Stripe) error {
				_, err := gw.CreateBillingPortalSession(ctx, "k10", "cus_1", "https://s.example/account")
				return err
			},
			wantMethod: "POST", wantPath: "/v1/billing_portal/sessions",
			wantForm: map[string]string{"customer": "cus_1", "return_url": "https://s.example/account"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := requestShape(t, genericOK, tt.call)
			require.Equal(t, tt.wantMethod, r.method)
			require.Equal(t, tt.wantPath, r.path)
			require.NotEmpty(t, r.idempotencyKey)
			for k, v := range tt.wantForm {
				require.Contains(t, r.form, k)
				require.Equal(t, v, r.form.Get(k), k)
			}
			for _, k := range tt.wantAbsent {
				require.NotContains(t, r.form, k)
			}
		})
	}
}

func TestSubscriptionIsMappedToPlainTypes(t *testing.T) {
	t.Parallel()
	const body = `{
	  "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "incomplete",
	  "current_period_start": 1700000000, "current_period_end": 1702592000, "created": 1699990000,
	  "cancel_at_period_end": true, "currency": "eur", "metadata": {"scoville_subscription_id": "s_1"},
	  "pause_collection": {"behavior": "void", "resumes_at": 1705000000},
	  "items": {"object": "list", "data": [{"id": "si_1", "quantity": 2, "price": {"id": "price_1", "unit_amount": 1250, "currency": "eur"}}]},
	  "latest_invoice": {"id": "in_1", "payment_intent": {"id": "pi_1", "client_secret": "pi_1_secret_abc"}},
	  "pending_setup_intent": null
	}`
	var secret string
	var sub Subscription
	requestShape(t, body, func(gw *Stripe) error {
		var err error
		sub, secret, err = gw.CreateSubscription(context.Background(), "k", SubscriptionInput{CustomerID: "cus_1", PriceID: "price_1"})
		return err
	})
	resumes := time.Unix(1705000000, 0).UTC()
	require.Equal(t, Subscription{
		ID: "sub_1", CustomerID: "cus_1", Status: "incomplete", PriceID: "price_1", ItemID: "si_1",
		CurrentPeriodStart: time.Unix(1700000000, 0).UTC(), CurrentPeriodEnd: time.Unix(1702592000, 0).UTC(),
		CancelAtPeriodEnd: true, PauseBehavior: "void", PausedUntil: &resumes, LatestInvoiceID: "in_1",
		Amount: 2500, Currency: "EUR", Metadata: map[string]string{"scoville_subscription_id": "s_1"},
		Created: time.Unix(1699990000, 0).UTC(),
	}, sub)
	require.Equal(t, "pi_1_secret_abc", secret)
}

func TestTrialSubscriptionReturnsTheSetupIntentSecret(t *testing.T) {
	t.Parallel()
	const body = `{"id": "sub_1", "status": "trialing",
	  "latest_invoice": {"id": "in_1", "payment_intent": null},
	  "pending_setup_intent": {"id": "seti_1", "client_secret": "seti_1_secret_xyz"}}`
	var secret string
	requestShape(t, body, func(gw *Stripe) error {
		var err error
		_, secret, err = gw.CreateSubscription(context.Background(), "k", SubscriptionInput{CustomerID: "cus_1", PriceID: "price_1", TrialDays: 14})
		return err
	})
	require.Equal(t, "seti_1_secret_xyz", secret)
}

func TestFindPromotionCode(t *testing.T) {
	t.Parallel()
	future, past := time.Now().Add(time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	list := func(items ...string) string {
		return `{"object":"list","has_more":false,"url":"/v1/promotion_codes","data":[` + strings.Join(items, ",") + `]}`
	}
	tests := []struct {
		name    string
		body    string
		wantID  string
		wantErr error
	}{
		{"active", list(`{"id":"promo_1","code":"SPICY","active":true,"coupon":{"id":"c1","valid":true}}`), "promo_1", nil},
		{"active with a future expiry", list(fmt.Sprintf(`{"id":"promo_2","active":true,"expires_at":%d}`, future)), "promo_2", nil},
		{"unknown", list(), "", ErrPromotionCodeNotFound},
		{"inactive", list(`{"id":"promo_3","active":false}`), "", ErrPromotionCodeNotFound},
		{"expired", list(fmt.Sprintf(`{"id":"promo_4","active":true,"expires_at":%d}`, past)), "", ErrPromotionCodeNotFound},
		{"coupon no longer valid", list(`{"id":"promo_5","active":true,"coupon":{"id":"c2","valid":false}}`), "", ErrPromotionCodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var id string
			var err error
			r := requestShape(t, tt.body, func(gw *Stripe) error {
				id, err = gw.FindPromotionCode(context.Background(), " SPICY ")
				return nil
			})
			require.ErrorIs(t, err, tt.wantErr)
			require.Equal(t, tt.wantID, id)
			require.Equal(t, "GET", r.method)
			require.Equal(t, "/v1/promotion_codes", r.path)
			require.Equal(t, "SPICY", r.form.Get("code"))
			require.Equal(t, "true", r.form.Get("active"))
			require.Equal(t, "1", r.form.Get("limit"))
		})
	}
}

func TestCheckoutAndPortalReturnStripesURLs(t *testing.T) {
	t.Parallel()
	var cs CheckoutSession
	var portal string
	requestShape(t, genericOK, func(gw *Stripe) error {
		var err error
		cs, err = gw.CreateCheckoutSession(context.Background(), "k", CheckoutInput{CustomerID: "cus_1", PriceID: "price_1", SuccessURL: "https://s.example/ok", CancelURL: "https://s.example/no"})
		return err
	})
	requestShape(t, genericOK, func(gw *Stripe) error {
		var err error
		portal, err = gw.CreateBillingPortalSession(context.Background(), "k", "cus_1", "https://s.example/account")
		return err
	})
	require.Equal(t, CheckoutSession{ID: "obj_1", URL: "https://stripe.test/s/1"}, cs)
	require.Equal(t, "https://stripe.test/s/1", portal)
}

type countingTransport struct {
	mu sync.Mutex
	n  int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func TestGivenHTTPClientIsUsedNotMutated(t *testing.T) {
	t.Parallel()
	b := setup(t, func(n int, w http.ResponseWriter, r *http.Request) { ok(w) })
	ct := &countingTransport{}
	hc := &http.Client{Transport: ct}
	gw, err := NewStripe(Config{SecretKey: testKey, APIBase: b.fake.srv.URL, HTTPClient: hc})
	require.NoError(t, err)
	_, err = gw.GetSubscription(context.Background(), "sub_1")
	require.NoError(t, err)
	require.Equal(t, 1, ct.n)
	require.Same(t, ct, hc.Transport, "the caller's client keeps its transport")
	require.Zero(t, hc.Timeout)
}
