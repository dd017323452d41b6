// Command webhooksink is a receiver of outgoing webhooks for load measurements
// (scripts/bench-burst.sh): it verifies each delivery's Standard Webhooks signature
// with its own standard-library implementation, answers 204, and counts distinct
// webhook-id per event type. GET /stats returns the counts as JSON.
//
//	WEBHOOKSINK_SECRET=whsec_... go run ./cmd/webhooksink -addr 127.0.0.1:9000
//
// A delivery whose signature does not verify is answered 401 and counted; it
// never counts as received. The secret is read from the environment only, so that
// it never shows in a process list.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scoville/scoville/config"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "where to listen (loopback)")
	flag.Parse()
	env, err := config.LoadBenchTools(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "webhooksink:", err)
		os.Exit(2)
	}
	s, err := newSink(env.SinkSecret.Reveal())
	if err != nil {
		fmt.Fprintln(os.Stderr, "webhooksink:", err)
		os.Exit(2)
	}
	srv := &http.Server{Addr: *addr, Handler: s, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// sink counts verified deliveries.
type sink struct {
	key []byte

	mu       sync.Mutex
	seen     map[string]struct{} // webhook-id
	stats    stats
	byType   map[string]int64 // distinct webhook-id per message type
	lastNew  time.Time        // when the last new webhook-id arrived
	lastSeen time.Time        // when the last verified delivery arrived
}

// stats is what GET /stats answers.
type stats struct {
	Requests     int64            `json:"requests"`     // every POST
	Verified     int64            `json:"verified"`     // signature verified
	BadSignature int64            `json:"badSignature"` // refused (401)
	Malformed    int64            `json:"malformed"`    // verified, but the body is not a message
	Distinct     int64            `json:"distinct"`     // distinct webhook-id verified
	Repeats      int64            `json:"repeats"`      // verified deliveries of an id seen before
	ByType       map[string]int64 `json:"byType"`
	LastNewUnix  float64          `json:"lastNewUnix"`  // 0: none yet
	LastSeenUnix float64          `json:"lastSeenUnix"` // 0: none yet
}

func newSink(secret string) (*sink, error) {
	if !strings.HasPrefix(secret, "whsec_") {
		return nil, errors.New("WEBHOOKSINK_SECRET must be the endpoint's secret (whsec_...)")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, errors.New("WEBHOOKSINK_SECRET is not whsec_ followed by base64")
	}
	return &sink{key: key, seen: map[string]struct{}{}, byType: map[string]int64{}}, nil
}

// verify reports whether one of the space-separated v1 entries of sigHeader is
// the HMAC-SHA256 of "id.timestamp.body" under the sink's key (Standard Webhooks).
func (s *sink) verify(id, timestamp string, body []byte, sigHeader string) bool {
	if id == "" || timestamp == "" {
		return false
	}
	if _, err := strconv.ParseInt(timestamp, 10, 64); err != nil {
		return false
	}
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, entry := range strings.Fields(sigHeader) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/stats" {
		s.mu.Lock()
		st := s.stats
		st.ByType = make(map[string]int64, len(s.byType))
		for k, v := range s.byType {
			st.ByType[k] = v
		}
		st.LastNewUnix, st.LastSeenUnix = unix(s.lastNew), unix(s.lastSeen)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST a message, or GET /stats", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "could not read the body", http.StatusBadRequest)
		return
	}
	id := r.Header.Get("webhook-id")
	ok := s.verify(id, r.Header.Get("webhook-timestamp"), body, r.Header.Get("webhook-signature"))
	var msg struct {
		Type string `json:"type"`
	}
	malformed := ok && (json.Unmarshal(body, &msg) != nil || msg.Type == "")
	now := time.Now()
	s.mu.Lock()
	s.stats.Requests++
	switch {
	case !ok:
		s.stats.BadSignature++
	case malformed:
		s.stats.Malformed++
	default:
		s.stats.Verified++
		s.lastSeen = now
		if _, dup := s.seen[id]; dup {
			s.stats.Repeats++
		} else {
			s.seen[id] = struct{}{}
			s.stats.Distinct++
			s.byType[msg.Type]++
			s.lastNew = now
		}
	}
	s.mu.Unlock()
	switch {
	case !ok:
		http.Error(w, "signature does not verify", http.StatusUnauthorized)
	case malformed:
		http.Error(w, "not a message", http.StatusBadRequest)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
