package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadRateAndCostLimits(t *testing.T) {
	t.Parallel()
	c, err := Load(devEnv().get)
	require.NoError(t, err)
	require.Equal(t, 1200, c.RateLimitAddress)
	require.Equal(t, 300, c.RateLimitQueries)
	require.Equal(t, 60, c.RateLimitMutations)
	require.Equal(t, 10, c.RateLimitPayments)
	require.Equal(t, 60000, c.RateLimitWebhooks)
	require.Equal(t, 5, c.RateLimitExports)
	require.Equal(t, 5000, c.GraphQLMaxComplexity)
	require.Equal(t, 15, c.GraphQLMaxDepth)
	require.Equal(t, 8, c.RateLimitInFlightCaller)
	require.Equal(t, 32, c.RateLimitInFlightAddress)
	require.Equal(t, 256, c.RateLimitInFlightTotal)
	require.Equal(t, 15*time.Second, c.GraphQLRequestTimeout)
	require.Equal(t, 90*24*time.Hour, c.IdempotencyTombstoneRetention)
	c, err = Load(devEnv().with(env{"RATE_LIMIT_INFLIGHT_TOTAL": "1", "GRAPHQL_REQUEST_TIMEOUT": "25s"}).get)
	require.NoError(t, err)
	require.Equal(t, 1, c.RateLimitInFlightTotal)
	require.Equal(t, 25*time.Second, c.GraphQLRequestTimeout)
	c, err = Load(devEnv().with(env{"IDEMPOTENCY_TOMBSTONE_RETENTION": "168h"}).get)
	require.NoError(t, err)
	require.Equal(t, 7*24*time.Hour, c.IdempotencyTombstoneRetention)

	c, err = Load(devEnv().with(env{
		"RATE_LIMIT_ADDRESS_PER_MINUTE": "50", "RATE_LIMIT_QUERIES_PER_MINUTE": "40",
		"RATE_LIMIT_MUTATIONS_PER_MINUTE": "30", "RATE_LIMIT_PAYMENTS_PER_MINUTE": "2",
		"RATE_LIMIT_WEBHOOKS_PER_MINUTE": "1000000", "GRAPHQL_MAX_COMPLEXITY": "5000", "GRAPHQL_MAX_DEPTH": "20",
	}).get)
	require.NoError(t, err)
	require.Equal(t, []int{50, 40, 30, 2, 1000000, 5000, 20}, []int{c.RateLimitAddress, c.RateLimitQueries,
		c.RateLimitMutations, c.RateLimitPayments, c.RateLimitWebhooks, c.GraphQLMaxComplexity, c.GraphQLMaxDepth})
	c, err = Load(devEnv().with(env{"RATE_LIMIT_EXPORTS_PER_MINUTE": "2"}).get)
	require.NoError(t, err)
	require.Equal(t, 2, c.RateLimitExports)
	c, err = Load(devEnv().with(env{"RATE_LIMIT_INFLIGHT_PER_CALLER": "1", "RATE_LIMIT_INFLIGHT_PER_ADDRESS": "100000"}).get)
	require.NoError(t, err)
	require.Equal(t, []int{1, 100000}, []int{c.RateLimitInFlightCaller, c.RateLimitInFlightAddress})

	for name, bad := range map[string][]string{
		"RATE_LIMIT_ADDRESS_PER_MINUTE":   {"0", "-1", "1000001", "ten", "1.5"},
		"RATE_LIMIT_QUERIES_PER_MINUTE":   {"0", "x"},
		"RATE_LIMIT_MUTATIONS_PER_MINUTE": {"0", "x"},
		"RATE_LIMIT_PAYMENTS_PER_MINUTE":  {"0", "x"},
		"RATE_LIMIT_WEBHOOKS_PER_MINUTE":  {"0", "x"},
		"RATE_LIMIT_EXPORTS_PER_MINUTE":   {"0", "1000001", "x"},
		"GRAPHQL_MAX_COMPLEXITY":          {"9", "1000001", "x"},
		"GRAPHQL_MAX_DEPTH":               {"1", "101", "x"},
		"RATE_LIMIT_INFLIGHT_PER_CALLER":  {"0", "10001", "x"},
		"RATE_LIMIT_INFLIGHT_PER_ADDRESS": {"0", "100001", "x"},
		"RATE_LIMIT_INFLIGHT_TOTAL":       {"0", "100001", "x"},
		"GRAPHQL_REQUEST_TIMEOUT":         {"0", "-1s", "26s", "15"},
		"IDEMPOTENCY_TOMBSTONE_RETENTION": {"0", "24h", "167h", "87601h", "90d"},
	} {
		for _, v := range bad {
			_, err := Load(devEnv().with(env{name: v}).get)
			got := problems(t, err)
			require.Len(t, got, 1, "%s=%q: %v", name, v, got)
			require.Contains(t, got[0], name)
		}
	}
}
