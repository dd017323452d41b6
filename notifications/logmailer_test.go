package notifications

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLogMailer(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	m := LogMailer{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	body := "Please pay here: https://invoice.stripe.com/i/test_secret_link"
	require.NoError(t, m.Send(context.Background(), Message{To: "Ana.Example@Example.com", Subject: "Action needed: confirm your payment", Text: body}))

	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	sum := sha256.Sum256([]byte("ana.example@example.com"))
	require.Equal(t, hex.EncodeToString(sum[:])[:8], line["recipient_ref"])
	require.Equal(t, "Action needed: confirm your payment", line["subject"])

	logged := strings.ToLower(buf.String())
	for _, secret := range []string{"ana.example", "example.com", "invoice.stripe.com", "please pay"} {
		require.NotContains(t, logged, secret)
	}

	t.Run("the reference ignores case, so one address has one reference", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, recipientRef("ana@example.com"), recipientRef(" ANA@Example.COM"))
		require.NotEqual(t, recipientRef("ana@example.com"), recipientRef("bob@example.com"))
		require.Len(t, recipientRef("ana@example.com"), 8)
	})
}
