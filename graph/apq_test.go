package graph

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/auth"
)

// One caller registering many documents, far more than the cache holds, evicts
// only its own: a document another caller keeps using by its hash, and one a
// third caller registered, are still found. The cache never holds more than its
// size, nor one caller more than its allowance of documents nobody else used.
func TestOneCallerCannotChurnPersistedQueries(t *testing.T) {
	t.Parallel()
	const size, perCaller = 20, 4
	e := newTestEndpoint(t, HandlerConfig{APQCacheSize: size, APQPerCaller: perCaller})
	who := func(sub string) *auth.Principal {
		return &auth.Principal{Issuer: "https://idp.test", Subject: sub, Roles: []auth.Role{auth.RoleCustomer}}
	}
	storefront, shopper, other, attacker := who("storefront"), who("shopper"), who("other"), who("attacker")

	popular := `query Plans { plans { id } }`
	require.Empty(t, e.postAPQ(popular, true, storefront).Errors)
	require.Empty(t, e.postAPQ(popular, false, shopper).Errors, "another caller uses it by its hash")
	lonely := `query Lonely { plans { id name } }`
	require.Empty(t, e.postAPQ(lonely, true, other).Errors)

	for i := range 10 * size {
		q := fmt.Sprintf(`query Churn%d { plans { id } }`, i)
		require.Empty(t, e.postAPQ(q, true, attacker).Errors)
		if i%size == 0 {
			require.Empty(t, e.postAPQ(popular, false, shopper).Errors, "the shared document is kept")
		}
	}
	res := e.postAPQ(popular, false, shopper)
	require.Empty(t, res.Errors, res.Raw)
	require.Equal(t, "plan-1", res.Data["plans"].([]any)[0].(map[string]any)["id"])
	require.Empty(t, e.postAPQ(lonely, false, other).Errors, "another caller's own document is kept too")
	last := fmt.Sprintf(`query Churn%d { plans { id } }`, 10*size-1)
	require.Empty(t, e.postAPQ(last, false, attacker).Errors, "the attacker's latest are kept")
	require.Equal(t, "PERSISTED_QUERY_NOT_FOUND", e.postAPQ(`query Churn0 { plans { id } }`, false, attacker).code(),
		"the attacker's earliest were evicted by its own later ones")
}

// When the cache is full, a registration evicts a document only one caller has
// used before any document two callers use, and the cache stays within its size.
func TestPersistedQueryCacheEvictsSingleUseFirst(t *testing.T) {
	t.Parallel()
	c := newAPQCache(3, 2, 100, nil)
	as := func(sub string) context.Context {
		return auth.WithPrincipal(context.Background(), &auth.Principal{Issuer: "https://idp.test", Subject: sub})
	}
	a, b, d := as("a"), as("b"), as("d")
	c.Add(a, "shared", "{ s }")
	_, ok := c.Get(b, "shared")
	require.True(t, ok)
	c.Add(a, "a1", "{ a1 }")
	c.Add(b, "b1", "{ b1 }")
	_, _ = c.Get(a, "a1") // a1 is now more recent than shared; b1 is the oldest single-use one
	c.Add(d, "d1", "{ d1 }")
	require.Equal(t, 3, c.len())
	_, ok = c.Get(a, "b1")
	require.False(t, ok, "the oldest single-use document went first")
	_, ok = c.Get(d, "a1") // now shared by a and d
	require.True(t, ok)
	c.Add(d, "d2", "{ d2 }")
	c.Add(d, "d3", "{ d3 }")
	require.Equal(t, 3, c.len())
	for _, hash := range []string{"shared", "a1", "d3"} {
		_, ok = c.Get(a, hash)
		require.True(t, ok, "%s: shared documents outlive single-use ones", hash)
	}
	c.Add(a, "toolong", strings.Repeat("x", 101))
	_, ok = c.Get(a, "toolong")
	require.False(t, ok, "a query over maxBytes is not kept")
}
