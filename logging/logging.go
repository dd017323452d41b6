// Package logging builds the process's structured logger: JSON lines on stderr, each
// carrying the request id of the request it belongs to, with sensitive values masked
// before they are written (DAT-2). Masking lives in one slog.Handler, so every logger
// built on it (gorm's, River's, net/http's error log) is masked the same way.
package logging

import (
	"context"
	"io"
	"log/slog"
	"net/http"

	"github.com/scoville/scoville/requestscope"
)

// New returns a JSON logger at level writing to w, masking every line (see NewHandler).
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(NewHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})))
}

// NewHandler wraps next so that records gain the context's request id and reach next
// only after masking: values under sensitive keys at any group depth (see
// IsSensitiveKey), and secrets, tokens and e-mail addresses inside any text, the
// message and error strings included (see MaskText).
func NewHandler(next slog.Handler) slog.Handler { return &maskingHandler{next: next} }

// maskingHandler masks attributes on their way to next. hidden is set once a group
// opened with WithGroup has a sensitive name: everything below it is masked.
type maskingHandler struct {
	next   slog.Handler
	hidden bool
}

func (h *maskingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *maskingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, MaskText(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(maskAttr(a, h.hidden))
		return true
	})
	if id := RequestID(ctx); id != "" {
		out.AddAttrs(slog.String("request_id", id))
	}
	return h.next.Handle(ctx, out)
}

func (h *maskingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(as))
	for i, a := range as {
		masked[i] = maskAttr(a, h.hidden)
	}
	return &maskingHandler{next: h.next.WithAttrs(masked), hidden: h.hidden}
}

func (h *maskingHandler) WithGroup(name string) slog.Handler {
	return &maskingHandler{next: h.next.WithGroup(name), hidden: h.hidden || IsSensitiveKey(name)}
}

var requestIDSlot = requestscope.NewSlot()

// WithRequestID returns ctx carrying the request id that log lines and INTERNAL errors
// will show, so an operator can find a client's failed request.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDSlot, id)
}

// WithRequestIDOn is WithRequestID for a request: set in its scope when it has one
// (requestscope.Set).
func WithRequestIDOn(r *http.Request, id string) *http.Request {
	return requestscope.Set(r, requestIDSlot, id)
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDSlot).(string)
	return id
}
