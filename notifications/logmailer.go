package notifications

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
)

// LogMailer is the development mailer: instead of sending, it logs the subject and a
// short reference to the recipient that cannot be turned back into the address. It
// never logs the address or the body, which may hold a payment link.
type LogMailer struct {
	Logger *slog.Logger // nil: slog.Default()
}

// Send logs a redacted summary of m and never fails.
func (l LogMailer) Send(ctx context.Context, m Message) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.InfoContext(ctx, "mail not sent (development mailer)",
		"subject", m.Subject, "recipient_ref", recipientRef(m.To))
	return nil
}

// recipientRef is the first 8 hex characters of the SHA-256 of the lower-cased
// address: enough to tell a developer's test recipients apart, too little to find one.
func recipientRef(addr string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(addr))))
	return hex.EncodeToString(sum[:])[:8]
}
