// Command readload prepares the read-path benchmark (scripts/bench-read.sh): it seeds
// a database with customers who each hold one to three subscriptions, and mints an
// access token for some of them at the development identity provider (devidp), so
// that the authenticated query of the benchmark finds a real customer with real
// subscriptions behind every token.
//
//	go run ./cmd/readload -database-url postgres://... -issuer http://127.0.0.1:9000 \
//	    -customers 10000 -tokens 1000 -out tokens.txt
//
// Customers are seeded as the API would have left them: identity (issuer and
// subject) of the issuer's tokens, e-mail and name sealed with the server's data keys
// (DATA_ENCRYPTION_KEYS, or the development set), and tokens carry the same verified
// e-mail and name, so answering them writes nothing. Every id carries a run id, so
// the command can run again on the same database.
package main

import (
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
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/sealing"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

type options struct {
	databaseURL, issuer, out, dataKeys string
	customers, tokens                  int
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("readload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.databaseURL, "database-url", "", "the server's database (default $DATABASE_URL)")
	fs.StringVar(&o.issuer, "issuer", "", "the development identity provider's issuer URL (the server's OIDC_ISSUER_URL)")
	fs.StringVar(&o.out, "out", "tokens.txt", "file to write the access tokens to, one a line")
	fs.IntVar(&o.customers, "customers", 10000, "customers to seed, each with 1 to 3 subscriptions")
	fs.IntVar(&o.tokens, "tokens", 1000, "customers to mint a token for, spread over all of them")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// The load tools share their settings (DATABASE_URL, DATA_ENCRYPTION_KEYS), read in config.
	env, err := config.LoadWebhookLoad(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "readload:", err)
		return 2
	}
	o.databaseURL = cmp.Or(o.databaseURL, env.DatabaseURL.Reveal())
	o.dataKeys = env.DataEncryptionKeys.Reveal()
	if o.databaseURL == "" || o.issuer == "" || o.customers < 1 || o.tokens < 1 || o.tokens > o.customers {
		fmt.Fprintln(stderr, "readload: -database-url (or DATABASE_URL) and -issuer are required; 1 <= -tokens <= -customers")
		return 2
	}
	if err := prepare(context.Background(), o, stderr); err != nil {
		fmt.Fprintf(stderr, "readload: %v\n", err)
		return 1
	}
	return 0
}

// customer is one seeded customer: who the token names.
type customer struct{ subject, email, name string }

func prepare(ctx context.Context, o options, log io.Writer) error {
	keysValue := o.dataKeys
	if keysValue == "" {
		keysValue = sealing.DevelopmentKeys // what a development server uses
	}
	keys, err := sealing.Parse(keysValue)
	if err != nil {
		return fmt.Errorf("DATA_ENCRYPTION_KEYS: %w", err)
	}
	db, err := sql.Open("pgx", o.databaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()

	b := make([]byte, 5)
	_, _ = rand.Read(b)
	runID := "rl" + hex.EncodeToString(b)
	start := time.Now()
	people, subs, err := seed(ctx, db, keys, o, runID)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "readload: run %s seeded %d customers with %d subscriptions in %.1f s\n",
		runID, len(people), subs, time.Since(start).Seconds())

	start = time.Now()
	tokens, err := mintAll(ctx, o.issuer, people, o.tokens)
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("write tokens: %w", err)
	}
	fmt.Fprintf(log, "readload: minted %d tokens in %.1f s (%s)\n", len(tokens), time.Since(start).Seconds(), o.out)
	return nil
}

// seed writes a product with three plans and o.customers customers; customer i holds
// i mod 3 + 1 subscriptions, of different plans and states.
func seed(ctx context.Context, db *sql.DB, keys *sealing.Keyring, o options, runID string) ([]customer, int, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("seed: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var plans []string
	rows, err := tx.QueryContext(ctx, `WITH p AS (
			INSERT INTO products (name, description) VALUES ('Read bench box', 'readload run ' || $1) RETURNING id)
		INSERT INTO plans (product_id, billing_interval, amount, currency, stripe_price_id)
		SELECT p.id, v.interval, v.amount, v.currency, 'price_' || $1 || '_' || v.n
		FROM p, (VALUES (1, 'MONTH', 1500, 'USD'), (2, 'YEAR', 15000, 'USD'), (3, 'MONTH', 1900, 'EUR'))
			AS v (n, interval, amount, currency)
		RETURNING id`, runID)
	if err != nil {
		return nil, 0, fmt.Errorf("seed plans: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, 0, fmt.Errorf("seed plans: %w", err)
		}
		plans = append(plans, id)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("seed plans: %w", err)
	}
	addr, err := json.Marshal(models.Address{Name: "Reader", Line1: "1 Pepper St", City: "Austin", PostalCode: "78701", Country: "US"})
	if err != nil {
		return nil, 0, err
	}
	statuses := []string{"ACTIVE", "PAST_DUE", "CANCELED"}
	people := make([]customer, o.customers)
	var (
		cIDs, cSubjects                     []string
		cEmails, cNames, cHashes            [][]byte
		sIDs, sCustomers, sPlans, sStatuses []string
		sAddrs                              [][]byte
	)
	for i := range o.customers {
		id := uuid.NewString()
		p := customer{
			subject: "read-" + runID + "-" + strconv.Itoa(i),
			email:   "reader-" + runID + "-" + strconv.Itoa(i) + "@example.com",
			name:    "Reader " + strconv.Itoa(i),
		}
		people[i] = p
		sealedEmail, err1 := keys.Seal(sealing.AAD("customers", "email", id), []byte(p.email))
		sealedName, err2 := keys.Seal(sealing.AAD("customers", "name", id), []byte(p.name))
		hash, err3 := keys.EmailIndex(p.email)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, 0, fmt.Errorf("seed: %w", err)
		}
		cIDs, cSubjects, cEmails, cNames, cHashes = append(cIDs, id), append(cSubjects, p.subject),
			append(cEmails, sealedEmail), append(cNames, sealedName), append(cHashes, hash)
		for k := range i%3 + 1 {
			subID := uuid.NewString()
			sealedAddr, err := keys.Seal(sealing.AAD("subscriptions", "shipping_address", subID), addr)
			if err != nil {
				return nil, 0, fmt.Errorf("seed: %w", err)
			}
			sIDs, sCustomers, sPlans = append(sIDs, subID), append(sCustomers, id), append(sPlans, plans[(i+k)%len(plans)])
			sStatuses, sAddrs = append(sStatuses, statuses[k]), append(sAddrs, sealedAddr)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO customers (id, issuer, subject, email, name, email_hash)
		SELECT u.id::uuid, $1, u.subject, u.email, u.name, u.email_hash
		FROM unnest($2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::bytea[]) AS u (id, subject, email, name, email_hash)`,
		o.issuer, cIDs, cSubjects, cEmails, cNames, cHashes)
	if err != nil {
		return nil, 0, fmt.Errorf("seed customers: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO subscriptions (id, customer_id, plan_id, status, stripe_subscription_id, shipping_address)
		SELECT u.id::uuid, u.customer_id::uuid, u.plan_id::uuid, u.status, 'sub_' || $1 || '_' || u.n, u.address
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[]) WITH ORDINALITY AS u (id, customer_id, plan_id, status, address, n)`,
		runID, sIDs, sCustomers, sPlans, sStatuses, sAddrs)
	if err != nil {
		return nil, 0, fmt.Errorf("seed subscriptions: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, 0, fmt.Errorf("seed: %w", err)
	}
	return people, len(sIDs), nil
}

// mintAll asks the issuer's development mint endpoint for a token for n customers,
// spread evenly over people, with the e-mail and name they were seeded with.
func mintAll(ctx context.Context, issuer string, people []customer, n int) ([]string, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	tokens := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for j := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p := people[j*len(people)/n]
			tokens[j], errs[j] = mint(ctx, client, issuer, p)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tokens, nil
}

func mint(ctx context.Context, client *http.Client, issuer string, p customer) (string, error) {
	form := url.Values{"sub": {p.subject}, "email": {p.email}, "name": {p.name}, "ttl": {"2h"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(issuer, "/")+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return "", fmt.Errorf("mint: status %d: %s", resp.StatusCode, body.Error)
	}
	return body.AccessToken, nil
}
