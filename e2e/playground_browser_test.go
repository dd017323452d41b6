package e2e

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/playground"
)

// chromiumPath finds Debian's chromium; the browser test fails without it, saying
// how to install it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the Playground browser test needs headless Chromium: install Debian's chromium package " +
		"(apt-get install -y chromium; .ci/run does) or set CHROMIUM_PATH")
	return ""
}

// browserRecord collects what the page did that the test asserts on afterwards.
type browserRecord struct {
	mu         sync.Mutex
	requests   []string
	exceptions []string
}

func (r *browserRecord) listen(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		r.requests = append(r.requests, e.Request.URL)
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		r.exceptions = append(r.exceptions, msg)
	}
}

// cspRecorder runs before the page's own scripts (the DevTools protocol injects it,
// outside the page's policy) and keeps every Content-Security-Policy violation.
const cspRecorder = `window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});`

// TestPlaygroundInBrowser loads the production Playground in headless Chromium that
// can reach nothing but loopback, checks that GraphiQL renders under the page's
// policy, refuses an admin query without sign-in, signs the admin in through the
// development issuer (authorization code + PKCE), and runs the query again, now
// answered because the request carries the admin's token.
func TestPlaygroundInBrowser(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	a := newTestApp(t, appOptions{
		production: true,
		env:        map[string]string{"PLAYGROUND_OIDC_CLIENT_ID": devidp.PlaygroundClientID},
	})
	require.NoError(t, a.issuer.RegisterClient(devidp.PlaygroundClientID, a.srv.URL+"/playground"))

	// Through the whole server (security headers included), the page keeps its policy.
	resp, err := a.srv.Client().Get(a.srv.URL + "/playground")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, playground.ContentSecurityPolicy(a.issuer.IssuerURL()), resp.Header.Get("Content-Security-Policy"))
	require.Equal(t, playground.PageCacheControl, resp.Header.Get("Cache-Control"))
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		// Nothing but loopback: every host name resolves to nothing, and whatever
		// still tries the network goes to a proxy that is not there.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.ProxyServer("http://127.0.0.1:9"),
		chromedp.Flag("proxy-bypass-list", "127.0.0.1"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
	)...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)

	rec := &browserRecord{}
	require.NoError(t, chromedp.Listen(ctx, rec.listen))
	_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorder})
	require.NoError(t, err)

	// Every wait below is bounded, so a broken page fails instead of hanging.
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		require.NoError(t, chromedp.Do(sctx, actions...), name)
	}
	// poll evaluates expr until it gives a non-empty string; it survives the
	// navigations of the sign-in, during which evaluation fails.
	poll := func(name, expr string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
			if err == nil && v != "" {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still not there after 30s (last error: %v)", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// runQuery types q into GraphiQL's query editor, runs it and returns the text
	// of the response editor once it mentions want.
	runQuery := func(q, want string) string {
		t.Helper()
		step("set the query", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](
				`(function(q){ var cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;`+
					` cm.setValue(q); document.querySelector('.graphiql-response .CodeMirror').CodeMirror.setValue(''); })(`+
					jsString(q)+`)`))
			if err == nil {
				// GraphiQL reads the edited document (and its operation name) after a
				// debounce of its editor's change handler; click once it has.
				time.Sleep(500 * time.Millisecond)
			}
			return err
		}), chromedp.Click(chromedp.CSS(".graphiql-execute-button")))
		return poll("response mentioning "+want,
			`(function(){ var v = document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue();`+
				` return v.indexOf(`+jsString(want)+`) >= 0 ? v : ''; })()`)
	}

	// The IDE renders: GraphiQL's container and its query editor.
	step("load the playground",
		chromedp.Navigate(a.srv.URL+"/playground"),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-container")),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-query-editor .CodeMirror")),
		chromedp.WaitVisible(chromedp.CSS("#playground-sign-in")),
	)
	// A new tab opens on Scoville's sample operations with the documentation
	// explorer showing, not on GraphiQL's generic welcome text.
	opened, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()`))
	require.NoError(t, err)
	require.Contains(t, opened, "query Start {")
	require.Contains(t, opened, "plans { id name interval price { amount currency } trialDays }")
	require.NotContains(t, opened, "Welcome to GraphiQL")
	poll("documentation explorer open", `(function(){ return document.querySelector('.graphiql-doc-explorer') ? 'yes' : ''; })()`)

	const adminQuery = `{ auditLog(first: 1) { edges { cursor } } }`
	anonymous := runQuery(adminQuery, `"errors"`)
	require.Contains(t, anonymous, "UNAUTHENTICATED", "without sign-in the admin query is refused")

	// Sign in: the development issuer's page, then back with a code that the page
	// exchanges (with its PKCE verifier) for the admin's token.
	step("sign in at the issuer",
		chromedp.Click(chromedp.CSS("#playground-sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#user-admin")),
		chromedp.Click(chromedp.CSS("#user-admin")),
	)
	status := poll("signed in", `(function(){ var s = document.getElementById('playground-status');`+
		` return s && s.textContent.indexOf('Signed in as') === 0 ? s.textContent : ''; })()`)
	require.Equal(t, "Signed in as Demo Admin (admin).", status)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, a.srv.URL+"/playground", loc, "the code and state are gone from the address bar")
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`sessionStorage.getItem('scoville.playground.token') !== null && sessionStorage.getItem('scoville.playground.pending') === null`))
	require.NoError(t, err)
	require.True(t, stored, "the token is kept in sessionStorage; the PKCE verifier is dropped")
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	require.NoError(t, err)
	require.Empty(t, cookies, "no cookie holds the token")

	admin := runQuery(adminQuery, `"auditLog"`)
	require.NotContains(t, admin, `"errors"`, "the admin's bearer token reaches the API")
	require.Contains(t, admin, `"edges"`)

	// Introspection is open to the admin in production: the documentation explorer,
	// open from the start, lists the schema's root types once the admin's token
	// fetched the schema.
	poll("schema loaded", `(function(){ var d = document.querySelector('.graphiql-doc-explorer');`+
		` return d && d.textContent.indexOf('Root Types') >= 0 ? 'yes' : ''; })()`)

	step("sign out", chromedp.Click(chromedp.CSS("#playground-sign-out")))
	poll("signed out", `(function(){ return document.getElementById('playground-status').textContent.indexOf('Signed out') === 0`+
		` && sessionStorage.getItem('scoville.playground.token') === null ? 'yes' : ''; })()`)

	violations, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__cspViolations`))
	require.NoError(t, err)
	require.Empty(t, violations, "nothing on the page breaks its Content-Security-Policy")

	rec.mu.Lock()
	requests, exceptions := append([]string(nil), rec.requests...), append([]string(nil), rec.exceptions...)
	rec.mu.Unlock()
	require.Empty(t, exceptions, "no uncaught exception in the page")
	require.NotEmpty(t, requests)
	sawIssuer := false
	for _, raw := range requests {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		if u.Scheme == "data" {
			continue
		}
		host := u.Hostname()
		ip := net.ParseIP(host)
		require.True(t, ip != nil && ip.IsLoopback(), "the page asked for %s, beyond loopback", raw)
		if strings.HasPrefix(raw, a.issuer.IssuerURL()) {
			sawIssuer = true
		}
	}
	require.True(t, sawIssuer, "the sign-in went through the issuer")
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "<", `\x3c`)
	return "'" + r.Replace(s) + "'"
}
