package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoggerMasksSensitiveAttributesAndAddsRequestID(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := New(&buf, slog.LevelInfo)
	ctx := WithRequestID(context.Background(), "req-123456")
	logger.InfoContext(ctx, "event",
		"email", "canary@example.com",
		"Authorization", "Bearer canary-token",
		"stripe_secret_key", "sk_live_canary",
		slog.Group("customer", "email", "nested-canary@example.com", "id", "cus_1"),
		"plan_id", "plan-1",
	)
	out := buf.String()
	for _, secret := range []string{"canary@example.com", "canary-token", "sk_live_canary", "nested-canary"} {
		require.False(t, strings.Contains(out, secret), "%q leaked: %s", secret, out)
	}
	require.Contains(t, out, `"request_id":"req-123456"`)
	require.Contains(t, out, `"plan_id":"plan-1"`)
	require.Contains(t, out, `"id":"cus_1"`)
}
