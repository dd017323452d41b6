package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// canaries are values that must never appear in a log line, however they are logged.
var canaries = []string{
	"canary.person@example.com", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl",
	"sk_test_CanaryKey123", "rk_live_CanaryKey456", "whsec_CanaryWebhook789",
	"pi_3Canary_secret_CanaryClient", "hunter2canary", "opaque-canary-token",
	"Ada Canaryface", "77 Canary Lane", "Canarystraße 12",
}

func TestMaskingCoversEveryWayAValueCanBeLogged(t *testing.T) {
	t.Parallel()
	type address struct {
		Name, Line1, City string
	}
	cases := []struct {
		name string
		log  func(*slog.Logger)
	}{
		{"sensitive keys", func(l *slog.Logger) {
			l.Info("x", "email", "canary.person@example.com", "Authorization", "Bearer opaque-canary-token",
				"stripe_secret_key", "sk_test_CanaryKey123", "name", "Ada Canaryface", "line1", "77 Canary Lane",
				"password", "hunter2canary", "raw_payload", []byte(`{"id":"evt_1"}`))
		}},
		{"keys at any group depth", func(l *slog.Logger) {
			l.Info("x", slog.Group("a", slog.Group("b", slog.Group("customer", "email", "canary.person@example.com", "full_name", "Ada Canaryface"))))
		}},
		{"a sensitive group is masked whole", func(l *slog.Logger) {
			l.Info("x", slog.Group("shipping_address", "line1", "77 Canary Lane", "note", "Canarystraße 12"))
		}},
		{"WithGroup of a sensitive name", func(l *slog.Logger) {
			l.WithGroup("payload").Info("x", "anything", "Ada Canaryface")
		}},
		{"WithAttrs", func(l *slog.Logger) {
			l.With("customer_email", "canary.person@example.com", "detail", "token=opaque-canary-token").Info("x")
		}},
		{"values inside free text", func(l *slog.Logger) {
			l.Info("x", "detail", `duplicate key (email)=(canary.person@example.com) for Bearer opaque-canary-token`,
				"url", "postgres://scoville:hunter2canary@db:5432/app", "jwt", "got eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl here",
				"keys", "sk_test_CanaryKey123 rk_live_CanaryKey456 whsec_CanaryWebhook789 pi_3Canary_secret_CanaryClient",
				"street", "ship to 77 Canary Lane or Canarystraße 12")
		}},
		{"error values and error strings", func(l *slog.Logger) {
			err := fmt.Errorf("store customer: %w", errors.New(`ERROR: value "canary.person@example.com" rejected; stripe key sk_test_CanaryKey123`))
			l.Error("x", "error", err, "err_text", err.Error())
		}},
		{"the message itself", func(l *slog.Logger) {
			l.Info("failed for canary.person@example.com with whsec_CanaryWebhook789")
		}},
		{"JSON payload as text", func(l *slog.Logger) {
			l.Info("x", "event", `{"customer_email":"canary.person@example.com","shipping":{"name":"Ada Canaryface","address":{"line1":"77 Canary Lane"}},"customer_name":"Ada Canaryface"}`)
		}},
		{"JSON quoted inside an error string", func(l *slog.Logger) {
			l.Info("x", "error", errors.New(`bad body "{\"name\":\"Ada Canaryface\",\"city\":\"Berlin\"}"`))
		}},
		{"structs and maps", func(l *slog.Logger) {
			l.Info("x", "addr_struct", address{Name: "Ada Canaryface", Line1: "77 Canary Lane", City: "Berlin"},
				"m", map[string]any{"email": "canary.person@example.com", "nested": map[string]string{"name": "Ada Canaryface"}})
		}},
		{"a struct printed with %+v", func(l *slog.Logger) {
			l.Info("x", "detail", fmt.Sprintf("%+v", address{Name: "Ada Canaryface", Line1: "77 Canary Lane", City: "Berlin"}))
		}},
		{"LogValuer", func(l *slog.Logger) {
			l.Info("x", "who", valuer{})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tc.log(New(&buf, slog.LevelDebug))
			out := buf.String()
			require.NotEmpty(t, out)
			require.True(t, json.Valid(bytes.TrimSpace(out2line(out))), "still one JSON line: %s", out)
			for _, c := range canaries {
				require.NotContains(t, out, c, "leaked in %s", out)
			}
			require.Contains(t, out, Redacted, "something was masked: %s", out)
		})
	}
}

type valuer struct{}

func (valuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("email", "canary.person@example.com"), slog.String("id", "cus_1"))
}

func out2line(s string) []byte { return []byte(strings.SplitN(s, "\n", 2)[0]) }

func TestMaskingKeepsWhatOperatorsNeed(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo).Info("stripe call", "op", "CreateCustomer", "customer_id", "0b7c2a4e-1f00-4a1b-9e53-55c3b8a1c0de",
		"stripe_request_id", "req_123", "event_type", "invoice.paid", "status", 200, "plan_id", "plan-1",
		"trace", slog.GroupValue(slog.String("sql", `SELECT * FROM "customers" WHERE id = $1`), slog.Int64("rows", 1)),
		"error", errors.New("stripe refused the request: HTTP 402 type=card_error code=card_declined"), "addr", "127.0.0.1:8080")
	out := buf.String()
	for _, keep := range []string{
		`"op":"CreateCustomer"`, `"customer_id":"0b7c2a4e-1f00-4a1b-9e53-55c3b8a1c0de"`, `"stripe_request_id":"req_123"`,
		`"event_type":"invoice.paid"`, `"sql":"SELECT * FROM \"customers\" WHERE id = $1"`, `code=card_declined`, `"addr":"127.0.0.1:8080"`,
	} {
		require.Contains(t, out, keep)
	}
	require.NotContains(t, out, Redacted)
}

func TestMaskText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"smtp://mailer:s3cret@smtp.example:587":                          "smtp://mailer:[REDACTED]@smtp.example:587",
		"Authorization: Bearer abc.def":                                  "Authorization: Bearer [REDACTED]",
		"mail bob@shop.example now":                                      "mail [REDACTED] now",
		"host=db password=pw123 sslmode=disable":                         "host=db password=[REDACTED] sslmode=disable",
		"nothing to hide in evt_123 for cus_456":                         "nothing to hide in evt_123 for cus_456",
		`{"plan":"Hot box","name":"Ada"}`:                                `{"plan":"Hot box","name":"[REDACTED]"}`,
		"task_queue and risk_score are not keys":                         "task_queue and risk_score are not keys",
		"{Name:Ada Lovelace Line1:1 Pepper Lane City:Berlin Country:DE}": "{Name:[REDACTED] Line1:[REDACTED] City:[REDACTED] Country:DE}",
	} {
		require.Equal(t, want, MaskText(in), "input %q", in)
	}
}

func TestRequestIDIsAddedAfterMasking(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo).InfoContext(WithRequestID(context.Background(), "req-1"), "x")
	require.Contains(t, buf.String(), `"request_id":"req-1"`)
}

// BenchmarkIsSensitiveKeyAccessLine is IsSensitiveKey over the keys of the access
// line every request logs at INFO (httpserver.Observe). Figures: docs/incoming/h-read.md.
func BenchmarkIsSensitiveKeyAccessLine(b *testing.B) {
	keys := []string{"method", "route", "status", "bytes", "duration_ms"}
	b.ReportAllocs()
	for b.Loop() {
		for _, k := range keys {
			if IsSensitiveKey(k) {
				b.Fatal(k)
			}
		}
	}
}
