package main

import (
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/scoville/scoville/webhooks/webhooktest"
)

// Signatures are made before the send, one per delivery; one older than
// resignAfter is made again when sent, so a long run stays inside the route's
// five-minute tolerance.
func TestSignaturesStayFresh(t *testing.T) {
	const secret = "whsec_sign_test"
	bodies := [][]byte{[]byte(`{"id":"evt_a"}`), []byte(`{"id":"evt_b"}`)}
	order := []int{1, 0, 1}
	start := time.Now()
	signed := signAll(bodies, order, secret, start)
	if len(signed) != len(order) {
		t.Fatalf("%d signatures for %d deliveries", len(signed), len(order))
	}
	for i, k := range order {
		if err := webhook.ValidatePayloadWithTolerance(bodies[k], signed[i].header, secret, 5*time.Minute); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}

	soon := start.Add(resignAfter)
	if got := signed[0].current(bodies[1], secret, soon); got != signed[0].header {
		t.Errorf("a signature of age resignAfter was made again")
	}
	late := start.Add(6 * time.Minute)
	if got := signed[0].current(bodies[1], secret, late); got != webhooktest.Sign(bodies[1], secret, late) {
		t.Errorf("a signature six minutes old: sent %q, want one made at the moment of sending", got)
	}
}
