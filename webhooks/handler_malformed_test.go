package webhooks

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/scoville/scoville/webhooks/webhooktest"
)

// A signed event that encoding/json, which the worker reads it with, could read
// differently from the route is refused as malformed and stores nothing: a member
// named twice (encoding/json keeps the last, in any letter case) or text that is
// not UTF-8. Names in another letter case alone are read as encoding/json reads them.
func TestAmbiguousEnvelopeIsRefused(t *testing.T) {
	db := testDB(t)
	send := signedRoute(t, db)
	_, good := testEvent(t, "evt_amb_ok")
	for name, body := range map[string][]byte{
		"id twice":             bytes.Replace(good, []byte(`"id":"evt_amb_ok"`), []byte(`"id":"evt_amb_1","id":"evt_amb_2"`), 1),
		"id twice, other case": bytes.Replace(good, []byte(`"id":"evt_amb_ok"`), []byte(`"id":"evt_amb_3","ID":"evt_amb_4"`), 1),
		"object id twice":      bytes.Replace(good, []byte(`"object":{`), []byte(`"object":{"Id":"in_other",`), 1),
		"type not UTF-8":       bytes.Replace(good, []byte(`"invoice.paid"`), []byte("\"invoice.paid\xff\""), 1),
	} {
		if bytes.Equal(body, good) {
			t.Fatalf("%s: the body was not changed", name)
		}
		if code := send(body).Code; code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, code)
		}
	}
	var n int64
	if err := db.Raw(`SELECT count(*) FROM webhook_events`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d events stored from refused deliveries", n)
	}

	upper := bytes.Replace(good, []byte(`"id":"evt_amb_ok"`), []byte(`"ID":"evt_amb_ok"`), 1)
	if code := send(upper).Code; code != http.StatusOK {
		t.Fatalf("a name in capitals: status %d, want 200", code)
	}
	if ev, jb := stored(t, db, "evt_amb_ok"); ev != 1 || jb != 1 {
		t.Errorf("%d events, %d jobs, want 1 and 1", ev, jb)
	}
}

// A signed event whose id, type or object id holds a NUL is refused as malformed
// (PostgreSQL text cannot store it), and an event in the same moment is unaffected.
func TestEventWithNULIsRefusedAlone(t *testing.T) {
	db := testDB(t)
	send := signedRoute(t, db)
	created := time.Unix(1_700_000_000, 0)
	for name, body := range map[string][]byte{
		"id":        webhooktest.Event("evt_nul\x00", "invoice.paid", created, webhooktest.Object{"id": "in_1", "object": "invoice"}, nil),
		"type":      webhooktest.Event("evt_nul_type", "invoice.paid\x00", created, webhooktest.Object{"id": "in_1", "object": "invoice"}, nil),
		"object id": webhooktest.Event("evt_nul_obj", "invoice.paid", created, webhooktest.Object{"id": "in_\x00", "object": "invoice"}, nil),
	} {
		if code := send(body).Code; code != http.StatusBadRequest {
			t.Errorf("NUL in the %s: status %d, want 400", name, code)
		}
	}
	_, good := testEvent(t, "evt_after_nul")
	if code := send(good).Code; code != http.StatusOK {
		t.Fatalf("a clean event: status %d, want 200", code)
	}
	if ev, jb := stored(t, db, "evt_after_nul"); ev != 1 || jb != 1 {
		t.Errorf("clean event: %d events, %d jobs, want 1 and 1", ev, jb)
	}
}

// An error or outcome cut to its column's size stays valid UTF-8, which PostgreSQL
// requires; cut mid-character, the failure itself could not be recorded.
func TestTruncateCutsOnACharacterBoundary(t *testing.T) {
	s := "ab€cd" // € is three bytes: 2..4
	for n := 0; n <= len(s); n++ {
		got := truncate(s, n)
		if !utf8.ValidString(got) || len(got) > n || !strings.HasPrefix(s, got) {
			t.Errorf("truncate(%q, %d) = %q", s, n, got)
		}
	}
	if got := truncate(s, 4); got != "ab" {
		t.Errorf("truncate(%q, 4) = %q, want \"ab\"", s, got)
	}
}
