// Package requestscope holds the values the HTTP middleware gives one request (its
// id, client address, principal, limits, loaders) in one context node made once,
// instead of one context and one copy of the request per value.
//
// Each value is read and written through a Slot that its owning package keeps
// unexported: a Slot is the context key of its value, so only that package can put
// the value in a context (by Set or by context.WithValue with the slot), and reading
// it is ctx.Value(slot) whether it was set in the scope or in a context of its own.
package requestscope

import (
	"context"
	"net/http"
	"sync/atomic"
)

// maxSlots bounds the slots of the program; NewSlot panics past it.
const maxSlots = 8

// Slot names one request-scoped value and is its context key. The zero Slot names
// nothing: a Slot comes from NewSlot only.
type Slot struct{ i int32 }

var slots atomic.Int32

// NewSlot makes a slot; call it once per kind of value, at package initialization,
// and keep it unexported.
func NewSlot() Slot {
	i := slots.Add(1)
	if i >= maxSlots {
		panic("requestscope: too many slots")
	}
	return Slot{i}
}

// scope is the context node holding the values. Its values are set on the request's
// goroutine before the next handler runs (Set), so every goroutine the handler
// starts sees them.
type scope struct {
	context.Context
	set  [maxSlots]bool
	vals [maxSlots]any
}

type scopeKey struct{}

// Value answers a slot's key from the scope when set there, else from the parent.
func (s *scope) Value(key any) any {
	switch k := key.(type) {
	case Slot:
		if k.i > 0 && s.set[k.i] {
			return s.vals[k.i]
		}
	case scopeKey:
		return s
	}
	return s.Context.Value(key)
}

// Middleware gives each request a scope; the middleware below it Set their values
// there. It adds one context and one copy of the request, whatever the number of
// values.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(&scope{Context: r.Context()}))
	})
}

// Set returns r with v as the value of slot: set in r's scope when r has one and
// nothing in r's context holds slot yet (then r itself is returned, no copy), else
// in a context of its own (a copy of r, as context.WithValue would). Either way,
// r.Context().Value(slot) is v from then on.
func Set(r *http.Request, slot Slot, v any) *http.Request {
	ctx := r.Context()
	if s, ok := ctx.Value(scopeKey{}).(*scope); ok && slot.i > 0 && ctx.Value(slot) == nil {
		s.set[slot.i], s.vals[slot.i] = true, v
		return r
	}
	return r.WithContext(context.WithValue(ctx, slot, v))
}
