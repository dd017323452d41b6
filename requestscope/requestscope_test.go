package requestscope_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/requestscope"
)

var (
	first  = requestscope.NewSlot()
	second = requestscope.NewSlot()
)

// inScope runs fn on a request inside the middleware's scope.
func inScope(t *testing.T, fn func(r *http.Request)) {
	t.Helper()
	ran := false
	requestscope.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ran = true
		fn(r)
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	require.True(t, ran)
}

// TestSetInAScopeAddsNoCopy: within the middleware's scope, a value is set without
// a new request, and each slot reads its own value.
func TestSetInAScopeAddsNoCopy(t *testing.T) {
	t.Parallel()
	inScope(t, func(r *http.Request) {
		r1 := requestscope.Set(r, first, "one")
		require.Same(t, r, r1)
		r2 := requestscope.Set(r1, second, 2)
		require.Same(t, r, r2)
		require.Equal(t, "one", r2.Context().Value(first))
		require.Equal(t, 2, r2.Context().Value(second))
	})
}

// TestSetOutsideAScopeIsWithValue: without the middleware, Set is
// context.WithValue on a copy of the request; the original is untouched.
func TestSetOutsideAScopeIsWithValue(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r1 := requestscope.Set(r, first, "one")
	require.NotSame(t, r, r1)
	require.Equal(t, "one", r1.Context().Value(first))
	require.Nil(t, r.Context().Value(first))
}

// TestTheInnermostValueWins: a value already visible for the slot (set by
// context.WithValue below the scope, or set before) is never overwritten in the
// scope: the new value goes in a context of its own, and contexts made before it
// keep reading what they read.
func TestTheInnermostValueWins(t *testing.T) {
	t.Parallel()
	inScope(t, func(r *http.Request) {
		inner := r.WithContext(context.WithValue(r.Context(), first, "inner"))
		r1 := requestscope.Set(inner, first, "set")
		require.NotSame(t, inner, r1)
		require.Equal(t, "set", r1.Context().Value(first))
		require.Equal(t, "inner", inner.Context().Value(first))
		require.Nil(t, r.Context().Value(first), "the scope was written under a value it cannot shadow")

		a := requestscope.Set(r, second, "a")
		b := requestscope.Set(a, second, "b")
		require.Equal(t, "a", a.Context().Value(second))
		require.Equal(t, "b", b.Context().Value(second))
	})
}

// TestTheZeroSlotNamesNothing: a Slot not made by NewSlot (the only one another
// package can write) reads nothing set under a real slot and sets nothing in the
// scope.
func TestTheZeroSlotNamesNothing(t *testing.T) {
	t.Parallel()
	inScope(t, func(r *http.Request) {
		r = requestscope.Set(r, first, "one")
		require.Nil(t, r.Context().Value(requestscope.Slot{}))
		r1 := requestscope.Set(r, requestscope.Slot{}, "forged")
		require.NotSame(t, r, r1, "the zero slot was written in the scope")
		require.Equal(t, "one", r1.Context().Value(first))
	})
}

// TestContextsBelowTheScopeStillCancel: a cancelable context made on the scope is
// canceled with the request's, as on any context.
func TestContextsBelowTheScopeStillCancel(t *testing.T) {
	t.Parallel()
	parent, cancelParent := context.WithCancel(context.Background())
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(parent)
	requestscope.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		cancelParent()
		<-ctx.Done()
		require.ErrorIs(t, ctx.Err(), context.Canceled)
	})).ServeHTTP(httptest.NewRecorder(), r)
}
