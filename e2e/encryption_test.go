package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/logging"
	"github.com/scoville/scoville/sealing"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// The canary's personal data: none of it may appear in any table, in any case.
const (
	canaryEmail  = "Chili.Canary@Example.com"
	canaryName   = "Chili Canary-Person"
	canaryStreet = "99 Canary Capsaicin Road"
	canaryCity   = "Canaryville"
	// canaryPayloadEmail is only in the webhook event's body.
	canaryPayloadEmail = "billing.canary@example.net"
)

var canaryValues = []string{canaryEmail, canaryName, canaryStreet, canaryCity, canaryPayloadEmail}

// canaryApp is a shop with workers, the canary customer with one active subscription
// (created through the API) and one paid invoice (through a signed webhook), so every
// sealed table holds a row.
type canaryApp struct {
	*shop
	canaryToken, subscriptionID, customerID string
}

func newCanaryApp(t *testing.T, env map[string]string) *canaryApp {
	t.Helper()
	fake := newFakeStripe(t)
	e := map[string]string{"STRIPE_API_BASE": fake.URL}
	for k, v := range env {
		e[k] = v
	}
	a := newTestApp(t, appOptions{env: e, jobs: true,
		options: []app.Option{app.WithStripeTimeouts(2*time.Second, 5*time.Second)}})
	a.seedAt(fake.URL)
	s := &shop{testApp: a, stripe: fake}
	c := &canaryApp{shop: s}
	tok, err := a.issuer.Mint(devidp.Claims{Subject: "canary", Email: canaryEmail, Name: canaryName, AuthTime: time.Now().Add(-time.Minute)})
	require.NoError(t, err)
	c.canaryToken = tok

	s.stripe.SetNewSubscriptionStatus("active")
	resp, payload := s.mutate(tok, "createSubscription", "CreateSubscriptionInput", map[string]any{
		"planId": hotMonthly, "idempotencyKey": "canary-1",
		"shippingAddress": map[string]any{"name": canaryName, "line1": canaryStreet, "city": canaryCity, "postalCode": "10115", "country": "de"},
	}, "subscription { id }")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Empty(t, userErrorCodes(payload), resp.Raw)
	c.subscriptionID = payload["subscription"].(map[string]any)["id"].(string)

	f := shopFixture{subscriptionID: c.subscriptionID, planID: hotMonthly}
	require.NoError(t, a.db.Raw(`SELECT c.id, c.stripe_customer_id, s.stripe_subscription_id, p.stripe_price_id, p.amount
		FROM subscriptions s JOIN customers c ON c.id = s.customer_id JOIN plans p ON p.id = s.plan_id WHERE s.id = ?`, c.subscriptionID).
		Row().Scan(&c.customerID, &f.stripeCustomer, &f.stripeSub, &f.price, &f.amount))
	f.customerID = c.customerID
	inv := paidInvoice(f, "in_canary", time.Now().Add(-time.Hour).Truncate(time.Second)).Object()
	inv["customer_email"], inv["customer_name"] = canaryPayloadEmail, canaryName
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_canary", "invoice.paid", time.Now(), inv, nil)))
	require.Equal(t, "PROCESSED", a.awaitEvent("evt_canary"), a.eventOutcome("evt_canary"))
	require.EqualValues(t, 1, a.count(`SELECT count(*) FROM shipments WHERE subscription_id = ?`, c.subscriptionID))
	return c
}

// dumpAllTables is every row of every table in the schema, as PostgreSQL's text form
// of the row (bytea as hex, so plaintext stored as bytes is found too, decoded).
func (a *testApp) dumpAllTables() map[string][]string {
	a.t.Helper()
	var tables []string
	require.NoError(a.t, a.db.Raw(`SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`).Scan(&tables).Error)
	require.Contains(a.t, tables, "customers")
	out := make(map[string][]string, len(tables))
	for _, table := range tables {
		var rows []string
		require.NoError(a.t, a.db.Raw(`SELECT t::text FROM `+table+` t`).Scan(&rows).Error)
		// bytea prints as \x<hex>: decode it, so bytes that are text are searched as text.
		var cols []string
		require.NoError(a.t, a.db.Raw(`SELECT quote_ident(column_name) FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = ? AND data_type = 'bytea'`, strings.Trim(table, `"`)).Scan(&cols).Error)
		for _, col := range cols {
			var vals [][]byte
			require.NoError(a.t, a.db.Raw(`SELECT `+col+` FROM `+table+` WHERE `+col+` IS NOT NULL`).Scan(&vals).Error)
			for _, v := range vals {
				rows = append(rows, string(v))
			}
		}
		out[table] = rows
	}
	return out
}

func requireNoCanary(t *testing.T, dump map[string][]string) {
	t.Helper()
	for table, rows := range dump {
		for _, row := range rows {
			for _, c := range canaryValues {
				require.NotContains(t, strings.ToLower(row), strings.ToLower(c), "plaintext personal data in table %s", table)
			}
		}
	}
}

func TestPersonalDataIsSealedAtRest(t *testing.T) {
	t.Parallel()
	c := newCanaryApp(t, nil)

	dump := c.dumpAllTables()
	for _, table := range []string{"customers", "subscriptions", "shipments", "webhook_events"} {
		require.NotEmpty(t, dump[table], "the scenario wrote %s", table)
	}
	requireNoCanary(t, dump)

	// The API still reads it all back, for the customer it belongs to.
	resp := c.gql(c.canaryToken, `{ me { email name } subscription(id: "`+c.subscriptionID+`") { shippingAddress { name line1 city }
		shipments { edges { node { address { line1 city } } } } } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	for _, v := range []string{canaryEmail, canaryName, canaryStreet, canaryCity} {
		require.Contains(t, resp.Raw, v)
	}
}

func TestIdempotentResultsAreSealedAtRest(t *testing.T) {
	t.Parallel()
	c := newCanaryApp(t, nil)
	createIn := map[string]any{"planId": hotMonthly, "idempotencyKey": "sealed-create",
		"shippingAddress": map[string]any{"name": canaryName, "line1": canaryStreet, "city": canaryCity, "postalCode": "10115", "country": "de"}}
	checkoutIn := map[string]any{"planId": hotMonthly, "idempotencyKey": "sealed-checkout",
		"successUrl": "https://shop.example/thanks", "cancelUrl": "https://shop.example/cart"}
	create := func() string {
		t.Helper()
		resp, payload := c.mutate(c.canaryToken, "createSubscription", "CreateSubscriptionInput", createIn, "clientSecret")
		require.Empty(t, resp.Errors, resp.Raw)
		require.Empty(t, userErrorCodes(payload), resp.Raw)
		return payload["clientSecret"].(string)
	}
	checkout := func() (string, string) {
		t.Helper()
		resp, payload := c.mutate(c.canaryToken, "startCheckout", "StartCheckoutInput", checkoutIn, "checkoutUrl sessionId")
		require.Empty(t, resp.Errors, resp.Raw)
		require.Empty(t, userErrorCodes(payload), resp.Raw)
		return payload["checkoutUrl"].(string), payload["sessionId"].(string)
	}
	c.stripe.SetNewSubscriptionStatus("incomplete") // a payment to confirm: a client secret
	secret := create()
	url, session := checkout()
	require.Contains(t, secret, "_secret_")
	require.NotEmpty(t, url)

	var rows []string
	require.NoError(t, c.db.Raw(`SELECT t::text FROM idempotency_keys t`).Scan(&rows).Error)
	var raw [][]byte
	require.NoError(t, c.db.Raw(`SELECT response FROM idempotency_keys WHERE response IS NOT NULL`).Scan(&raw).Error)
	require.Len(t, raw, 3, "canary-1, sealed-create and sealed-checkout hold results")
	for _, r := range raw {
		rows = append(rows, string(r))
	}
	for _, row := range rows {
		for _, v := range []string{secret, url, session} {
			require.NotContains(t, row, v, "idempotency_keys holds a result in the clear")
			require.NotContains(t, row, hex.EncodeToString([]byte(v)), "idempotency_keys holds a result in the clear")
		}
	}

	n := c.stripe.Count(http.MethodPost, "/v1/")
	require.Equal(t, secret, create(), "a replay still answers with the client secret")
	gotURL, gotSession := checkout()
	require.Equal(t, url, gotURL, "and with the checkout URL")
	require.Equal(t, session, gotSession)
	require.Equal(t, n, c.stripe.Count(http.MethodPost, "/v1/"), "from our store, not from Stripe")
}

func TestSealedValueCopiedToAnotherCustomerDoesNotOpen(t *testing.T) {
	t.Parallel()
	c := newCanaryApp(t, nil)
	other := c.token2("other")
	resp := c.gql(other, `{ me { id email } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	otherID := resp.Data["me"].(map[string]any)["id"].(string)

	// Someone with write access to the table moves the canary's sealed e-mail into another row.
	require.NoError(t, c.db.Exec(`UPDATE customers SET email = (SELECT email FROM customers WHERE id = ?) WHERE id = ?`,
		c.customerID, otherID).Error)
	resp = c.gql(other, `{ me { email } }`, nil)
	require.NotEmpty(t, resp.Errors, "the moved value must not open: %s", resp.Raw)
	require.Equal(t, 200, resp.Status, "an error answer, not a crash")
	for _, v := range canaryValues {
		require.NotContains(t, strings.ToLower(resp.Raw), strings.ToLower(v))
	}
	require.Contains(t, c.logs.String(), "customers.email of row "+otherID, "the log says which row failed to open")

	resp = c.gql(c.canaryToken, `{ me { email } }`, nil)
	require.Empty(t, resp.Errors, resp.Raw)
	require.Contains(t, resp.Raw, canaryEmail, "the row it was copied from is intact")
}

func TestAdminCustomersFindsByExactEmailOnly(t *testing.T) {
	t.Parallel()
	c := newCanaryApp(t, nil)
	c.gql(c.token2("someone-else"), `{ me { id } }`, nil)
	support := c.token("support-1", "support")
	for _, q := range []string{canaryEmail, strings.ToLower(canaryEmail), strings.ToUpper(canaryEmail)} {
		edges := c.customersByEmail(support, q)
		require.Len(t, edges, 1, "exact address in any case: %q", q)
		node := edges[0].(map[string]any)["node"].(map[string]any)
		require.Equal(t, c.customerID, node["id"])
		require.Equal(t, canaryEmail, node["email"])
	}
	for _, q := range []string{"chili", "chili.canary@", "chili.canary@example", "hili.canary@example.com", "%canary%"} {
		require.Empty(t, c.customersByEmail(support, q), "part of an address finds nobody: %q", q)
	}
}

// token2 mints a customer token for sub with a distinct address.
func (a *testApp) token2(sub string) string {
	a.t.Helper()
	tok, err := a.issuer.Mint(devidp.Claims{Subject: sub, Email: sub + "@elsewhere.example", AuthTime: time.Now().Add(-time.Minute)})
	require.NoError(a.t, err)
	return tok
}

func TestKeyRotationAndReencryptCommand(t *testing.T) {
	t.Parallel()
	v1 := freshDataKeys(t)
	dbURL := dbtest.NewURL(t, "")
	c := newCanaryApp(t, map[string]string{"DATA_ENCRYPTION_KEYS": v1, "DATABASE_URL": dbURL})
	ctx := context.Background()

	// keys rotate reads the current value from the environment, or else from stdin.
	var out, errOut bytes.Buffer
	require.Equal(t, 0, app.RunKeys(ctx, []string{"rotate"}, envOf(map[string]string{"DATA_ENCRYPTION_KEYS": v1}), strings.NewReader(""), &out, &errOut), errOut.String())
	v2 := strings.TrimSpace(out.String())
	out.Reset()
	require.Equal(t, 0, app.RunKeys(ctx, []string{"rotate"}, envOf(nil), strings.NewReader(v1+"\n"), &out, &errOut), errOut.String())
	require.NotEqual(t, v2, strings.TrimSpace(out.String()), "each rotation adds a fresh key")
	k1, err := sealing.Parse(v1)
	require.NoError(t, err)
	k2, err := sealing.Parse(v2)
	require.NoError(t, err)
	require.NotEqual(t, k1.PrimaryKeyID(), k2.PrimaryKeyID())
	require.Subset(t, k2.KeyIDs(), k1.KeyIDs(), "old keys are kept for reading")

	// The server restarted with the rotated value reads the old rows.
	c.app.Close()
	after := newTestApp(t, appOptions{dbURL: dbURL, env: map[string]string{"DATA_ENCRYPTION_KEYS": v2, "STRIPE_API_BASE": c.stripe.URL}})
	var sealedEmail []byte
	require.NoError(t, after.db.Raw(`SELECT email FROM customers WHERE id = ?`, c.customerID).Row().Scan(&sealedEmail))
	id, ok := sealing.KeyID(sealedEmail)
	require.True(t, ok)
	require.Equal(t, k1.PrimaryKeyID(), id, "still under the old key before reencrypt")
	plain, err := sealing.OpenColumn(after.db, "customers", "email", c.customerID, sealedEmail)
	require.NoError(t, err, "the rotated key set opens data sealed before the rotation")
	require.Equal(t, canaryEmail, string(plain))

	env := envOf(map[string]string{"DATABASE_URL": dbURL, "DATA_ENCRYPTION_KEYS": v2, "OIDC_ISSUER_URL": after.issuer.IssuerURL(), "OIDC_AUDIENCE": testAudience})
	out.Reset()
	errOut.Reset()
	require.Equal(t, 3, app.RunKeys(ctx, []string{"status"}, env, nil, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "not under the primary key")
	require.Contains(t, out.String(), fmt.Sprintf("idempotency_keys.response: key %d: 1", k1.PrimaryKeyID()), "status counts stored results")

	out.Reset()
	require.Equal(t, 0, app.RunKeys(ctx, []string{"reencrypt", "-batch", "1"}, env, nil, &out, &errOut), errOut.String())
	report := out.String()
	require.Contains(t, report, "customers.email: 1 values, 1 re-sealed")
	require.Contains(t, report, "subscriptions.shipping_address: 1 values, 1 re-sealed")
	require.Contains(t, report, "shipments.address: 1 values, 1 re-sealed")
	require.Contains(t, report, "idempotency_keys.response: 1 values, 1 re-sealed", "the stored result of createSubscription too")
	require.Contains(t, report, "every value is under the primary key")

	census, err := sealing.Census(ctx, after.db)
	require.NoError(t, err)
	for _, col := range sealing.Columns {
		for keyID := range census[col] {
			require.Equal(t, k2.PrimaryKeyID(), keyID, "%s.%s: no value left under the old key", col.Table, col.Name)
		}
	}
	requireNoCanary(t, after.dumpAllTables())

	// Proof by the keys: the old set alone no longer opens the row; the new one does.
	require.NoError(t, after.db.Raw(`SELECT email FROM customers WHERE id = ?`, c.customerID).Row().Scan(&sealedEmail))
	_, err = k1.Open(sealing.AAD("customers", "email", c.customerID), sealedEmail)
	require.ErrorIs(t, err, sealing.ErrUnopenable)
	resp := after.gql(after.token("support-1", "support"), `query($e: String) { adminCustomers(email: $e) { edges { node { email name } } } }`,
		map[string]any{"e": canaryEmail})
	require.Empty(t, resp.Errors, resp.Raw)
	require.Contains(t, resp.Raw, canaryName, "re-sealed rows read back, and the blind index survived the rotation")

	out.Reset()
	require.Equal(t, 0, app.RunKeys(ctx, []string{"reencrypt"}, env, nil, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "customers.email: 1 values, 0 re-sealed", "a second run has nothing to do")
}

func TestKeysGenerate(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.Equal(t, 0, app.RunKeys(context.Background(), []string{"generate"}, envOf(nil), nil, &out, &errOut))
	v := strings.TrimSpace(out.String())
	k, err := sealing.Parse(v)
	require.NoError(t, err)
	require.False(t, k.Development())
	require.Empty(t, errOut.String(), "only the value, on stdout")

	errOut.Reset()
	require.Equal(t, 2, app.RunKeys(context.Background(), []string{"rotate"}, envOf(map[string]string{"DATA_ENCRYPTION_KEYS": "bm90IGtleXM="}),
		nil, &out, &errOut))
	require.Contains(t, errOut.String(), "DATA_ENCRYPTION_KEYS")
	require.NotContains(t, errOut.String(), "bm90IGtleXM=")
	errOut.Reset()
	require.Equal(t, 2, app.RunKeys(context.Background(), []string{"rotate"}, envOf(nil), strings.NewReader(""), &out, &errOut))
	require.Contains(t, errOut.String(), "DATA_ENCRYPTION_KEYS")
	require.Equal(t, 2, app.RunKeys(context.Background(), []string{"frobnicate"}, envOf(nil), nil, &out, &errOut))
}

func TestDataKeysAreCheckedAtStart(t *testing.T) {
	t.Parallel()
	prod := map[string]string{
		"APP_ENV": "production", "DATABASE_URL": "postgres://u:p@127.0.0.1:1/x", "OIDC_ISSUER_URL": "https://id.example.com",
		"OIDC_AUDIENCE": "api", "STRIPE_SECRET_KEY": "sk_live_abc", "STRIPE_WEBHOOK_SECRET": "whsec_abc",
		"ALLOWED_REDIRECT_ORIGINS": "https://shop.example.com", "SMTP_URL": "smtp://mail.example.com:587",
	}
	with := func(base map[string]string, k, v string) map[string]string {
		out := map[string]string{}
		for a, b := range base {
			out[a] = b
		}
		out[k] = v
		return out
	}
	good := freshDataKeys(t)
	garbage := base64JSON(t, map[string]any{"format": "scoville-data-keys/v1", "aead": map[string]any{"key": []any{}}, "blindIndex": "x"})
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"production without it", prod, "DATA_ENCRYPTION_KEYS is required in production"},
		{"production with a malformed value", with(prod, "DATA_ENCRYPTION_KEYS", "c2VjcmV0LWJ1dC1ub3Qta2V5cw=="), "DATA_ENCRYPTION_KEYS: is not a valid key set"},
		{"production with a broken keyset", with(prod, "DATA_ENCRYPTION_KEYS", garbage), "DATA_ENCRYPTION_KEYS: is not a valid key set"},
		{"production with the development set", with(prod, "DATA_ENCRYPTION_KEYS", sealing.DevelopmentKeys), "DATA_ENCRYPTION_KEYS is the public development key set"},
		{"development with a malformed value", map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/x", "DATA_ENCRYPTION_KEYS": "not base64, not keys!"},
			"DATA_ENCRYPTION_KEYS: is not a valid key set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stderr := captureStderr(t, func(f *os.File) int {
				return scoville(t, context.Background(), []string{"serve"}, tc.env, f)
			}, 2)
			require.Contains(t, stderr, tc.want)
			require.Contains(t, stderr, "scoville keys generate", "says how to get a good value")
			if v := tc.env["DATA_ENCRYPTION_KEYS"]; v != "" {
				require.NotContains(t, stderr, v[:12], "the value is never printed")
			}
		})
	}
	_, err := config.Load(envOf(with(prod, "DATA_ENCRYPTION_KEYS", good)))
	require.NoError(t, err, "a generated value is accepted in production")
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func base64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(b)
}

func TestDevelopmentWithoutKeysUsesTheLabelledSetAndSaysSo(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	var logs bytes.Buffer
	cfg, err := config.Load(envOf(map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/x"}))
	require.NoError(t, err)
	k, err := app.InstallDataKeys(db, cfg, logging.New(&logs, nil))
	require.NoError(t, err)
	require.True(t, k.Development())
	require.Contains(t, logs.String(), "PUBLIC development key set")

	cfg.Env = config.Production // as if validation had been skipped: still refused
	_, err = app.InstallDataKeys(dbtest.New(t), cfg, logging.New(&logs, nil))
	require.ErrorContains(t, err, "DATA_ENCRYPTION_KEYS is required in production")
	cfg.DataEncryptionKeys = config.Secret(sealing.DevelopmentKeys)
	_, err = app.InstallDataKeys(dbtest.New(t), cfg, logging.New(&logs, nil))
	require.ErrorContains(t, err, "DATA_ENCRYPTION_KEYS is the public development key set")
}
