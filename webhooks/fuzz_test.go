package webhooks

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/sealing"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

const fuzzSecret = "whsec_fuzz_secret"

// FuzzWebhookRoute posts arbitrary bodies and Stripe-Signature headers to the real
// route on a real database. When sign is set the body is signed with the route's
// secret, so the fuzzer gets past verification into payload parsing. Whatever comes
// in: no panic, a JSON answer with a known status, nothing accepted without a valid
// signature, and every accepted event stored. The seed corpus is in
// testdata/fuzz/FuzzWebhookRoute; CI runs it for a few seconds (scripts/test.sh).
func FuzzWebhookRoute(f *testing.F) {
	db := dbtest.New(f)
	keys, err := sealing.Parse(sealing.DevelopmentKeys)
	if err != nil {
		f.Fatal(err)
	}
	if err := sealing.Install(db, keys); err != nil {
		f.Fatal(err)
	}
	queue, err := jobs.NewInserter(db, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	h := NewHandler(db, queue, fuzzSecret, NewMetrics(nil, nil), slog.New(slog.DiscardHandler))

	created := time.Unix(1_700_000_000, 0)
	f.Add(webhooktest.Event("evt_seed_1", "invoice.paid", created, webhooktest.Object{"id": "in_1", "object": "invoice"}, nil), "", true)
	f.Add([]byte(`{"id":"evt_2","object":"event","type":"x","created":1}`), "", true)
	f.Add([]byte(`{}`), "t=1,v1=00", false)
	f.Add([]byte(`not json`), "", true)

	f.Fuzz(func(t *testing.T, body []byte, header string, sign bool) {
		if sign {
			header = webhooktest.Sign(body, fuzzSecret, time.Now())
		}
		req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for a %d-byte body", rec.Code, len(body))
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", rec.Body.String())
		}
		if rec.Code != http.StatusOK {
			return
		}
		if !sign {
			t.Fatalf("accepted a delivery not signed with the secret (header %q)", header)
		}
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" {
			t.Fatalf("accepted a body without an event id: %v", err)
		}
		var n int64
		if err := db.Raw(`SELECT count(*) FROM webhook_events WHERE provider_event_id = ?`, ev.ID).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("accepted event %q stored %d times", ev.ID, n)
		}
	})
}
