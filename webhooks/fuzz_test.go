package webhooks

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/scoville/scoville/jobs"
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
	db := testDB(f)
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

// FuzzEnvelopeReadsAsEncodingJSON holds the route's envelope decoder to what the
// worker's encoding/json (stripe-go) reads from the same stored bytes: whatever the
// route accepts, encoding/json accepts too and reads the same id, type, version,
// time and object. Otherwise an event could be stored under one id and applied as
// another.
func FuzzEnvelopeReadsAsEncodingJSON(f *testing.F) {
	f.Add(webhooktest.Event("evt_seed_1", "invoice.paid", time.Unix(1_700_000_000, 0), webhooktest.Object{"id": "in_1", "object": "invoice"}, nil))
	f.Add([]byte(`{"ID":"evt_1","Type":"x","API_VERSION":"2023-10-16","data":{"OBJECT":{"Id":"in_1"}},"created":1}`))
	f.Add([]byte(`{"id":"evt_1","Id":"evt_2"}`))
	f.Add([]byte(`{"apiversion":"a","api-version":"b","api_verſion":"c"}`))
	f.Add([]byte("{\"id\":\"\xff\"}"))
	f.Add([]byte(`{"id":"a\u0000","created":1e3,"livemode":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var route envelope
		if err := jsonv2.Unmarshal(body, &route, envelopeOptions); err != nil {
			return
		}
		var worker envelope
		if err := json.Unmarshal(body, &worker); err != nil {
			t.Fatalf("the route reads %q, encoding/json refuses it: %v", body, err)
		}
		if route != worker {
			t.Fatalf("%q: the route reads %+v, encoding/json %+v", body, route, worker)
		}
	})
}
