package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/graph"
)

// lookalikes are spellings of id that uuid.Validate accepts: the URN form, the
// braced form, upper case and the form without hyphens.
func lookalikes(id string) []string {
	return []string{"urn:uuid:" + id, "{" + id + "}", strings.ToUpper(id), strings.ReplaceAll(id, "-", "")}
}

// A stranger following someone else's subscription by any spelling of its id is
// refused exactly as for an unknown id (NOT_FOUND), never INTERNAL, over the socket
// and over the subscription query alike.
func TestLiveLookalikeIdsRefusedLikeUnknown(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true, env: liveEnv})
	f := a.fixture("price_live_look", "cus_live_look", "sub_live_look")
	a.issuerSubject(f.customerID, "look-owner")
	other := a.fixture("price_live_look_other", "cus_live_look_other", "sub_live_look_other")
	a.issuerSubject(other.customerID, "look-stranger")
	stranger := a.token("look-stranger")

	c := a.connect(stranger)
	c.subscribe("unknown", followQuery, map[string]any{"id": uuid.NewString()})
	unknownCodes, unknownMessages := c.refusal("unknown")
	require.Equal(t, []string{"NOT_FOUND"}, unknownCodes)
	for i, id := range lookalikes(f.subscriptionID) {
		op := "look-" + string(rune('a'+i))
		c.subscribe(op, followQuery, map[string]any{"id": id})
		codes, messages := c.refusal(op)
		require.Equal(t, unknownCodes, codes, id)
		require.Equal(t, unknownMessages, messages, id)

		resp := a.gql(stranger, `query($id: ID!) { subscription(id: $id) { id } }`, map[string]any{"id": id})
		require.Empty(t, resp.Errors, "%s: %s", id, resp.Raw)
		require.Nil(t, resp.Data["subscription"], id)
	}
}

// Every webhook operation given an id in a spelling PostgreSQL does not take
// (the URN form, which uuid.Validate accepts) answers NOT_FOUND, never INTERNAL.
func TestWebhookOperationsLookalikeIdsNotFound(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t)
	s := newHookShop(t, r)
	admin, support := s.token("look-admin", "admin"), s.token("look-support", "support")
	resp, created := s.createEndpoint(admin, r.srv.URL, "look-create", "*")
	require.Empty(t, resp.Errors, resp.Raw)
	id := "urn:uuid:" + created["endpoint"].(map[string]any)["id"].(string)

	resp, out := s.mutate(admin, "updateWebhookEndpoint", "UpdateWebhookEndpointInput",
		map[string]any{"endpointId": id, "enabled": false, "reason": "r", "idempotencyKey": "look-u"}, "endpoint { id }")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, []string{"NOT_FOUND"}, userErrorCodes(out))
	resp, out = s.mutate(admin, "rotateWebhookEndpointSecret", "RotateWebhookEndpointSecretInput",
		map[string]any{"endpointId": id, "reason": "r", "idempotencyKey": "look-r"}, "secret")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, []string{"NOT_FOUND"}, userErrorCodes(out))
	require.Nil(t, out["secret"])
	resp, out = s.mutate(support, "redeliverWebhook", "RedeliverWebhookInput",
		map[string]any{"deliveryId": "urn:uuid:" + uuid.NewString(), "reason": "r"}, "delivery { id }")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, []string{"NOT_FOUND"}, userErrorCodes(out))
	resp = s.gql(support, `query($id: ID) { webhookDeliveries(endpointId: $id) { edges { node { id } } } }`, map[string]any{"id": id})
	require.Empty(t, resp.Errors, resp.Raw)
}

// An operation id is the client's handle on the operation: a subscribe under the
// id of a running operation closes the socket (4409, graphql-transport-ws) instead
// of starting a second operation that a complete could no longer stop. An id the
// server ended, or the client completed, may be used again.
func TestLiveOperationIDInUseClosesTheSocket(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{jobs: true, env: liveEnv})
	f := a.fixture("price_live_dup", "cus_live_dup", "sub_live_dup")
	a.issuerSubject(f.customerID, "dup-owner")
	c := a.connect(a.token("dup-owner"))

	c.subscribe("gone", followQuery, map[string]any{"id": uuid.NewString()})
	codes, _ := c.refusal("gone")
	require.Equal(t, []string{"NOT_FOUND"}, codes)
	c.subscribe("gone", followQuery, map[string]any{"id": uuid.NewString()})
	codes, _ = c.refusal("gone")
	require.Equal(t, []string{"NOT_FOUND"}, codes, "an id the server ended is free again")

	c.subscribe("1", followQuery, map[string]any{"id": f.subscriptionID})
	require.Equal(t, f.subscriptionID, c.push("1").Data.SubscriptionUpdated.ID)
	c.send(map[string]any{"type": "complete", "id": "1"})
	c.subscribe("1", followQuery, map[string]any{"id": f.subscriptionID})
	m := c.next()
	for m.Type == "complete" { // the completed operation's end (gqlgen sends it)
		m = c.next()
	}
	require.Equal(t, "next", m.Type, "an id the client completed is free again: %s", m.Payload)
	require.Equal(t, "1", m.ID)

	c.subscribe("1", followQuery, map[string]any{"id": f.subscriptionID})
	require.EqualValues(t, graph.CloseSubscriberExists, c.closedSkipping("1"))
}

// closedSkipping reads until the server closes the socket, skipping the messages of
// operation id (which was running), and returns the close code.
func (c *liveClient) closedSkipping(id string) websocket.StatusCode {
	c.t.Helper()
	return c.closedAfter(func(m liveMessage) {
		require.Equal(c.t, id, m.ID, "%s: %s", m.Type, m.Payload)
		require.NotEqual(c.t, "next", m.Type, "no second operation may run under id %s: %s", id, m.Payload)
	})
}

// A request that asks for an upgrade other than a WebSocket GET (a POST with
// Upgrade: h2c) takes the socket route, and is refused there in the API's error
// format, running nothing.
func TestLiveRefusesAnUpgradeThatIsNoWebSocket(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: liveEnv})
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+"/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "h2c")
	req.Header.Set("Sec-WebSocket-Protocol", graph.LiveSubprotocol)
	resp, err := a.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", b)
	var body gqlResponse
	require.NoError(t, json.Unmarshal(b, &body), "%s", b)
	require.Equal(t, []string{"BAD_REQUEST"}, body.codes(), "%s", b)
	require.NotContains(t, string(b), "__typename")
}

// Origins that look like the allowed one are refused at the upgrade: the null
// origin, other case, a trailing dot, an explicit port, a prefix or a user part.
func TestLiveRefusesLookalikeOrigins(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: liveEnv})
	for _, origin := range []string{"null", strings.ToUpper(liveOrigin), liveOrigin + ".", liveOrigin + ":8443",
		"http://shop.example", "https://evil.shop.example", "https://shop.example@evil.example", liveOrigin + "/"} {
		_, resp, err := dialLive(t, wsURL(a.srv.URL), http.Header{"Origin": {origin}})
		require.Error(t, err, origin)
		require.NotNil(t, resp, origin)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, origin)
	}
}
