package e2e

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// holdRequest starts a POST /graphql whose body is not sent yet: the server takes
// the request in and waits in the body read, so it stays in flight until the
// returned function sends the body (or the test ends). done yields the status.
func (a *testApp) holdRequest(token string) (finish func() int, done chan int) {
	a.t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+"/graphql", pr)
	require.NoError(a.t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	done = make(chan int, 1)
	a.t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) }) // never leave the server waiting
	go a.statusTo(req, done)
	return func() int {
		_, err := pw.Write([]byte(`{"query": "{ __typename }"}`))
		require.NoError(a.t, err)
		require.NoError(a.t, pw.Close())
		return <-done
	}, done
}

// upgradeHeaders make a request look like a WebSocket handshake (RFC 6455).
var upgradeHeaders = map[string]string{
	"Connection": "Upgrade", "Upgrade": "websocket",
	"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
	"Sec-WebSocket-Protocol": "graphql-transport-ws",
}

// handshakeStatus sends a WebSocket handshake to path and returns the status, closing
// whatever connection it opened.
func (a *testApp) handshakeStatus(path string, headers map[string]string) int {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.srv.URL+path, nil)
	require.NoError(a.t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := a.srv.Client().Do(req)
	require.NoError(a.t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// sendAsync posts query with token and yields the status once answered; it
// reports no failure itself (it runs outside the test's goroutine).
func (a *testApp) sendAsync(token, query string) chan int {
	done := make(chan int, 1)
	go func() {
		req, err := http.NewRequest(http.MethodPost, a.srv.URL+"/graphql", gqlBody(query, nil))
		if err != nil {
			done <- 0
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		a.statusTo(req, done)
	}()
	return done
}

// statusTo sends req and yields its status on done, 0 when it got no answer; it
// reports no failure itself (it runs outside the test's goroutine).
func (a *testApp) statusTo(req *http.Request, done chan<- int) {
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		done <- 0
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	done <- resp.StatusCode
}

// holdInFlight locks the customers table and keeps two `{ me { id } }` requests in
// flight, one with each of heldTokens, until a probe (`{ __typename }` with
// probeToken) is answered with want: a held request that arrived while a probe held
// a slot was refused, so it is sent again. It returns the probe's answer and
// release, which ends the lock and requires both held requests to succeed.
func (a *testApp) holdInFlight(heldTokens [2]string, probeToken string, want int, msg string) (res gqlResponse, release func()) {
	a.t.Helper()
	lock := a.db.Begin()
	a.t.Cleanup(func() { lock.Rollback() })
	require.NoError(a.t, lock.Exec(`LOCK TABLE customers IN ACCESS EXCLUSIVE MODE`).Error)
	held := [2]chan int{a.sendAsync(heldTokens[0], `{ me { id } }`), a.sendAsync(heldTokens[1], `{ me { id } }`)}
	require.Eventually(a.t, func() bool {
		for i, done := range held {
			select {
			case <-done:
				held[i] = a.sendAsync(heldTokens[i], `{ me { id } }`)
			default:
			}
		}
		res = a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil), token: probeToken})
		return res.Status == want
	}, 30*time.Second, 20*time.Millisecond, msg)
	return res, func() {
		a.t.Helper()
		require.NoError(a.t, lock.Rollback().Error)
		require.Equal(a.t, http.StatusOK, <-held[0])
		require.Equal(a.t, http.StatusOK, <-held[1])
	}
}

// All callers together have at most RATE_LIMIT_INFLIGHT_TOTAL requests in flight;
// one more, from a caller with room in its own share, is refused at once with 503
// and Retry-After rather than queued. A WebSocket upgrade is not counted, and a
// POST dressed as one is.
func TestRequestsInFlightAreBoundedForAllCallersTogether(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{production: true, env: map[string]string{"RATE_LIMIT_INFLIGHT_TOTAL": "2"}})
	alice, bob, carol := a.token("busy-alice"), a.token("busy-bob"), a.token("busy-carol")
	for _, tok := range []string{alice, bob} { // their customers exist: me only reads below
		require.Empty(t, a.raw(limitsRequest{body: gqlBody(`{ me { id } }`, nil), token: tok}).Errors)
	}
	// Alice's and Bob's requests stay in flight while the customers table is locked.
	res, release := a.holdInFlight([2]string{alice, bob}, carol, http.StatusServiceUnavailable, "a third request in flight is refused")
	require.Equal(t, []string{"SERVER_BUSY"}, res.codes(), res.Raw)
	requireRetryAfter(t, res, 1)
	res = a.raw(limitsRequest{method: http.MethodGet, path: "/graphql?query=%7B__typename%7D", token: carol})
	require.Equal(t, http.StatusServiceUnavailable, res.Status, "GET is the same entry: %s", res.Raw)

	// A POST carrying the upgrade headers is no upgrade: bounded like any other.
	res = a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil), token: carol, headers: upgradeHeaders})
	require.Equal(t, http.StatusServiceUnavailable, res.Status, res.Raw)
	// A WebSocket handshake passes the bound: a socket is not a request in flight
	// (its operations have their own bounds, graph.LiveConfig), and it runs no
	// operation over HTTP.
	require.Equal(t, http.StatusSwitchingProtocols, a.handshakeStatus("/graphql?query=%7B__typename%7D", upgradeHeaders))

	release()
	res = a.raw(limitsRequest{body: gqlBody(`{ __typename }`, nil), token: carol})
	require.Empty(t, res.Errors, "the slots are free again: %s", res.Raw)
}

// A request past GRAPHQL_REQUEST_TIMEOUT is answered then with 503 and
// REQUEST_TIMEOUT, and its work stops: the database query it waits in is
// canceled while the lock it waits for is still held.
func TestAGraphQLRequestPastItsDeadlineIsStopped(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{production: true, env: map[string]string{"GRAPHQL_REQUEST_TIMEOUT": "500ms"}})
	dave := a.token("deadline-dave")
	res := a.raw(limitsRequest{body: gqlBody(`{ me { id } }`, nil), token: dave})
	require.Empty(t, res.Errors, res.Raw)

	lock := a.db.Begin()
	t.Cleanup(func() { lock.Rollback() })
	require.NoError(t, lock.Exec(`LOCK TABLE customers IN ACCESS EXCLUSIVE MODE`).Error)
	res = a.raw(limitsRequest{body: gqlBody(`{ me { id } }`, nil), token: dave})
	require.Equal(t, http.StatusServiceUnavailable, res.Status, res.Raw)
	require.Equal(t, []string{"REQUEST_TIMEOUT"}, res.codes(), res.Raw)
	require.Eventually(t, func() bool {
		return a.count(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`) == 0
	}, 10*time.Second, 20*time.Millisecond, "the request's query still waits for the lock")

	// The handshake is not put under the deadline: the socket opens.
	require.Equal(t, http.StatusSwitchingProtocols, a.handshakeStatus("/graphql?query=%7B__typename%7D", upgradeHeaders))

	// A held request (its body never comes) is answered at the deadline too.
	_, done := a.holdRequest(dave)
	require.Equal(t, http.StatusServiceUnavailable, <-done)
}
