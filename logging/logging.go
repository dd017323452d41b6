// Package logging builds the process's structured logger: JSON lines on stderr, each
// carrying the request id of the request it belongs to, with sensitive values masked
// before they are written.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
)

// Redacted replaces a sensitive value wherever one is logged.
const Redacted = "[REDACTED]"

// sensitiveKeys are attribute keys (lower case, matched as substrings) whose values
// never reach a log line whatever the caller passed.
var sensitiveKeys = []string{
	"authorization", "token", "secret", "password", "passwd", "email", "e-mail",
	"cookie", "api_key", "apikey", "dsn", "database_url", "card", "address", "phone",
}

// New returns a JSON logger at level writing to w.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(NewHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: maskAttr,
	})))
}

// NewHandler wraps next so that records gain the context's request id.
func NewHandler(next slog.Handler) slog.Handler { return &contextHandler{next: next} }

type contextHandler struct{ next slog.Handler }

func (h *contextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.next.Handle(ctx, r)
}

func (h *contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &contextHandler{next: h.next.WithAttrs(as)}
}

func (h *contextHandler) WithGroup(name string) slog.Handler {
	return &contextHandler{next: h.next.WithGroup(name)}
}

// maskAttr hides the value of any attribute whose key names something sensitive.
func maskAttr(_ []string, a slog.Attr) slog.Attr {
	if IsSensitiveKey(a.Key) && a.Value.Kind() != slog.KindGroup {
		return slog.String(a.Key, Redacted)
	}
	return a
}

// IsSensitiveKey reports whether a value logged under key must be masked.
func IsSensitiveKey(key string) bool {
	k := strings.ToLower(key)
	for _, s := range sensitiveKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id that log lines and INTERNAL errors
// will show, so an operator can find a client's failed request.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
