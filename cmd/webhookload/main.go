// Command webhookload measures the Stripe webhook route of a running server the way
// Stripe uses it: many concurrent deliveries of signed events, each event delivered
// more than once, in no particular order. It reports how fast deliveries are
// acknowledged, how long an acknowledgement takes, how long until the workers have
// applied every event, and whether the outcome is exactly right: one payment and one
// shipment per paid invoice, however often it was delivered.
//
//	go run ./cmd/webhookload -url http://127.0.0.1:8080/webhooks/stripe \
//	    -secret whsec_... -database-url postgres://...
//
// The database is used only to seed what the events refer to (a plan, customers and
// their subscriptions, personal data sealed with the server's DATA_ENCRYPTION_KEYS,
// or the development set when that is not set) and to count the results; every id carries a run id, so the
// command can be run again and again on the same database. The exit status is 1 when
// any delivery was not acknowledged or the counts are not exact. scripts/bench-webhooks.sh
// runs it against a throwaway server, next to a pgbench baseline.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/sealing"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// options are the command's flags.
type options struct {
	url, secret, databaseURL string
	dataKeys                 string // the server's DATA_ENCRYPTION_KEYS; empty: the development set
	events, repeat           int
	concurrency, subs        int
	timeout                  time.Duration
	json                     bool
	client                   string // "wire" or "net/http"
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("webhookload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080/webhooks/stripe", "the server's Stripe webhook route")
	// Secrets and URLs with passwords default from the environment after parsing, so
	// that -help never prints them.
	fs.StringVar(&o.secret, "secret", "", "the signing secret the server verifies with (whsec_...; default $STRIPE_WEBHOOK_SECRET)")
	fs.StringVar(&o.databaseURL, "database-url", "", "the server's database, to seed fixtures and count results (default $DATABASE_URL)")
	fs.IntVar(&o.events, "events", 10000, "distinct invoice.paid events")
	fs.IntVar(&o.repeat, "repeat", 2, "deliveries of each event")
	fs.IntVar(&o.concurrency, "concurrency", 50, "concurrent senders")
	fs.IntVar(&o.subs, "subscriptions", 100, "subscriptions the invoices are spread over")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "limit for sending and processing together")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.StringVar(&o.client, "client", "wire", `how to send: "wire" (a lean HTTP/1.1 client, as wrk) or "net/http" (Go's client, several times the CPU per request)`)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	env, err := config.LoadWebhookLoad(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "webhookload:", err)
		return 2
	}
	o.secret = cmp.Or(o.secret, env.StripeWebhookSecret.Reveal())
	o.databaseURL = cmp.Or(o.databaseURL, env.DatabaseURL.Reveal())
	o.dataKeys = env.DataEncryptionKeys.Reveal()
	if err := o.validate(); err != nil {
		fmt.Fprintln(stderr, "webhookload:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	rep, err := load(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "webhookload:", err)
		return 1
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.print(stdout)
	}
	if len(rep.Problems) > 0 {
		return 1
	}
	return 0
}

func (o options) validate() error {
	switch {
	case o.secret == "":
		return errors.New("no signing secret: set -secret or STRIPE_WEBHOOK_SECRET")
	case o.databaseURL == "":
		return errors.New("no database: set -database-url or DATABASE_URL (the server's database)")
	case o.events < 1 || o.repeat < 1 || o.concurrency < 1 || o.subs < 1:
		return errors.New("-events, -repeat, -concurrency and -subscriptions must be at least 1")
	case o.client != "wire" && o.client != "net/http":
		return fmt.Errorf(`-client %q: want "wire" or "net/http"`, o.client)
	}
	if o.client == "wire" {
		if _, err := newWireConn(o.url); err != nil {
			return err
		}
	}
	return nil
}

// report is what a run measured. Durations are in milliseconds or seconds as named,
// so that the JSON form needs no unit conversion by whoever reads it.
type report struct {
	RunID          string   `json:"runId"`
	Events         int      `json:"events"`
	Deliveries     int      `json:"deliveries"`
	Concurrency    int      `json:"concurrency"`
	Acks           int      `json:"acks"`
	Errors         int      `json:"errors"`
	ErrorSamples   []string `json:"errorSamples,omitempty"`
	SendSeconds    float64  `json:"sendSeconds"`
	SenderCPU      float64  `json:"senderCpuSeconds"` // this command's own CPU while sending
	AcksPerSecond  float64  `json:"acksPerSecond"`
	P50Ms          float64  `json:"p50Ms"`
	P90Ms          float64  `json:"p90Ms"`
	P99Ms          float64  `json:"p99Ms"`
	MaxMs          float64  `json:"maxMs"`
	ProcessedAfter float64  `json:"processedAfterSeconds"` // first send to the last event applied
	Counts         counts   `json:"counts"`
	Problems       []string `json:"problems,omitempty"`
}

// counts are the rows the run left, found by its run id.
type counts struct {
	Events        int64 `json:"webhookEvents"`
	Processed     int64 `json:"processed"`
	Ignored       int64 `json:"ignored"`
	Failed        int64 `json:"failed"`
	Received      int64 `json:"stillReceived"`
	Payments      int64 `json:"payments"`
	Succeeded     int64 `json:"paymentsSucceeded"`
	Mismatched    int64 `json:"paymentsMismatched"`
	Shipments     int64 `json:"shipments"`
	Notifications int64 `json:"notifications"`
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "run %s: %d events x %d deliveries = %d, %d senders\n", r.RunID, r.Events, r.Deliveries/r.Events, r.Deliveries, r.Concurrency)
	fmt.Fprintf(w, "acks:            %d in %.2f s\n", r.Acks, r.SendSeconds)
	fmt.Fprintf(w, "acks/s:          %.1f\n", r.AcksPerSecond)
	fmt.Fprintf(w, "sender CPU:      %.2f s while sending\n", r.SenderCPU)
	fmt.Fprintf(w, "latency p50:     %.2f ms\n", r.P50Ms)
	fmt.Fprintf(w, "latency p90:     %.2f ms\n", r.P90Ms)
	fmt.Fprintf(w, "latency p99:     %.2f ms\n", r.P99Ms)
	fmt.Fprintf(w, "latency max:     %.2f ms\n", r.MaxMs)
	fmt.Fprintf(w, "errors:          %d\n", r.Errors)
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(w, "  %s\n", s)
	}
	fmt.Fprintf(w, "processed after: %.2f s (from the first send)\n", r.ProcessedAfter)
	c := r.Counts
	fmt.Fprintf(w, "webhook_events:  %d (processed %d, ignored %d, failed %d, received %d)\n", c.Events, c.Processed, c.Ignored, c.Failed, c.Received)
	fmt.Fprintf(w, "payments:        %d succeeded of %d (%d mismatched)\n", c.Succeeded, c.Payments, c.Mismatched)
	fmt.Fprintf(w, "shipments:       %d\n", c.Shipments)
	fmt.Fprintf(w, "notifications:   %d\n", c.Notifications)
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "result:          OK")
		return
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "result:          FAIL: %s\n", p)
	}
}

// fixture names the rows one run owns. Every Stripe id starts with the run id, so
// the run's results can be counted by prefix and runs never collide.
type fixture struct {
	run    string
	price  string
	amount int64
}

func (f fixture) customer(i int) string     { return "cus_" + f.run + "_" + strconv.Itoa(i) }
func (f fixture) subscription(i int) string { return "sub_" + f.run + "_" + strconv.Itoa(i) }
func (f fixture) invoicePrefix() string     { return "in_" + f.run + "_" }
func (f fixture) eventPrefix() string       { return "evt_" + f.run + "_" }

func load(ctx context.Context, o options, log io.Writer) (*report, error) {
	db, err := sql.Open("pgx", o.databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	// A few connections: the command must not compete with the server for the pool.
	db.SetMaxOpenConns(2)

	f := fixture{run: newRunID(), amount: 2400}
	f.price = "price_" + f.run
	keysValue := o.dataKeys
	if keysValue == "" {
		// What a development server uses when DATA_ENCRYPTION_KEYS is not set.
		keysValue = sealing.DevelopmentKeys
	}
	keys, err := sealing.Parse(keysValue)
	if err != nil {
		return nil, fmt.Errorf("DATA_ENCRYPTION_KEYS: %w", err)
	}
	if err := seed(ctx, db, keys, f, o.subs); err != nil {
		return nil, err
	}
	bodies := invoiceEvents(f, o.events, o.subs)
	order := deliveryOrder(o.events, o.repeat)
	signed := signAll(bodies, order, o.secret, time.Now())
	fmt.Fprintf(log, "webhookload: run %s seeded %d subscriptions; sending %d deliveries with %d senders to %s\n",
		f.run, o.subs, len(order), o.concurrency, o.url)

	rep := &report{RunID: f.run, Events: o.events, Deliveries: len(order), Concurrency: o.concurrency}
	cpu0 := cpuSeconds()
	start := time.Now()
	res := send(ctx, o, bodies, order, signed)
	sendTime := time.Since(start)
	rep.SenderCPU = cpuSeconds() - cpu0

	rep.Acks, rep.Errors, rep.ErrorSamples = len(res.latencies), res.errors, res.samples
	rep.SendSeconds = sendTime.Seconds()
	rep.AcksPerSecond = float64(rep.Acks) / sendTime.Seconds()
	slices.Sort(res.latencies)
	rep.P50Ms, rep.P90Ms = ms(percentile(res.latencies, 0.50)), ms(percentile(res.latencies, 0.90))
	rep.P99Ms, rep.MaxMs = ms(percentile(res.latencies, 0.99)), ms(percentile(res.latencies, 1))

	fmt.Fprintf(log, "webhookload: sent in %.2f s; waiting for the workers\n", sendTime.Seconds())
	done, err := awaitProcessed(ctx, db, f)
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	rep.ProcessedAfter = done.Sub(start).Seconds()
	if rep.Counts, err = count(context.WithoutCancel(ctx), db, f); err != nil {
		return nil, err
	}
	rep.Problems = append(rep.Problems, check(rep, int64(o.events))...)
	return rep, nil
}

func newRunID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return "wl" + hex.EncodeToString(b)
}

// seed writes one product and plan sold at f.price, and subs customers each with an
// ACTIVE subscription on it: what the API would have left before Stripe starts
// charging, so that every invoice.paid is applied in full (payment and shipment).
func seed(ctx context.Context, db *sql.DB, keys *sealing.Keyring, f fixture, subs int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var planID string
	err = tx.QueryRowContext(ctx, `WITH p AS (
			INSERT INTO products (name, description) VALUES ('Load test box', 'webhookload run ' || $1) RETURNING id)
		INSERT INTO plans (product_id, billing_interval, amount, currency, stripe_price_id)
		SELECT id, 'MONTH', $2, 'USD', $3 FROM p RETURNING id`, f.run, f.amount, f.price).Scan(&planID)
	if err != nil {
		return fmt.Errorf("seed plan: %w", err)
	}
	// Personal data is sealed at rest (package sealing), bound to its row: the ids
	// are chosen here, and the values sealed with the server's data keys.
	addr, err := json.Marshal(models.Address{Name: "Load", Line1: "1 Pepper St", City: "Austin", PostalCode: "78701", Country: "US"})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	for i := range subs {
		customerID, subID := uuid.NewString(), uuid.NewString()
		email, name := "load-"+strconv.Itoa(i)+"@example.com", "Load "+strconv.Itoa(i)
		sealedEmail, err1 := keys.Seal(sealing.AAD("customers", "email", customerID), []byte(email))
		sealedName, err2 := keys.Seal(sealing.AAD("customers", "name", customerID), []byte(name))
		sealedAddr, err3 := keys.Seal(sealing.AAD("subscriptions", "shipping_address", subID), addr)
		emailHash, err4 := keys.EmailIndex(email)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO customers (id, issuer, subject, email, name, email_hash, stripe_customer_id)
			VALUES ($1, 'https://webhookload.invalid', $2, $3, $4, $5, $6)`,
			customerID, "load-"+f.run+"-"+strconv.Itoa(i), sealedEmail, sealedName, emailHash, f.customer(i))
		if err != nil {
			return fmt.Errorf("seed customers: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO subscriptions (id, customer_id, plan_id, status, stripe_subscription_id, shipping_address)
			VALUES ($1, $2, $3, 'ACTIVE', $4, $5)`, subID, customerID, planID, f.subscription(i), sealedAddr)
		if err != nil {
			return fmt.Errorf("seed subscriptions: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

// invoiceEvents builds n distinct invoice.paid events: invoice k bills subscription
// k mod subs for its (k div subs)-th consecutive month, at the plan's price, so each
// one is a valid renewal with its own payment and shipment.
func invoiceEvents(f fixture, n, subs int) [][]byte {
	first := time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC)
	created := time.Now()
	bodies := make([][]byte, n)
	for k := range n {
		s, month := k%subs, k/subs
		periodStart := first.AddDate(0, month, 0)
		inv := webhooktest.Invoice{
			ID: f.invoicePrefix() + strconv.Itoa(k), Subscription: f.subscription(s), Customer: f.customer(s),
			Price: f.price, Amount: f.amount, Currency: "usd",
			PeriodStart: periodStart, PeriodEnd: periodStart.AddDate(0, 1, 0),
		}
		bodies[k] = webhooktest.Event(f.eventPrefix()+strconv.Itoa(k), "invoice.paid", created, inv.Object(), nil)
	}
	return bodies
}

// deliveryOrder lists every event repeat times, shuffled, so that a duplicate
// arrives sometimes long after the first delivery and sometimes at the same moment
// on another connection: both races the route must answer the same way.
func deliveryOrder(n, repeat int) []int {
	order := make([]int, 0, n*repeat)
	for range repeat {
		for k := range n {
			order = append(order, k)
		}
	}
	mrand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	return order
}

// resignAfter is the age at which a delivery's signature, made before the send, is
// made again: the route refuses signatures older than five minutes.
const resignAfter = time.Minute

// signature is a delivery's Stripe-Signature header and when it was made.
type signature struct {
	header string
	at     time.Time
}

// signAll signs every delivery of order before the send. Signing is Stripe's work,
// not the route's; done during the send on the same two cores it would be taken from
// what is measured, as a client's request building is by wrk. A delivery sent more
// than resignAfter later is signed again when it is sent.
func signAll(bodies [][]byte, order []int, secret string, now time.Time) []signature {
	signed := make([]signature, len(order))
	for i, k := range order {
		signed[i] = signature{header: webhooktest.Sign(bodies[k], secret, now), at: now}
	}
	return signed
}

// current is the header to send at now: the one made before the send, or a new one
// when that is older than resignAfter.
func (s signature) current(body []byte, secret string, now time.Time) string {
	if now.Sub(s.at) > resignAfter {
		return webhooktest.Sign(body, secret, now)
	}
	return s.header
}

// sendResult gathers what the senders saw; latencies are of acknowledged
// deliveries only.
type sendResult struct {
	latencies []time.Duration
	errors    int
	samples   []string
}

// maxSamples bounds the error messages kept for the report.
const maxSamples = 5

// send delivers bodies in order with o.concurrency senders, each on its own
// keep-alive connection (-client wire) or sharing net/http's pool, each waiting for its answer before the next delivery, as Stripe's
// dispatchers do. Deliveries go with the signatures of signed (signAll).
func send(ctx context.Context, o options, bodies [][]byte, order []int, signed []signature) sendResult {
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        o.concurrency,
			MaxIdleConnsPerHost: o.concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	defer client.CloseIdleConnections()
	var (
		next atomic.Int64 // index of the next delivery in order
		mu   sync.Mutex
		all  sendResult
		wg   sync.WaitGroup
	)
	for range o.concurrency {
		wg.Go(func() {
			var mine sendResult
			deliver := func(body []byte, sig string) (time.Duration, error) {
				return deliverHTTP(ctx, client, o.url, sig, body)
			}
			if o.client == "wire" {
				wc, _ := newWireConn(o.url) // checked by validate
				defer wc.Close()
				deliver = func(body []byte, sig string) (time.Duration, error) { return deliverWire(ctx, wc, sig, body) }
			}
			for {
				i := next.Add(1) - 1
				if i >= int64(len(order)) || ctx.Err() != nil {
					break
				}
				body := bodies[order[i]]
				lat, err := deliver(body, signed[i].current(body, o.secret, time.Now()))
				if err != nil {
					mine.errors++
					if len(mine.samples) < maxSamples {
						mine.samples = append(mine.samples, err.Error())
					}
					continue
				}
				mine.latencies = append(mine.latencies, lat)
			}
			mu.Lock()
			defer mu.Unlock()
			all.latencies = append(all.latencies, mine.latencies...)
			all.errors += mine.errors
			for _, s := range mine.samples {
				if len(all.samples) < maxSamples {
					all.samples = append(all.samples, s)
				}
			}
		})
	}
	wg.Wait()
	if undelivered := len(order) - len(all.latencies) - all.errors; undelivered > 0 {
		all.errors += undelivered
		all.samples = append(all.samples, fmt.Sprintf("%d deliveries not sent: %v", undelivered, ctx.Err()))
	}
	return all
}

// deliverWire posts one event with its signature on the sender's own connection and
// returns how long the answer took. Anything but 200 is an error: Stripe would
// redeliver it.
func deliverWire(ctx context.Context, wc *wireConn, sig string, body []byte) (time.Duration, error) {
	start := time.Now()
	status, answer, err := wc.post(ctx, body, sig)
	lat := time.Since(start)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %s", status, bytes.TrimSpace(answer))
	}
	return lat, nil
}

// deliverHTTP is deliverWire through net/http's client.
func deliverHTTP(ctx context.Context, client *http.Client, url, sig string, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", sig)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	lat := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	return lat, nil
}

// cpuSeconds is the CPU this process has used so far: on a machine the sender
// shares with the server and the database, what the sending itself costs is part of
// the budget.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// pollInterval is how often the command looks for events still waiting; the
// reported time does not depend on it (it is read from processed_at).
const pollInterval = 100 * time.Millisecond

// awaitProcessed waits until no event of the run is RECEIVED and returns when the
// last one was applied, by the server's clock (this machine's, on loopback). An
// event the workers keep failing stays RECEIVED while River retries it, so a
// timeout reports the last error seen.
func awaitProcessed(ctx context.Context, db *sql.DB, f fixture) (time.Time, error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		var waiting int64
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM webhook_events
			WHERE status = 'RECEIVED' AND starts_with(provider_event_id, $1)`, f.eventPrefix()).Scan(&waiting)
		if err == nil && waiting == 0 {
			var last sql.NullTime
			err = db.QueryRowContext(ctx, `SELECT max(processed_at) FROM webhook_events
				WHERE starts_with(provider_event_id, $1)`, f.eventPrefix()).Scan(&last)
			if err == nil && last.Valid {
				return last.Time, nil
			}
			if err == nil {
				return time.Now(), nil
			}
		}
		if err != nil && ctx.Err() == nil {
			return time.Now(), fmt.Errorf("waiting for the workers: %w", err)
		}
		select {
		case <-ctx.Done():
			var lastErr sql.NullString
			_ = db.QueryRowContext(context.WithoutCancel(ctx), `SELECT max(last_error) FROM webhook_events
				WHERE starts_with(provider_event_id, $1) AND status = 'RECEIVED'`, f.eventPrefix()).Scan(&lastErr)
			return time.Now(), fmt.Errorf("%d events still RECEIVED at the timeout (a last error: %q)", waiting, lastErr.String)
		case <-tick.C:
		}
	}
}

func count(ctx context.Context, db *sql.DB, f fixture) (counts, error) {
	var c counts
	err := db.QueryRowContext(ctx, `SELECT
			count(*),
			count(*) FILTER (WHERE status = 'PROCESSED'),
			count(*) FILTER (WHERE status = 'IGNORED'),
			count(*) FILTER (WHERE status = 'FAILED'),
			count(*) FILTER (WHERE status = 'RECEIVED'),
			(SELECT count(*) FROM payments WHERE starts_with(stripe_invoice_id, $2)),
			(SELECT count(*) FROM payments WHERE starts_with(stripe_invoice_id, $2) AND status = 'SUCCEEDED'),
			(SELECT count(*) FROM payments WHERE starts_with(stripe_invoice_id, $2) AND mismatch IS NOT NULL),
			(SELECT count(*) FROM shipments WHERE starts_with(stripe_invoice_id, $2)),
			(SELECT count(*) FROM notifications WHERE starts_with(dedupe_key, 'invoice:' || $2))
		FROM webhook_events WHERE starts_with(provider_event_id, $1)`, f.eventPrefix(), f.invoicePrefix()).Scan(
		&c.Events, &c.Processed, &c.Ignored, &c.Failed, &c.Received,
		&c.Payments, &c.Succeeded, &c.Mismatched, &c.Shipments, &c.Notifications)
	if err != nil {
		return c, fmt.Errorf("count results: %w", err)
	}
	return c, nil
}

// check lists what is not exactly as the route and workers promise: every delivery
// acknowledged, each event stored and applied once, one payment and one shipment
// per invoice.
func check(r *report, n int64) []string {
	var p []string
	c := r.Counts
	want := func(name string, got, want int64) {
		if got != want {
			p = append(p, fmt.Sprintf("%s: %d, want %d", name, got, want))
		}
	}
	want("unacknowledged deliveries", int64(r.Errors), 0)
	want("webhook_events", c.Events, n)
	want("events PROCESSED", c.Processed, n)
	want("events FAILED", c.Failed, 0)
	want("payments", c.Payments, n)
	want("payments SUCCEEDED", c.Succeeded, n)
	want("payments with a mismatch", c.Mismatched, 0)
	want("shipments", c.Shipments, n)
	want("notifications", c.Notifications, n)
	return p
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
