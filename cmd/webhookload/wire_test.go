package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The lean client speaks HTTP/1.1 as net/http's server expects: the body and the
// signature arrive whole, connections are kept alive, an answer's status and body
// are read back, and a connection the server closed is redialled.
func TestWireConnAgainstNetHTTP(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/webhooks/stripe" || r.Header.Get("Stripe-Signature") != "t=1,v1=ab" {
			http.Error(w, "bad request line or headers", http.StatusBadRequest)
			return
		}
		switch string(body) {
		case `{"ok":true}`:
			_, _ = io.WriteString(w, `{"received":true}`)
		case `{"close":true}`:
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, `{"received":true}`)
		default:
			http.Error(w, "refused", http.StatusServiceUnavailable)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c, err := newWireConn(srv.URL + "/webhooks/stripe")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	post := func(body string) (int, string) {
		t.Helper()
		status, answer, err := c.post(context.Background(), []byte(body), "t=1,v1=ab")
		if err != nil {
			t.Fatalf("post %s: %v", body, err)
		}
		return status, string(answer)
	}
	for range 3 {
		if status, answer := post(`{"ok":true}`); status != 200 || answer != `{"received":true}` {
			t.Fatalf("answer %d %q", status, answer)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 requests, want 1 kept alive", n)
	}
	if status, answer := post(`{"other":true}`); status != http.StatusServiceUnavailable || !strings.Contains(answer, "refused") {
		t.Errorf("answer %d %q, want 503 refused", status, answer)
	}
	if status, _ := post(`{"close":true}`); status != 200 {
		t.Errorf("status %d", status)
	}
	if status, _ := post(`{"ok":true}`); status != 200 {
		t.Errorf("after Connection: close: status %d", status)
	}
	// The server drops idle connections; the next request is sent on a new one.
	srv.CloseClientConnections()
	if status, _ := post(`{"ok":true}`); status != 200 {
		t.Errorf("after the server closed the connection: status %d", status)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (first, after close, after the server dropped it)", n)
	}
}

func TestWireConnRefusesHTTPS(t *testing.T) {
	if _, err := newWireConn("https://127.0.0.1:1/webhooks/stripe"); err == nil {
		t.Error("https accepted by the plain-HTTP client")
	}
}
