package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/models"
)

func TestPlansArePublicAndListOnlyActivePlans(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	a.seed()
	// An inactive plan and a plan of an inactive product must not be offered.
	require.NoError(t, a.db.Model(&models.Plan{}).Where("id = ?", "4d0c6f1e-0000-4000-8000-000000000103").Update("active", false).Error)
	require.NoError(t, a.db.Model(&models.Product{}).Where("id = ?", "4d0c6f1e-0000-4000-8000-000000000003").Update("active", false).Error)

	resp := a.gql("", `{ plans { id name description interval price { amount currency } trialDays active } }`, nil)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Empty(t, resp.Errors)
	plans := resp.Data["plans"].([]any)
	var got []string
	for _, p := range plans {
		p := p.(map[string]any)
		price := p["price"].(map[string]any)
		got = append(got, p["name"].(string)+"/"+p["interval"].(string)+"/"+price["currency"].(string))
		require.Equal(t, true, p["active"])
		require.NotEmpty(t, p["description"])
	}
	require.Equal(t, []string{
		"Mild Box/MONTH/USD", "Mild Box/QUARTER/USD",
		"Hot Box/MONTH/USD", "Hot Box/QUARTER/USD", "Hot Box/YEAR/USD",
	}, got)
	require.EqualValues(t, 2500, plans[0].(map[string]any)["price"].(map[string]any)["amount"])
}

func TestSeedIsIdempotent(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	a.seed()
	a.seed()
	var plans, products int64
	require.NoError(t, a.db.Model(&models.Plan{}).Count(&plans).Error)
	require.NoError(t, a.db.Model(&models.Product{}).Count(&products).Error)
	require.EqualValues(t, 9, plans)
	require.EqualValues(t, 3, products)
}

// TestRoleMatrix runs every operation that exists against every kind of caller.
func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	a.seed()
	callers := map[string]string{
		"anonymous": "",
		"customer":  a.token("cust-1"),
		"support":   a.token("support-1", "support"),
		"admin":     a.token("admin-1", "admin"),
	}
	cases := []struct {
		name  string
		query string
		want  map[string][]string // caller -> error codes (nil: no error)
	}{
		{"plans", `{ plans { id } }`, map[string][]string{}},
		{"me", `{ me { id email name } }`, map[string][]string{"anonymous": {"UNAUTHENTICATED"}}},
		{"me.providerCustomerId", `{ me { id providerCustomerId } }`, map[string][]string{
			"anonymous": {"UNAUTHENTICATED"}, "customer": {"FORBIDDEN"},
		}},
	}
	for _, tc := range cases {
		for caller, token := range callers {
			t.Run(tc.name+"/"+caller, func(t *testing.T) {
				resp := a.gql(token, tc.query, nil)
				require.Equal(t, http.StatusOK, resp.Status)
				require.Equal(t, tc.want[caller], resp.codes(), resp.Raw)
			})
		}
	}

	t.Run("refused field is null, the rest of the object is served", func(t *testing.T) {
		resp := a.gql(callers["customer"], `{ me { email providerCustomerId } }`, nil)
		me := resp.Data["me"].(map[string]any)
		require.Equal(t, "cust-1@example.com", me["email"])
		require.Nil(t, me["providerCustomerId"])
		require.Equal(t, []any{"me", "providerCustomerId"}, resp.Errors[0].Path)
	})
	a.requireNoLeak(callers["customer"], callers["admin"], "cust-1@example.com")
}

func TestInvalidTokenIsRefusedWhole(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	expired, err := a.issuer.Mint(devidp.Claims{Subject: "x", IssuedAt: time.Now().Add(-2 * time.Hour), Expiry: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	for name, tok := range map[string]string{"expired": expired, "garbage": "not-a-jwt"} {
		t.Run(name, func(t *testing.T) {
			resp := a.gql(tok, `{ plans { id } }`, nil)
			require.Equal(t, http.StatusUnauthorized, resp.Status)
			require.Equal(t, `Bearer error="invalid_token"`, resp.Header.Get("WWW-Authenticate"))
			require.Equal(t, []string{"UNAUTHENTICATED"}, resp.codes())
			require.Nil(t, resp.Data)
		})
	}
	a.requireNoLeak(expired)
}

func TestMeIsProvisionedOnceUnderConcurrentFirstCalls(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	tok := a.token("racer")
	const n = 20
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp := a.gql(tok, `{ me { id email name } }`, nil)
			if len(resp.Errors) == 0 {
				ids[i] = resp.Data["me"].(map[string]any)["id"].(string)
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		require.NotEmpty(t, id)
		require.Equal(t, ids[0], id)
	}
	var rows int64
	require.NoError(t, a.db.Model(&models.Customer{}).Where("subject = ?", "racer").Count(&rows).Error)
	require.EqualValues(t, 1, rows)

	// The e-mail follows the token; a token without one does not blank it.
	tok2, err := a.issuer.Mint(devidp.Claims{Subject: "racer", Email: "new@example.com"})
	require.NoError(t, err)
	resp := a.gql(tok2, `{ me { id email name } }`, nil)
	require.Equal(t, "new@example.com", resp.Data["me"].(map[string]any)["email"])
	require.Equal(t, "Test racer", resp.Data["me"].(map[string]any)["name"])
	tok3, err := a.issuer.Mint(devidp.Claims{Subject: "racer"})
	require.NoError(t, err)
	resp = a.gql(tok3, `{ me { id email } }`, nil)
	require.Equal(t, "new@example.com", resp.Data["me"].(map[string]any)["email"])
	require.Equal(t, ids[0], resp.Data["me"].(map[string]any)["id"])
}

func TestSameSubjectAtAnotherIssuerIsAnotherCustomer(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t, "")
	a := newTestApp(t, appOptions{dbURL: dbURL})
	b := newTestApp(t, appOptions{dbURL: dbURL})
	idA := a.gql(a.token("same-sub"), `{ me { id } }`, nil).Data["me"].(map[string]any)["id"]
	idB := b.gql(b.token("same-sub"), `{ me { id } }`, nil).Data["me"].(map[string]any)["id"]
	require.NotEqual(t, idA, idB)
}

func TestReadyzFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	proxy, viaProxy := dbtest.NewProxy(t, dbtest.NewURL(t, ""))
	a := newTestApp(t, appOptions{dbURL: viaProxy})

	code, _ := a.get("/healthz")
	require.Equal(t, http.StatusOK, code)
	code, _ = a.get("/readyz")
	require.Equal(t, http.StatusOK, code)

	proxy.Stop()
	code, body := a.get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.NotContains(t, body, "127.0.0.1", "readiness must not describe the database")
	code, _ = a.get("/healthz")
	require.Equal(t, http.StatusOK, code, "liveness does not depend on the database")

	// A query that needs the database fails as INTERNAL without internals.
	resp := a.gql(a.token("while-down"), `{ me { id } }`, nil)
	require.Equal(t, []string{"INTERNAL"}, resp.codes())
	require.NotContains(t, resp.Raw, "dial")
	require.NotContains(t, resp.Raw, "SELECT")
	require.NotContains(t, resp.Raw, "INSERT")
	require.NotEmpty(t, resp.Errors[0].Extensions["requestId"])

	proxy.Start(t)
	require.Eventually(t, func() bool { c, _ := a.get("/readyz"); return c == http.StatusOK }, 10*time.Second, 100*time.Millisecond)
}

func TestHTTPSurface(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})

	t.Run("GET cannot run GraphQL", func(t *testing.T) {
		code, _ := a.get("/graphql?query=" + "mutation%7B__typename%7D")
		require.NotEqual(t, http.StatusOK, code)
	})
	t.Run("request id is echoed and well-formed ids are kept", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/healthz", nil)
		req.Header.Set("X-Request-Id", "client-chosen-id-1")
		resp, err := a.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "client-chosen-id-1", resp.Header.Get("X-Request-Id"))
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	})
	t.Run("oversized body is refused", func(t *testing.T) {
		body := `{"query":"{ plans { id } }","variables":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`
		resp, err := a.srv.Client().Post(a.srv.URL+"/graphql", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	})
	t.Run("playground and introspection in development", func(t *testing.T) {
		code, body := a.get("/playground")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "/graphql")
		resp := a.gql("", `{ __schema { queryType { name } } }`, nil)
		require.Empty(t, resp.Errors)
	})
	t.Run("metrics", func(t *testing.T) {
		code, body := a.get("/metrics")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "scoville_http_requests_total")
	})
}

func TestProductionIsSafeByDefault(t *testing.T) {
	t.Parallel()
	// Config validation of production is tested in config and below; here the wiring:
	// the test issuer is plain http on loopback, which production config refuses.
	a := newTestApp(t, appOptions{production: true})
	code, _ := a.get("/playground")
	require.Equal(t, http.StatusOK, code, "the admin Playground is served in production, under its own policy (playground package)")
	resp := a.gql("", `{ __schema { queryType { name } } }`, nil)
	require.NotEmpty(t, resp.Errors, "introspection is off in production")
	code, body := a.get("/metrics")
	require.Equal(t, http.StatusNotFound, code, "production serves /metrics only on METRICS_ADDR, never on the public listener")
	require.NotContains(t, body, "scoville_")
}

func TestCommandsRefuseUnsafeUse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		want   int
		output []string
	}{
		{"production without required variables", []string{"serve"}, map[string]string{
			"APP_ENV": "production", "DATABASE_URL": "postgres://u:hunter2canary@db/x", "STRIPE_SECRET_KEY": "sk_live_canary",
		}, 2, []string{"OIDC_ISSUER_URL", "OIDC_AUDIENCE", "STRIPE_WEBHOOK_SECRET", "SMTP_URL", "DATA_ENCRYPTION_KEYS"}},
		{"seed in production", []string{"seed"}, map[string]string{
			"APP_ENV": "production", "DATABASE_URL": "postgres://u:hunter2canary@127.0.0.1:1/x", "OIDC_ISSUER_URL": "https://id.example.com",
			"OIDC_AUDIENCE": "api", "STRIPE_SECRET_KEY": "sk_live_canary", "STRIPE_WEBHOOK_SECRET": "whsec_canary",
			"SMTP_URL": "smtp://mailer:canarypw@mail.example.com:587", "DATA_ENCRYPTION_KEYS": freshDataKeys(t),
		}, 1, []string{"refused"}},
		{"development issuer in production", []string{"devidp"}, map[string]string{"APP_ENV": "production"}, 2, []string{"refused"}},
		{"development issuer with a relative redirect URI", []string{"devidp"}, map[string]string{
			"DEVIDP_ADDR": "127.0.0.1:0", "DEVIDP_REDIRECT_URIS": "http://127.0.0.1:8080/playground, /playground",
		}, 2, []string{"DEVIDP_REDIRECT_URIS"}},
		{"unknown command", []string{"frobnicate"}, map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/x"}, 2, []string{"unknown command"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := captureStderr(t, func(f *os.File) int {
				return scoville(t, context.Background(), tc.args, tc.env, f)
			}, tc.want)
			for _, s := range tc.output {
				require.Contains(t, out, s)
			}
			require.NotContains(t, out, "hunter2canary")
			require.NotContains(t, out, "sk_live_canary")
			require.NotContains(t, out, "whsec_canary")
			require.NotContains(t, out, "canarypw")
		})
	}
}

func captureStderr(t *testing.T, fn func(*os.File) int, wantCode int) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, wantCode, fn(f))
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	return string(bytes.TrimSpace(b))
}

func TestSigningKeyRotatedAtTheIssuerIsAcceptedWithoutRestart(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	require.Empty(t, a.gql(a.token("before-rotation"), `{ me { id } }`, nil).Errors)
	_, err := a.issuer.RotateKey()
	require.NoError(t, err)
	resp := a.gql(a.token("after-rotation"), `{ me { id } }`, nil)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Empty(t, resp.Errors)
}
