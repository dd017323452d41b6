package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/graph"
	"github.com/scoville/scoville/httpserver"
	"github.com/scoville/scoville/live"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// liveWait bounds each wait for a socket message, so a missing push fails the test
// instead of hanging it. It is not a latency assertion.
const liveWait = 30 * time.Second

// liveOrigin is the storefront origin the live tests allow.
const liveOrigin = "https://shop.example"

// liveEnv opens CORS_ALLOWED_ORIGINS to liveOrigin only.
var liveEnv = map[string]string{"CORS_ALLOWED_ORIGINS": liveOrigin}

// liveClient is a graphql-transport-ws client over a real WebSocket (the protocol
// of the graphql-ws library).
type liveClient struct {
	t    testing.TB
	conn *websocket.Conn
}

// liveMessage is one server message.
type liveMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// wsURL is the /graphql WebSocket URL of a server at base (http://host:port).
func wsURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") + "/graphql" }

// dialLive opens a socket to url; header may carry an Origin.
func dialLive(t testing.TB, url string, header http.Header) (*liveClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), liveWait)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Subprotocols: []string{graph.LiveSubprotocol}, HTTPHeader: header,
	})
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return &liveClient{t: t, conn: conn}, resp, nil
}

// connect dials the app and completes connection_init with token.
func (a *testApp) connect(token string) *liveClient {
	a.t.Helper()
	return connectTo(a.t, a.srv.URL, nil, token)
}

// connectTo dials the server at base (header may carry an Origin) and completes
// connection_init with token.
func connectTo(t testing.TB, base string, header http.Header, token string) *liveClient {
	t.Helper()
	c, _, err := dialLive(t, wsURL(base), header)
	require.NoError(t, err)
	c.send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	m := c.next()
	require.Equal(t, "connection_ack", m.Type, "payload: %s", m.Payload)
	return c
}

// followAs connects with token and subscribes operation op to the subscription id.
func (a *testApp) followAs(token, op, id string) *liveClient {
	a.t.Helper()
	c := a.connect(token)
	c.subscribe(op, followQuery, map[string]any{"id": id})
	return c
}

// follow subscribes operation "1" to the subscription id and requires its first
// push, the current state: ACTIVE.
func (c *liveClient) follow(id string) {
	c.t.Helper()
	c.subscribe("1", followQuery, map[string]any{"id": id})
	require.Equal(c.t, "ACTIVE", c.push("1").Data.SubscriptionUpdated.Status)
}

// liveFixture is a.fixture named after name (price_<name>, cus_<name>, sub_<name>),
// its customer signed in as subject.
func (a *testApp) liveFixture(name, subject string) shopFixture {
	a.t.Helper()
	f := a.fixture("price_"+name, "cus_"+name, "sub_"+name)
	a.issuerSubject(f.customerID, subject)
	return f
}

// untilStatus reads the pushes of operation "1" until one has status.
func (c *liveClient) untilStatus(status string) {
	c.t.Helper()
	c.until("1", func(p livePush) bool { return p.Data.SubscriptionUpdated.Status == status })
}

// announceStatus commits the subscription id's new status and announces the change
// to live followers, in one transaction.
func announceStatus(db *gorm.DB, id, status string) error {
	return db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE subscriptions SET status = ? WHERE id = ?`, status, id).Error; err != nil {
			return err
		}
		return live.Announce(tx, id)
	})
}

func (c *liveClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(c.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), liveWait)
	defer cancel()
	require.NoError(c.t, c.conn.Write(ctx, websocket.MessageText, b))
}

// read returns the next message other than a ping (answered with pong), or the
// error that ended the socket.
func (c *liveClient) read() (liveMessage, error) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), liveWait)
		_, b, err := c.conn.Read(ctx)
		cancel()
		if err != nil {
			return liveMessage{}, err
		}
		var m liveMessage
		require.NoError(c.t, json.Unmarshal(b, &m), "message: %s", b)
		if m.Type == "ping" {
			c.send(map[string]any{"type": "pong"})
			continue
		}
		return m, nil
	}
}

func (c *liveClient) next() liveMessage {
	c.t.Helper()
	m, err := c.read()
	require.NoError(c.t, err)
	return m
}

// closed reads until the server closes the socket and returns the close code.
func (c *liveClient) closed() websocket.StatusCode {
	c.t.Helper()
	return c.closedAfter(func(m liveMessage) {
		require.NotEqual(c.t, "next", m.Type, "no operation may run: %s", m.Payload)
	})
}

// closedAfter reads until the server closes the socket, handing every message before
// the close to check, and returns the close code.
func (c *liveClient) closedAfter(check func(liveMessage)) websocket.StatusCode {
	c.t.Helper()
	for {
		m, err := c.read()
		if err != nil {
			code := websocket.CloseStatus(err)
			require.NotEqual(c.t, websocket.StatusCode(-1), code, "the socket ended without a close frame: %v", err)
			return code
		}
		check(m)
	}
}

// subscribe starts operation id.
func (c *liveClient) subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	c.send(map[string]any{"type": "subscribe", "id": id, "payload": map[string]any{"query": query, "variables": vars}})
}

// livePush is a "next" payload of subscriptionUpdated.
type livePush struct {
	Data struct {
		SubscriptionUpdated *struct {
			ID                     string  `json:"id"`
			Status                 string  `json:"status"`
			ProviderSubscriptionID *string `json:"providerSubscriptionId"`
			Payments               struct {
				Edges []struct {
					Node struct {
						Status string `json:"status"`
					} `json:"node"`
				} `json:"edges"`
			} `json:"payments"`
		} `json:"subscriptionUpdated"`
	} `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// push reads the next message of operation id, which must be a push.
func (c *liveClient) push(id string) livePush {
	c.t.Helper()
	m := c.next()
	require.Equal(c.t, id, m.ID, "message %s: %s", m.Type, m.Payload)
	require.Equal(c.t, "next", m.Type, "payload: %s", m.Payload)
	var p livePush
	require.NoError(c.t, json.Unmarshal(m.Payload, &p))
	require.NotNil(c.t, p.Data.SubscriptionUpdated, "payload: %s", m.Payload)
	return p
}

// until reads pushes of operation id until one satisfies ok.
func (c *liveClient) until(id string, ok func(livePush) bool) livePush {
	c.t.Helper()
	for {
		if p := c.push(id); ok(p) {
			return p
		}
	}
}

// refusal reads operation id's refusal and returns its codes and messages.
func (c *liveClient) refusal(id string) (codes, messages []string) {
	c.t.Helper()
	m := c.next()
	for m.ID != id && m.Type == "next" { // a push of another operation on the socket
		m = c.next()
	}
	require.Equal(c.t, id, m.ID)
	var errs []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	}
	switch m.Type {
	case "error":
		require.NoError(c.t, json.Unmarshal(m.Payload, &errs))
	case "next":
		var p livePush
		require.NoError(c.t, json.Unmarshal(m.Payload, &p))
		require.Nil(c.t, p.Data.SubscriptionUpdated, "a refused operation pushes nothing: %s", m.Payload)
		for _, e := range p.Errors {
			errs = append(errs, struct {
				Message    string         `json:"message"`
				Extensions map[string]any `json:"extensions"`
			}{e.Message, e.Extensions})
		}
		done := c.next()
		require.Equal(c.t, "complete", done.Type, "a refused operation ends: %s", done.Payload)
		require.Equal(c.t, id, done.ID)
	default:
		c.t.Fatalf("operation %s: %s %s is not a refusal", id, m.Type, m.Payload)
	}
	for _, e := range errs {
		code, _ := e.Extensions["code"].(string)
		codes, messages = append(codes, code), append(messages, e.Message)
	}
	return codes, messages
}

const followQuery = `subscription ($id: ID) { subscriptionUpdated(id: $id) { id status payments { edges { node { status } } } } }`

// liveListens is the number of LISTEN connections the app has established.
func (a *testApp) liveListens() int {
	a.t.Helper()
	_, metrics := a.get("/metrics")
	for line := range strings.SplitSeq(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, "scoville_live_listen_connections_total "); ok {
			var n int
			_, err := fmt.Sscan(v, &n)
			require.NoError(a.t, err)
			return n
		}
	}
	return 0
}

// The owner follows their subscription through the real server: the current
// state first, then the payment of a signed invoice.paid, then PAST_DUE from a
// signed event. SUPPORT may follow it too; another customer is refused exactly as
// for an unknown id, and receives nothing of it.
func TestLiveOwnerFollowsCommittedChanges(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true, env: liveEnv})
	f := a.liveFixture("live", "live-owner")
	other := a.liveFixture("live_other", "live-stranger")

	owner := a.followAs(a.token("live-owner"), "1", f.subscriptionID)
	first := owner.push("1")
	require.Equal(t, f.subscriptionID, first.Data.SubscriptionUpdated.ID)
	require.Equal(t, "ACTIVE", first.Data.SubscriptionUpdated.Status)
	require.Empty(t, first.Data.SubscriptionUpdated.Payments.Edges)

	staff := a.followAs(a.token("live-agent", "support"), "s", f.subscriptionID)
	require.Equal(t, "ACTIVE", staff.push("s").Data.SubscriptionUpdated.Status)

	stranger := a.followAs(a.token("live-stranger"), "theirs", f.subscriptionID)
	theirsCodes, theirsMessages := stranger.refusal("theirs")
	stranger.subscribe("unknown", followQuery, map[string]any{"id": uuid.NewString()})
	unknownCodes, unknownMessages := stranger.refusal("unknown")
	require.Equal(t, []string{"NOT_FOUND"}, theirsCodes)
	require.Equal(t, unknownCodes, theirsCodes, "someone else's id is refused as an unknown one")
	require.Equal(t, unknownMessages, theirsMessages)

	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_live_paid", "invoice.paid", t0, paidInvoice(f, "in_live", t0).Object(), nil)))
	paid := owner.until("1", func(p livePush) bool { return len(p.Data.SubscriptionUpdated.Payments.Edges) > 0 })
	require.Equal(t, "SUCCEEDED", paid.Data.SubscriptionUpdated.Payments.Edges[0].Node.Status)

	pastDue := webhooktest.Subscription{ID: f.stripeSub, Customer: f.stripeCustomer, Price: f.price, Amount: f.amount,
		Currency: "usd", PeriodStart: t0, PeriodEnd: t0.AddDate(0, 1, 0), Status: "past_due"}
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_live_past_due", "customer.subscription.updated", t0.Add(time.Minute), pastDue.Object(), nil)))
	owner.until("1", func(p livePush) bool { return p.Data.SubscriptionUpdated.Status == "PAST_DUE" })
	staff.until("s", func(p livePush) bool { return p.Data.SubscriptionUpdated.Status == "PAST_DUE" })

	// The stranger's socket carried nothing of it: the next message it gets is
	// the first push of its own subscription.
	stranger.subscribe("own", followQuery, map[string]any{"id": other.subscriptionID})
	own := stranger.push("own")
	require.Equal(t, other.subscriptionID, own.Data.SubscriptionUpdated.ID)

	// Without an id: every subscription of the caller, and only theirs.
	stranger.subscribe("mine", followQuery, nil)
	require.Equal(t, other.subscriptionID, stranger.push("mine").Data.SubscriptionUpdated.ID)
}

// A staff-only field stays staff-only in every push: the customer gets FORBIDDEN
// and null for it, SUPPORT gets the value.
func TestLivePushAppliesFieldRules(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true, env: liveEnv})
	f := a.liveFixture("live_field", "live-field-owner")
	const q = `subscription ($id: ID) { subscriptionUpdated(id: $id) { id status providerSubscriptionId } }`

	owner := a.connect(a.token("live-field-owner"))
	owner.subscribe("1", q, map[string]any{"id": f.subscriptionID})
	staff := a.connect(a.token("live-field-agent", "support"))
	staff.subscribe("1", q, map[string]any{"id": f.subscriptionID})
	for _, p := range []livePush{owner.push("1"), func() livePush {
		t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
		pastDue := webhooktest.Subscription{ID: f.stripeSub, Customer: f.stripeCustomer, Price: f.price, Amount: f.amount,
			Currency: "usd", PeriodStart: t0, PeriodEnd: t0.AddDate(0, 1, 0), Status: "past_due"}
		require.Equal(t, 200, a.deliver(webhooktest.Event("evt_live_field", "customer.subscription.updated", t0, pastDue.Object(), nil)))
		return owner.until("1", func(p livePush) bool { return p.Data.SubscriptionUpdated.Status == "PAST_DUE" })
	}()} {
		require.Nil(t, p.Data.SubscriptionUpdated.ProviderSubscriptionID)
		require.Len(t, p.Errors, 1)
		require.Equal(t, "FORBIDDEN", p.Errors[0].Extensions["code"])
	}
	p := staff.push("1")
	require.NotNil(t, p.Data.SubscriptionUpdated.ProviderSubscriptionID)
	require.Equal(t, f.stripeSub, *p.Data.SubscriptionUpdated.ProviderSubscriptionID)
	require.Empty(t, p.Errors)
}

// Each bad socket is refused before any operation runs: no token, a malformed
// one, an expired one, one for another audience (4403 at connection_init), and a
// browser on an origin outside CORS_ALLOWED_ORIGINS (403 at the upgrade).
func TestLiveRefusesBeforeAnyOperation(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: liveEnv})
	a.seed()
	mint := func(c devidp.Claims) string {
		c.Subject, c.Email = "live-refused", "live-refused@example.com"
		tok, err := a.issuer.Mint(c)
		require.NoError(t, err)
		return tok
	}
	past := time.Now().Add(-time.Hour)
	for name, payload := range map[string]map[string]any{
		"no payload":      nil,
		"no token":        {},
		"not bearer":      {"Authorization": "Basic " + a.token("live-refused")},
		"malformed":       {"Authorization": "Bearer not.a.token"},
		"expired":         {"Authorization": "Bearer " + mint(devidp.Claims{IssuedAt: past, Expiry: past.Add(time.Minute)})},
		"other audience":  {"Authorization": "Bearer " + mint(devidp.Claims{Audience: []string{"another-api"}})},
		"lower-case name": {"authorization": "Bearer not.a.token"},
	} {
		t.Run(name, func(t *testing.T) {
			c, _, err := dialLive(t, wsURL(a.srv.URL), nil)
			require.NoError(t, err)
			init := map[string]any{"type": "connection_init"}
			if payload != nil {
				init["payload"] = payload
			}
			c.send(init)
			c.subscribe("1", followQuery, nil)
			require.Equal(t, websocket.StatusCode(graph.CloseForbidden), c.closed())
		})
	}

	t.Run("subscribe before connection_init", func(t *testing.T) {
		c, _, err := dialLive(t, wsURL(a.srv.URL), nil)
		require.NoError(t, err)
		c.subscribe("1", followQuery, nil)
		require.Equal(t, websocket.StatusProtocolError, c.closed())
	})
	t.Run("foreign origin", func(t *testing.T) {
		_, resp, err := dialLive(t, wsURL(a.srv.URL), http.Header{"Origin": {"https://evil.example"}})
		require.Error(t, err)
		require.NotNil(t, resp)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	t.Run("look-alike origin", func(t *testing.T) {
		_, resp, err := dialLive(t, wsURL(a.srv.URL), http.Header{"Origin": {liveOrigin + ".evil.example"}})
		require.Error(t, err)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	t.Run("allowed origin and no origin", func(t *testing.T) {
		for _, h := range []http.Header{{"Origin": {liveOrigin}}, nil} {
			c, _, err := dialLive(t, wsURL(a.srv.URL), h)
			require.NoError(t, err)
			c.send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + a.token("live-ok")}})
			require.Equal(t, "connection_ack", c.next().Type)
		}
	})
	_, metrics := a.get("/metrics")
	require.Contains(t, metrics, `scoville_live_refusals_total{reason="origin"} 2`)
	require.Contains(t, metrics, `scoville_live_refusals_total{reason="token"} 7`)
}

// A socket is closed with 4403 when its token expires, operations running.
func TestLiveTokenExpiryClosesTheSocket(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: liveEnv})
	f := a.liveFixture("live_exp", "live-exp")
	tok, err := a.issuer.Mint(devidp.Claims{Subject: "live-exp", Email: "live-exp@example.com", Expiry: time.Now().Add(5 * time.Second)})
	require.NoError(t, err)
	c := a.connect(tok)
	c.follow(f.subscriptionID)
	for {
		m, err := c.read()
		if err != nil {
			require.Equal(t, websocket.StatusCode(graph.CloseForbidden), websocket.CloseStatus(err), "%v", err)
			break
		}
		require.NotEqual(t, "connection_error", m.Type)
	}
	_, metrics := a.get("/metrics")
	require.Contains(t, metrics, `scoville_live_refusals_total{reason="token_expired"} 1`)
}

// The bounds: sockets per principal and per address, operations per principal,
// the connection_init deadline, the size of a message, and a document over the
// query limits.
func TestLiveLimits(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: map[string]string{"CORS_ALLOWED_ORIGINS": liveOrigin, "GRAPHQL_MAX_DEPTH": "5"},
		options: []app.Option{app.WithLiveLimits(app.LiveLimits{
			InitTimeout: time.Second, ReadLimit: 4096,
			MaxSocketsPerPrincipal: 2, MaxSocketsPerAddress: 5, MaxOperationsPerPrincipal: 2,
		})}})
	f := a.liveFixture("live_lim", "live-lim")
	tok := a.token("live-lim")

	one, two := a.connect(tok), a.connect(tok)
	three, _, err := dialLive(t, wsURL(a.srv.URL), nil)
	require.NoError(t, err)
	three.send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + tok}})
	require.Equal(t, websocket.StatusCode(graph.CloseTooManySockets), three.closed(), "a third socket of the principal")

	one.subscribe("a", followQuery, map[string]any{"id": f.subscriptionID})
	one.push("a")
	two.subscribe("b", followQuery, map[string]any{"id": f.subscriptionID})
	two.push("b")
	two.subscribe("c", followQuery, map[string]any{"id": f.subscriptionID})
	codes, _ := two.refusal("c")
	require.Equal(t, []string{"RATE_LIMITED"}, codes, "a third operation of the principal, on another socket")

	deep := `subscription ($id: ID) { subscriptionUpdated(id: $id) { payments { edges { node { amount { currency } } } } } }`
	one.subscribe("deep", deep, map[string]any{"id": f.subscriptionID})
	codes, _ = one.refusal("deep")
	require.Equal(t, []string{"DEPTH_LIMIT_EXCEEDED"}, codes, "the query limits apply to a subscription")

	// Sockets that never send connection_init are closed at the deadline; while
	// open they count against the address (two held above, three here).
	require.Eventually(t, func() bool { // the refused third socket has been released
		_, metrics := a.get("/metrics")
		return strings.Contains(metrics, "\nscoville_live_sockets 2\n")
	}, liveWait, 10*time.Millisecond, "a refused socket is released when it closes")
	var silent []*liveClient
	for range 3 {
		c, _, err := dialLive(t, wsURL(a.srv.URL), nil)
		require.NoError(t, err)
		silent = append(silent, c)
	}
	_, resp, err := dialLive(t, wsURL(a.srv.URL), nil)
	require.Error(t, err, "a sixth socket from one address")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	for _, c := range silent {
		require.Equal(t, websocket.StatusProtocolError, c.closed(), "no connection_init before the deadline")
	}

	big, _, err := dialLive(t, wsURL(a.srv.URL), nil)
	require.NoError(t, err)
	big.send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + tok, "pad": strings.Repeat("x", 8192)}})
	require.Equal(t, websocket.StatusMessageTooBig, big.closed())

	_, metrics := a.get("/metrics")
	require.Contains(t, metrics, `scoville_live_refusals_total{reason="sockets_per_principal"} 1`)
	require.Contains(t, metrics, `scoville_live_refusals_total{reason="sockets_per_address"} 1`)
	require.Contains(t, metrics, `scoville_live_refusals_total{reason="operations_per_principal"} 1`)
}

// A change announced in a transaction that rolls back pushes nothing: the next
// push after it is the change committed later.
func TestLiveRolledBackChangePushesNothing(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true, env: liveEnv})
	f := a.liveFixture("live_rb", "live-rb")
	g := a.liveFixture("live_rb2", "live-rb2")

	// The listener starts with the first operation; the followed operation starts
	// once it listens, so no reconnect re-push is mixed in.
	barrier := a.followAs(a.token("live-rb2"), "b", g.subscriptionID)
	barrier.push("b")
	require.Eventually(t, func() bool { return a.liveListens() == 1 }, liveWait, 10*time.Millisecond)
	c := a.connect(a.token("live-rb"))
	c.follow(f.subscriptionID)

	tx := a.db.Begin()
	require.NoError(t, tx.Exec(`UPDATE subscriptions SET status = 'CANCELED' WHERE id = ?`, f.subscriptionID).Error)
	require.NoError(t, live.Announce(tx, f.subscriptionID))
	require.NoError(t, tx.Rollback().Error)

	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	pastDue := webhooktest.Subscription{ID: f.stripeSub, Customer: f.stripeCustomer, Price: f.price, Amount: f.amount,
		Currency: "usd", PeriodStart: t0, PeriodEnd: t0.AddDate(0, 1, 0), Status: "past_due"}
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_live_rb", "customer.subscription.updated", t0, pastDue.Object(), nil)))
	require.Equal(t, "PAST_DUE", c.push("1").Data.SubscriptionUpdated.Status, "the first push after the rollback is the committed change")
}

// A lost LISTEN connection reconnects, and the change committed while it was down
// reaches the client: everyone following gets the current state.
func TestLiveReconnectPushesTheCurrentState(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: liveEnv, options: []app.Option{app.WithLiveLimits(app.LiveLimits{ReconnectDelay: 2 * time.Second})}})
	f := a.liveFixture("live_re", "live-re")
	c := a.connect(a.token("live-re"))
	c.follow(f.subscriptionID)
	require.Eventually(t, func() bool { return a.liveListens() == 1 }, liveWait, 10*time.Millisecond)

	var killed int
	require.NoError(t, a.db.Raw(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = ? AND datname = current_database()`, live.ApplicationName).Scan(&killed).Error)
	require.Equal(t, 1, killed)
	// pg_terminate_backend only signals the backend: wait until it is gone, so the
	// old connection cannot still deliver the change below.
	require.Eventually(t, func() bool {
		return a.count(`SELECT count(*) FROM pg_stat_activity WHERE application_name = '`+live.ApplicationName+`' AND datname = current_database()`) == 0
	}, liveWait, 10*time.Millisecond, "the LISTEN connection is still there")
	// Committed while the listener waits to reconnect.
	require.NoError(t, announceStatus(a.db, f.subscriptionID, "PAST_DUE"))
	c.untilStatus("PAST_DUE")
	// Normally the reconnected listener's wake brings it. On a loaded machine the
	// first listener's own wake (every follower pushed its state once LISTEN is in
	// place) can be read so late that it already carries PAST_DUE: also not lost.
	// live's TestReconnectWakesEveryFollower holds the reconnect case alone.
	require.Eventually(t, func() bool { return a.liveListens() == 2 }, liveWait, 10*time.Millisecond, "the listener reconnected")
}

// Two API processes (RUN_WORKERS=false) on one database, the event applied by a
// third (`scoville work`): a client on either server receives the push.
func TestLivePushCrossesProcesses(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t, "")
	a := newTestApp(t, appOptions{dbURL: dbURL, env: liveEnv}) // migrates, and writes the fixture sealed
	f := a.liveFixture("live_proc", "live-proc")
	env := map[string]string{
		"APP_ENV": "development", "DATABASE_URL": dbURL,
		"OIDC_ISSUER_URL": a.issuer.IssuerURL(), "OIDC_AUDIENCE": testAudience, "CORS_ALLOWED_ORIGINS": liveOrigin,
		"STRIPE_API_BASE": stripeMockURL(t), "STRIPE_SECRET_KEY": "sk_test_123",
		"STRIPE_WEBHOOK_SECRET": testWebhookSecret, "JOB_POLL_INTERVAL": "20ms",
		"DATA_ENCRYPTION_KEYS": testDataKeys(t, dbURL), "LOG_LEVEL": "warn", "RUN_WORKERS": "false",
	}
	start := func(args, addr string) {
		ctx, cancel := context.WithCancel(context.Background())
		out, err := os.CreateTemp(t.TempDir(), args)
		require.NoError(t, err)
		code := make(chan int, 1)
		procEnv := maps.Clone(env)
		if addr != "" {
			procEnv["HTTP_ADDR"] = addr
		}
		go func() { code <- scoville(t, ctx, []string{args}, procEnv, out) }()
		t.Cleanup(func() {
			cancel()
			select {
			case c := <-code:
				if c != 0 {
					log, _ := os.ReadFile(out.Name())
					t.Errorf("scoville %s exited %d; its log:\n%s", args, c, log)
				}
			case <-time.After(liveWait):
				t.Errorf("scoville %s did not stop", args)
			}
		})
	}
	var servers []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		start("serve", addr)
		servers = append(servers, "http://"+addr)
	}
	for _, s := range servers {
		require.Eventually(t, func() bool {
			resp, err := http.Get(s + "/readyz")
			if err != nil {
				return false // still starting
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, liveWait, 50*time.Millisecond)
	}
	var clients []*liveClient
	for _, s := range servers {
		c := connectTo(t, s, http.Header{"Origin": {liveOrigin}}, a.token("live-proc"))
		c.follow(f.subscriptionID)
		clients = append(clients, c)
	}
	start("work", "")

	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	pastDue := webhooktest.Subscription{ID: f.stripeSub, Customer: f.stripeCustomer, Price: f.price, Amount: f.amount,
		Currency: "usd", PeriodStart: t0, PeriodEnd: t0.AddDate(0, 1, 0), Status: "past_due"}
	body := webhooktest.Event("evt_live_proc", "customer.subscription.updated", t0, pastDue.Object(), nil)
	req, err := http.NewRequest(http.MethodPost, servers[0]+"/webhooks/stripe", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Stripe-Signature", webhooktest.Sign(body, testWebhookSecret, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, c := range clients {
		c.untilStatus("PAST_DUE")
	}
}

// A socket outlives the server's read and write deadlines (they bound requests;
// net/http clears them when the connection is hijacked): served by
// httpserver.NewServer with short deadlines, it still pushes after them.
func TestLiveSocketOutlivesTheServerDeadlines(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: liveEnv})
	f := a.liveFixture("live_dl", "live-dl")
	srv := httpserver.NewServer("", a.app.Handler(), slog.New(slog.DiscardHandler))
	srv.ReadTimeout, srv.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	c := connectTo(t, "http://"+ln.Addr().String(), nil, a.token("live-dl"))
	c.follow(f.subscriptionID)
	time.Sleep(time.Second) // past both deadlines: not a latency assertion

	require.NoError(t, announceStatus(a.db, f.subscriptionID, "PAST_DUE"))
	c.untilStatus("PAST_DUE")
}

// A subscription operation over HTTP is refused before it runs: live updates are
// served over the socket only.
func TestLiveSubscriptionOverHTTPIsRefused(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: liveEnv})
	f := a.liveFixture("live_http", "live-http")
	resp := a.gql(a.token("live-http"), followQuery, map[string]any{"id": f.subscriptionID})
	require.Equal(t, []string{"BAD_REQUEST"}, resp.codes(), resp.Raw)
	require.Nil(t, resp.Data["subscriptionUpdated"], resp.Raw)
	_, metrics := a.get("/metrics")
	require.Contains(t, metrics, "\nscoville_live_operations 0\n")
	require.Contains(t, metrics, "\nscoville_live_pushes_total 0\n")
}
