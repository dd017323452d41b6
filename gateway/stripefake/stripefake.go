// Package stripefake is a small stateful stand-in for Stripe's API, for tests that
// need Stripe to remember what it was told (stripe-mock validates requests against
// Stripe's API description but answers with fixed fixtures). It honours
// Idempotency-Key like Stripe: a repeated key replays the first answer and has no
// second effect. Faults can be injected to prove retry and failure handling.
//
// Objects it serves:
//
//   - Subscriptions it created (POST /v1/subscriptions), with their metadata, on
//     GET, update and DELETE of /v1/subscriptions/{id}.
//   - Invoices on GET /v1/invoices/{id}: each created subscription's first
//     invoice (its latest_invoice) and any given to PutInvoice.
//   - Charges on GET /v1/charges/{id}: those given to PutCharge.
//   - Customers it created (POST /v1/customers), on DELETE /v1/customers/{id}
//     (Stripe's deleted stub; an unknown or already deleted one is a 404).
//   - Listings of the subscriptions and invoices above (GET /v1/subscriptions,
//     GET /v1/invoices), filtered by created[gte], current_period_start[gte] and
//     status, in one page.
//   - Refunds (POST /v1/refunds) of a payment_intent whose charge was given to
//     PutCharge: the charge's amount_refunded grows, more than remains is refused
//     (amount_too_large), and expand[]=charge returns the charge as it is after.
//
// Anything else is a 404 in Stripe's error shape (code resource_missing).
package stripefake

import (
	"bytes"
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
	invoices  map[string]map[string]any
	charges   map[string]map[string]any
	customers map[string]map[string]any
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
		invoices: map[string]map[string]any{}, charges: map[string]map[string]any{}, customers: map[string]map[string]any{},
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

// PutInvoice makes GET /v1/invoices/{id} answer with raw, an invoice in Stripe's
// JSON (for instance the object of an invoice.paid event a test sends), so code
// that re-reads the invoice sees the same state. A missing "object" is taken as
// "invoice" and a missing id gets a fresh one; the id is returned. Putting an id
// again replaces the invoice, including a subscription's first invoice. It
// panics when raw is not a JSON object or is another object type: a test bug.
func (s *Server) PutInvoice(raw []byte) string {
	return s.put(s.invoices, "invoice", "in", raw)
}

// PutCharge makes GET /v1/charges/{id} answer with raw, a charge in Stripe's
// JSON, as PutInvoice does for invoices (same defaults, replacement and
// panics).
func (s *Server) PutCharge(raw []byte) string {
	return s.put(s.charges, "charge", "ch", raw)
}

func (s *Server) put(store map[string]map[string]any, object, prefix string, raw []byte) string {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep amounts and timestamps exact
	if err := dec.Decode(&obj); err != nil || obj == nil {
		panic(fmt.Sprintf("stripefake: Put %s: not a JSON object: %v", object, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch got := obj["object"]; {
	case got == nil:
		obj["object"] = object
	case got != object:
		panic(fmt.Sprintf("stripefake: Put %s: object is %v", object, got))
	}
	id, isString := obj["id"].(string)
	switch {
	case obj["id"] != nil && !isString:
		panic(fmt.Sprintf("stripefake: Put %s: id is not a string", object))
	case id == "":
		id = s.id(prefix)
		obj["id"] = id
	}
	store[id] = obj
	return id
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

// notFound is Stripe's answer for an unknown object id.
func notFound(object, id string) (int, any) {
	return http.StatusNotFound, map[string]any{"error": map[string]any{
		"type": "invalid_request_error", "code": "resource_missing", "param": "id",
		"message": fmt.Sprintf("No such %s: '%s'", object, id),
		"doc_url": "https://stripe.com/docs/error-codes/resource-missing",
	}}
}

// unknownPath answers a route the fake does not serve, as a resource_missing
// 404 so a test that reaches it fails with ErrNotFound.
func unknownPath(method, path string) (int, any) {
	return http.StatusNotFound, map[string]any{"error": map[string]any{
		"type": "invalid_request_error", "code": "resource_missing",
		"message": fmt.Sprintf("Unrecognized request URL (%s: %s)", method, path),
	}}
}

func (s *Server) route(method, path string, f map[string]string) (int, any) {
	parts := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	switch {
	case method == http.MethodPost && path == "/v1/customers":
		cus := map[string]any{"id": s.id("cus"), "object": "customer", "metadata": metadata(f)}
		s.customers[cus["id"].(string)] = cus
		return 200, cus
	case method == http.MethodDelete && len(parts) == 2 && parts[0] == "customers":
		if _, ok := s.customers[parts[1]]; !ok {
			return notFound("customer", parts[1])
		}
		delete(s.customers, parts[1])
		return 200, map[string]any{"id": parts[1], "object": "customer", "deleted": true}
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
			return notFound("subscription", parts[1])
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
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "invoices":
		if inv, ok := s.invoices[parts[1]]; ok {
			return 200, inv
		}
		return notFound("invoice", parts[1])
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "charges":
		if ch, ok := s.charges[parts[1]]; ok {
			return 200, ch
		}
		return notFound("charge", parts[1])
	case method == http.MethodPost && path == "/v1/refunds":
		return s.refund(f)
	case method == http.MethodPost && path == "/v1/checkout/sessions":
		id := s.id("cs")
		return 200, map[string]any{"id": id, "object": "checkout.session", "mode": f["mode"], "url": "https://checkout.stripe.com/c/pay/" + id}
	case method == http.MethodPost && path == "/v1/billing_portal/sessions":
		id := s.id("bps")
		return 200, map[string]any{"id": id, "object": "billing_portal.session", "url": "https://billing.stripe.com/p/session/" + id, "return_url": f["return_url"]}
	case method == http.MethodGet && (path == "/v1/subscriptions" || path == "/v1/invoices"):
		return 200, s.list(path, f)
	case method == http.MethodGet && path == "/v1/promotion_codes":
		data := []any{}
		if id, ok := s.promos[f["code"]]; ok {
			data = append(data, map[string]any{"id": id, "object": "promotion_code", "code": f["code"], "active": true})
		}
		return 200, map[string]any{"object": "list", "data": data, "has_more": false, "url": "/v1/promotion_codes"}
	}
	return unknownPath(method, path)
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
	return map[string]any{"id": id, "object": "price", "currency": "usd", "unit_amount": int64(100), "recurring": map[string]any{"interval": "month", "interval_count": 1}}
}

func (s *Server) createSubscription(f map[string]string) (int, any) {
	now := time.Now()
	status := s.subStatus
	if f["trial_period_days"] != "" && f["trial_period_days"] != "0" {
		status = "trialing"
	}
	id, itemID := s.id("sub"), s.id("si")
	price := s.priceObject(f["items[0][price]"])
	start, end := now.Unix(), now.AddDate(0, 1, 0).Unix()
	sub := map[string]any{
		"id": id, "object": "subscription", "status": status, "customer": f["customer"], "metadata": metadata(f),
		"cancel_at_period_end": false, "pause_collection": nil, "created": start,
		"current_period_start": start, "current_period_end": end,
		"items": map[string]any{"object": "list", "data": []any{map[string]any{
			"id": itemID, "object": "subscription_item", "quantity": 1, "price": price,
		}}},
	}
	invoice := map[string]any{"id": s.id("in"), "object": "invoice"}
	var pi string
	if status == "incomplete" {
		pi = s.id("pi")
		invoice["payment_intent"] = map[string]any{"id": pi, "object": "payment_intent", "client_secret": pi + "_secret_fake"}
	}
	sub["latest_invoice"] = invoice
	s.subs[id] = sub
	s.invoices[invoice["id"].(string)] = s.firstInvoice(invoice["id"].(string), sub, itemID, price, pi, start, end)
	return 200, sub
}

// firstInvoice is the subscription_create invoice as GET /v1/invoices/{id} shows
// it: open and unpaid while the subscription is incomplete, paid otherwise
// (for nothing during a trial).
func (s *Server) firstInvoice(id string, sub map[string]any, itemID string, price map[string]any, pi string, start, end int64) map[string]any {
	amount, _ := price["unit_amount"].(int64)
	if sub["status"] == "trialing" {
		amount = 0
	}
	status, paid, paidAt := "paid", amount, any(start)
	if sub["status"] == "incomplete" {
		status, paid, paidAt = "open", 0, nil
	}
	var payment any
	if pi != "" {
		payment = pi
	}
	line := map[string]any{
		"id": s.id("il"), "object": "line_item", "type": "subscription", "amount": amount,
		"currency": price["currency"], "quantity": 1, "proration": false, "price": price,
		"subscription": sub["id"], "subscription_item": itemID,
		"period": map[string]any{"start": start, "end": end},
	}
	return map[string]any{
		"id": id, "object": "invoice", "customer": sub["customer"], "subscription": sub["id"],
		"status": status, "billing_reason": "subscription_create", "currency": price["currency"],
		"amount_due": amount, "amount_paid": paid, "amount_remaining": amount - paid, "total": amount,
		"attempt_count": 0, "payment_intent": payment, "charge": nil, "metadata": map[string]string{},
		"status_transitions": map[string]any{"paid_at": paidAt}, "created": start,
		"lines": map[string]any{"object": "list", "data": []any{line}, "has_more": false, "url": "/v1/invoices/" + id + "/lines"},
	}
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
	// As at Stripe, metadata[k] sets a key and an empty value removes it.
	md, _ := sub["metadata"].(map[string]string)
	if md == nil {
		md = map[string]string{}
	}
	for k, v := range metadata(f) {
		if v == "" {
			delete(md, k)
		} else {
			md[k] = v
		}
	}
	sub["metadata"] = md
	return 200, sub
}

// refund moves money back from the charge of f's payment_intent, as Stripe does.
func (s *Server) refund(f map[string]string) (int, any) {
	var ch map[string]any
	for _, c := range s.charges {
		if c["payment_intent"] == f["payment_intent"] {
			ch = c
		}
	}
	if ch == nil {
		return notFound("payment_intent", f["payment_intent"])
	}
	total, _ := strconv.ParseInt(fmt.Sprint(ch["amount"]), 10, 64)
	done, _ := strconv.ParseInt(fmt.Sprint(ch["amount_refunded"]), 10, 64)
	amount := total - done
	if f["amount"] != "" {
		amount, _ = strconv.ParseInt(f["amount"], 10, 64)
	}
	if amount <= 0 || done+amount > total {
		return http.StatusBadRequest, map[string]any{"error": map[string]any{
			"type": "invalid_request_error", "code": "amount_too_large", "param": "amount",
			"message": "Refund amount is greater than unrefunded amount on charge",
		}}
	}
	ch["amount_refunded"] = done + amount
	ch["refunded"] = done+amount == total
	refund := map[string]any{
		"id": s.id("re"), "object": "refund", "amount": amount, "currency": ch["currency"], "status": "succeeded",
		"payment_intent": f["payment_intent"], "charge": ch["id"], "metadata": metadata(f), "created": time.Now().Unix(),
	}
	if f["expand[0]"] == "charge" {
		snapshot := map[string]any{}
		for k, v := range ch {
			snapshot[k] = v
		}
		refund["charge"] = snapshot
	}
	return 200, refund
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

// list answers GET /v1/subscriptions and /v1/invoices with the stored objects
// matching the created[gte], current_period_start[gte] and status filters, in one
// page (has_more is always false).
func (s *Server) list(path string, f map[string]string) map[string]any {
	store, filters := s.subs, []string{"created", "current_period_start"}
	if path == "/v1/invoices" {
		store, filters = s.invoices, []string{"created"}
	}
	data := []any{}
	for _, obj := range store {
		keep := true
		for _, field := range filters {
			if lo := f[field+"[gte]"]; lo != "" {
				n, _ := strconv.ParseInt(lo, 10, 64)
				v, _ := strconv.ParseInt(fmt.Sprint(obj[field]), 10, 64)
				keep = keep && v >= n
			}
		}
		if st := f["status"]; st != "" && st != "all" {
			keep = keep && obj["status"] == st
		}
		if keep {
			data = append(data, obj)
		}
	}
	return map[string]any{"object": "list", "data": data, "has_more": false, "url": path}
}

// ClearFaults drops faults not yet used.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}
