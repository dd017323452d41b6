package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/database/dbtest"
)

// TestRateLimitsHoldAcrossReplicas runs two applications on one database, as two
// API replicas behind a load balancer: a caller's mutation and payment allowances
// are the caller's, not each replica's, so alternating replicas gains nothing.
func TestRateLimitsHoldAcrossReplicas(t *testing.T) {
	t.Parallel()

	// pair is two replicas on one database trusting one issuer (a's).
	pair := func(t *testing.T, env map[string]string) (a, b *testApp) {
		dbURL := dbtest.NewURL(t, "")
		a = newTestApp(t, appOptions{dbURL: dbURL, env: env})
		env = maps.Clone(env)
		env["OIDC_ISSUER_URL"] = a.issuer.IssuerURL()
		b = newTestApp(t, appOptions{dbURL: dbURL, env: env})
		b.issuer = a.issuer
		return a, b
	}
	refused := func(t *testing.T, res gqlResponse) {
		t.Helper()
		require.Equal(t, http.StatusTooManyRequests, res.Status, res.Raw)
		require.Equal(t, []string{"RATE_LIMITED"}, res.codes(), res.Raw)
		require.Nil(t, res.Data)
	}

	t.Run("payment operations", func(t *testing.T) {
		t.Parallel()
		a, b := pair(t, map[string]string{"RATE_LIMIT_PAYMENTS_PER_MINUTE": "2"}) // burst 1
		alice, bob := a.token("shared-alice", "admin"), a.token("shared-bob", "admin")
		res := a.gql(alice, createPlanMutation, planInput("shared-1"))
		require.Empty(t, res.Errors, res.Raw)
		res = b.gql(alice, createPlanMutation, planInput("shared-2"))
		refused(t, res)
		requireRetryAfter(t, res, 30) // one token every 30 s
		require.EqualValues(t, 1, a.planRows(), "the refused mutation did nothing")
		res = b.gql(bob, createPlanMutation, planInput("shared-3"))
		require.Empty(t, res.Errors, "another caller has their own allowance: %s", res.Raw)
		_, metrics := b.get("/metrics")
		require.Contains(t, metrics, `scoville_rate_limited_total{scope="payment"} 1`)
	})

	t.Run("mutations", func(t *testing.T) {
		t.Parallel()
		a, b := pair(t, map[string]string{"RATE_LIMIT_MUTATIONS_PER_MINUTE": "4"}) // burst 2
		carol := a.token("shared-carol", "admin")
		replicas := []*testApp{a, b}
		for i := range 2 {
			res := replicas[i%2].gql(carol, createPlanMutation, planInput(fmt.Sprintf("shared-m%d", i)))
			require.Empty(t, res.Errors, res.Raw)
		}
		for i := range 2 {
			refused(t, replicas[i%2].gql(carol, createPlanMutation, planInput(fmt.Sprintf("shared-r%d", i))))
		}
		require.EqualValues(t, 2, a.planRows())
	})
}
