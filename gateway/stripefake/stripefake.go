// Package stripefake is a small stateful stand-in for Stripe's API, for tests that
// need Stripe to remember what it was told (stripe-mock validates requests against
// Stripe's API description but answers with fixed fixtures). It honours
// Idempotency-Key like Stripe: a repeated key replays the first answer and has no
// second effect. Faults can be injected to prove retry and failure handling.
package stripefake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request is one request the fake received, for assertions.
type Request struct {
	Method, Path, IdempotencyKey string
	Form                         map[string]string
}

// Server is the fake. Its zero value is not usable; call New.
type Server struct {
	*httptest.Server

	mu        sync.Mutex
	seq       int
	requests  []Request
	replays   map[string][]byte
	subs      map[string]map[string]any
	prices    map[string]map[string]any
	promos    map[string]string // code -> id
	faults    []Fault
	subStatus string // status new subscriptions get; default "incomplete"
}

// Fault is what the fake answers instead of the real thing, once per request.
type Fault struct {
	Status int           // HTTP status to answer (e.g. 500, 503, 402)
	Code   string        // Stripe error code, e.g. card_declined
	Delay  time.Duration // wait before answering (longer than the client timeout: a timeout)
}

// New starts a fake on loopback; it is closed with Close.
func New() *Server {
	s := &Server{
		replays: map[string][]byte{}, subs: map[string]map[string]any{},
		prices: map[string]map[string]any{}, promos: map[string]string{}, subStatus: "incomplete",
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// FailNext makes the next len(f) requests fail as described, in order.
func (s *Server) FailNext(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

// AddPromotionCode makes code resolvable as an active promotion code.
func (s *Server) AddPromotionCode(code string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("promo_%d", s.seq)
	s.promos[code] = id
	return id
}

// SetNewSubscriptionStatus sets the status Stripe gives new subscriptions.
func (s *Server) SetNewSubscriptionStatus(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subStatus = status
}

// SetSubscriptionStatus changes a subscription on Stripe's side (e.g. paid: active).
func (s *Server) SetSubscriptionStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub, ok := s.subs[id]; ok {
		sub["status"] = status
	}
}

// Requests returns what the fake received so far, failed attempts included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count returns how many received requests match method and path prefix.
func (s *Server) Count(method, pathPrefix string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	form := map[string]string{}
	for k, v := range r.Form {
		form[k] = v[0]
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, IdempotencyKey: key, Form: form})
	var fault *Fault
	if len(s.faults) > 0 {
		fault = &s.faults[0]
		s.faults = s.faults[1:]
	}
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake")
	if fault != nil {
		if fault.Delay > 0 {
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if fault.Status != 0 {
			errType := "api_error"
			if fault.Status < 500 {
				errType = "invalid_request_error"
				if fault.Code == "card_declined" {
					errType = "card_error"
				}
			}
			w.WriteHeader(fault.Status)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
				"type": errType, "code": fault.Code, "message": "injected " + fault.Code, "decline_code": "generic_decline",
			}})
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	replayKey := r.Method + " " + r.URL.Path + " " + key
	if key != "" && r.Method == http.MethodPost {
		if body, ok := s.replays[replayKey]; ok {
			w.Header().Set("Idempotent-Replayed", "true")
			_, _ = w.Write(body)
			return
		}
	}
	status, obj := s.route(r.Method, r.URL.Path, form)
	body, _ := json.Marshal(obj)
	if key != "" && r.Method == http.MethodPost && status < 500 {
		s.replays[replayKey] = body
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) id(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s_fake%d", prefix, s.seq)
}

func notFound(what string) (int, any) {
	return http.StatusNotFound, map[string]any{"error": map[string]any{"type": "invalid_request_error", "code": "resource_missing", "message": "No such " + what}}
}

func (s *Server) route(method, path string, f map[string]string) (int, any) {
	parts := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	switch {
	case method == http.MethodPost && path == "/v1/customers":
		return 200, map[string]any{"id": s.id("cus"), "object": "customer", "metadata": metadata(f)}
	case method == http.MethodPost && path == "/v1/products":
		prod := map[string]any{"id": s.id("prod"), "object": "product", "name": f["name"], "metadata": metadata(f)}
		if f["default_price_data[currency]"] != "" {
			price := s.newPrice(prod["id"].(string), f["default_price_data[currency]"], f["default_price_data[unit_amount]"],
				f["default_price_data[recurring][interval]"], f["default_price_data[recurring][interval_count]"])
			prod["default_price"] = price["id"]
		}
		return 200, prod
	case method == http.MethodPost && path == "/v1/prices":
		return 200, s.newPrice(f["product"], f["currency"], f["unit_amount"], f["recurring[interval]"], f["recurring[interval_count]"])
	case method == http.MethodPost && path == "/v1/subscriptions":
		return s.createSubscription(f)
	case len(parts) == 2 && parts[0] == "subscriptions":
		sub, ok := s.subs[parts[1]]
		if !ok {
			return notFound("subscription")
		}
		switch method {
		case http.MethodGet:
			return 200, sub
		case http.MethodDelete:
			sub["status"] = "canceled"
			sub["canceled_at"] = time.Now().Unix()
			return 200, sub
		case http.MethodPost:
			return s.updateSubscription(sub, f)
		}
	case method == http.MethodPost && path == "/v1/checkout/sessions":
		id := s.id("cs")
		return 200, map[string]any{"id": id, "object": "checkout.session", "mode": f["mode"], "url": "https://checkout.stripe.com/c/pay/" + id}
	case method == http.MethodPost && path == "/v1/billing_portal/sessions":
		id := s.id("bps")
		return 200, map[string]any{"id": id, "object": "billing_portal.session", "url": "https://billing.stripe.com/p/session/" + id, "return_url": f["return_url"]}
	case method == http.MethodGet && path == "/v1/promotion_codes":
		data := []any{}
		if id, ok := s.promos[f["code"]]; ok {
			data = append(data, map[string]any{"id": id, "object": "promotion_code", "code": f["code"], "active": true})
		}
		return 200, map[string]any{"object": "list", "data": data, "has_more": false, "url": "/v1/promotion_codes"}
	}
	return notFound(path)
}

func (s *Server) newPrice(product, currency, amount, interval, count string) map[string]any {
	a, _ := strconv.ParseInt(amount, 10, 64)
	c, _ := strconv.ParseInt(count, 10, 64)
	if c == 0 {
		c = 1
	}
	price := map[string]any{"id": s.id("price"), "object": "price", "product": product, "currency": currency,
		"unit_amount": a, "recurring": map[string]any{"interval": interval, "interval_count": c}}
	s.prices[price["id"].(string)] = price
	return price
}

func (s *Server) priceObject(id string) map[string]any {
	if p, ok := s.prices[id]; ok {
		return p
	}
	return map[string]any{"id": id, "object": "price", "currency": "usd", "unit_amount": 100, "recurring": map[string]any{"interval": "month", "interval_count": 1}}
}

func (s *Server) createSubscription(f map[string]string) (int, any) {
	now := time.Now()
	status := s.subStatus
	if f["trial_period_days"] != "" && f["trial_period_days"] != "0" {
		status = "trialing"
	}
	id := s.id("sub")
	sub := map[string]any{
		"id": id, "object": "subscription", "status": status, "customer": f["customer"], "metadata": metadata(f),
		"cancel_at_period_end": false, "pause_collection": nil, "created": now.Unix(),
		"current_period_start": now.Unix(), "current_period_end": now.AddDate(0, 1, 0).Unix(),
		"items": map[string]any{"object": "list", "data": []any{map[string]any{
			"id": s.id("si"), "object": "subscription_item", "quantity": 1, "price": s.priceObject(f["items[0][price]"]),
		}}},
	}
	invoice := map[string]any{"id": s.id("in"), "object": "invoice"}
	if status == "incomplete" {
		pi := s.id("pi")
		invoice["payment_intent"] = map[string]any{"id": pi, "object": "payment_intent", "client_secret": pi + "_secret_fake"}
	}
	sub["latest_invoice"] = invoice
	s.subs[id] = sub
	return 200, sub
}

func (s *Server) updateSubscription(sub map[string]any, f map[string]string) (int, any) {
	if v, ok := f["cancel_at_period_end"]; ok {
		sub["cancel_at_period_end"] = v == "true"
	}
	if _, ok := f["pause_collection"]; ok { // empty value clears the pause
		sub["pause_collection"] = nil
	}
	if b := f["pause_collection[behavior]"]; b != "" {
		pc := map[string]any{"behavior": b}
		if at := f["pause_collection[resumes_at]"]; at != "" {
			n, _ := strconv.ParseInt(at, 10, 64)
			pc["resumes_at"] = n
		}
		sub["pause_collection"] = pc
	}
	if price := f["items[0][price]"]; price != "" {
		items := sub["items"].(map[string]any)["data"].([]any)
		items[0].(map[string]any)["price"] = s.priceObject(price)
	}
	return 200, sub
}

func metadata(f map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range f {
		if strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]") {
			out[strings.TrimSuffix(strings.TrimPrefix(k, "metadata["), "]")] = v
		}
	}
	return out
}

// ClearFaults drops faults not yet used.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}
