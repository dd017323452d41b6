package models

import (
	"fmt"
	"io"
	"slices"
	"strconv"
)

// enum is one schema enum bound to a Go string type: its GraphQL name and every value
// it has. It gives the types their IsValid and the input half of gqlgen's binding.
type enum[T ~string] struct {
	name   string
	values []T
}

func newEnum[T ~string](name string, values ...T) enum[T] { return enum[T]{name: name, values: values} }

// has reports whether v is one of the enum's values.
func (e enum[T]) has(v T) bool { return slices.Contains(e.values, v) }

// unmarshal stores v in dst when it is a string naming one of the enum's values.
func (e enum[T]) unmarshal(v any, dst *T) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%s must be a string", e.name)
	}
	if !e.has(T(s)) {
		return fmt.Errorf("%q is not a valid %s", s, e.name)
	}
	*dst = T(s)
	return nil
}

func marshalEnum[T ~string](w io.Writer, v T) { _, _ = io.WriteString(w, strconv.Quote(string(v))) }
