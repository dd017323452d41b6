package auth_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/logging/logtest"
)

// recorder is the protected handler: it reports whether it ran and with whom.
type recorder struct {
	mu        sync.Mutex
	calls     int
	principal *auth.Principal
}

// seen returns how often the handler ran and the last principal it saw.
func (rec *recorder) seen() (int, *auth.Principal) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.calls, rec.principal
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.calls++
	rec.principal, _ = auth.PrincipalFrom(r.Context())
	w.WriteHeader(http.StatusNoContent)
}

// harness serves Middleware(v) in front of a recorder over real HTTP.
type harness struct {
	srv     *httptest.Server
	rec     *recorder
	logs    *logtest.Buffer
	mu      sync.Mutex
	reasons []string
}

func newHarness(t *testing.T, v auth.TokenVerifier) *harness {
	t.Helper()
	h := &harness{rec: &recorder{}, logs: &logtest.Buffer{}}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	onFailure := func(reason string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.reasons = append(h.reasons, reason)
	}
	h.srv = httptest.NewServer(auth.Middleware(v, logger, onFailure)(h.rec))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) do(t *testing.T, authorization ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", strings.NewReader(`{"query":"{ me { id } }"}`))
	require.NoError(t, err)
	for _, a := range authorization {
		req.Header.Add("Authorization", a)
	}
	resp, err := h.srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (h *harness) failures() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.reasons...)
}

func requireUnauthorized(t *testing.T, resp *http.Response) {
	t.Helper()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, `Bearer error="invalid_token"`, resp.Header.Get("WWW-Authenticate"))
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, `{"errors":[{"message":"invalid or expired access token","extensions":{"code":"UNAUTHENTICATED"}}],"data":null}`, string(body))
}

func TestMiddlewareAnonymous(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	h := newHarness(t, newVerifier(t, iss, ""))

	resp := h.do(t)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	calls, p := h.rec.seen()
	require.Equal(t, 1, calls)
	require.Nil(t, p, "no Authorization header: anonymous")
	require.Empty(t, h.failures())
	require.Empty(t, h.logs.String())
}

func TestMiddlewareValidToken(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	v := newVerifier(t, iss, "")
	tok := mustMint(t, iss, devidp.Claims{Subject: "user-9", Roles: []string{"support"}})

	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, v)
			resp := h.do(t, scheme+" "+tok)
			require.Equal(t, http.StatusNoContent, resp.StatusCode)
			calls, p := h.rec.seen()
			require.Equal(t, 1, calls)
			require.NotNil(t, p)
			require.Equal(t, "user-9", p.Subject)
			require.True(t, p.Has(auth.RoleSupport))
			require.Empty(t, h.failures())
		})
	}
}

func TestMiddlewareRefuses(t *testing.T) {
	t.Parallel()
	iss, _ := startIssuer(t)
	v := newVerifier(t, iss, "")
	const email = "secret.person@example.com"
	expired := mustMint(t, iss, devidp.Claims{Subject: "user-1", Email: email,
		IssuedAt: time.Now().Add(-2 * time.Hour), Expiry: time.Now().Add(-time.Hour)})
	wrongAud := mustMint(t, iss, devidp.Claims{Subject: "user-1", Email: email, Audience: []string{"other"}})
	valid := mustMint(t, iss, devidp.Claims{Subject: "user-1", Email: email})

	tests := []struct {
		name       string
		headers    []string
		wantReason string
	}{
		{"expired token", []string{"Bearer " + expired}, auth.ReasonExpired},
		{"wrong audience", []string{"Bearer " + wrongAud}, auth.ReasonAudience},
		{"garbage token", []string{"Bearer not-a-jwt"}, auth.ReasonMalformed},
		{"Basic scheme", []string{"Basic dXNlcjpwYXNz"}, auth.ReasonBadHeader},
		{"token without scheme", []string{valid}, auth.ReasonBadHeader},
		{"scheme without token", []string{"Bearer"}, auth.ReasonBadHeader},
		{"scheme and blanks", []string{"Bearer    "}, auth.ReasonBadHeader},
		{"empty header", []string{""}, auth.ReasonBadHeader},
		{"token with a space inside", []string{"Bearer " + valid[:10] + " " + valid[10:]}, auth.ReasonBadHeader},
		{"two Authorization headers", []string{"Bearer " + valid, "Bearer " + valid}, auth.ReasonBadHeader},
		{"token over the size limit", []string{"Bearer " + strings.Repeat("a", auth.MaxTokenBytes+1)}, auth.ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, v)
			resp := h.do(t, tt.headers...)
			requireUnauthorized(t, resp)
			calls, _ := h.rec.seen()
			require.Zero(t, calls, "the request must not reach the handler")
			require.Equal(t, []string{tt.wantReason}, h.failures())

			logs := h.logs.String()
			require.Contains(t, logs, "level=WARN")
			require.Contains(t, logs, "reason="+tt.wantReason)
			require.NotContains(t, logs, email)
			for _, hdr := range tt.headers {
				if len(hdr) > 20 {
					require.NotContains(t, logs, hdr[len(hdr)-20:], "no token text in logs")
				}
			}
		})
	}
}

// fakeVerifier counts calls and returns fixed results.
type fakeVerifier struct {
	mu    sync.Mutex
	calls int
	p     *auth.Principal
	err   error
}

func (f *fakeVerifier) Verify(context.Context, string) (*auth.Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.p, f.err
}

func TestMiddlewareWithFakeVerifier(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		verifier   *fakeVerifier
		header     string
		wantCalls  int
		wantReason string
	}{
		{"oversized token never reaches the verifier", &fakeVerifier{p: &auth.Principal{Subject: "x"}},
			"Bearer " + strings.Repeat("a", auth.MaxTokenBytes+1), 0, auth.ReasonTooLarge},
		{"foreign error", &fakeVerifier{err: io.ErrUnexpectedEOF}, "Bearer abc", 1, auth.ReasonUnknown},
		{"nil principal without error", &fakeVerifier{}, "Bearer abc", 1, auth.ReasonUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.verifier)
			requireUnauthorized(t, h.do(t, tt.header))
			tt.verifier.mu.Lock()
			verifierCalls := tt.verifier.calls
			tt.verifier.mu.Unlock()
			require.Equal(t, tt.wantCalls, verifierCalls)
			require.Equal(t, []string{tt.wantReason}, h.failures())
			calls, _ := h.rec.seen()
			require.Zero(t, calls)
		})
	}
}

func TestMiddlewareNilLoggerAndHook(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	handler := auth.Middleware(&fakeVerifier{err: auth.ErrInvalidToken}, nil, nil)(rec)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer abc")
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, req)
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Equal(t, auth.UnauthorizedBody, w.Body.String())
	require.Zero(t, rec.calls)
}
