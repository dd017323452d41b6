package models

import (
	"fmt"
	"io"
	"strconv"
)

// unmarshalEnum is the shared half of gqlgen's enum binding for our string enums.
func unmarshalEnum[T ~string](v any, dst *T, valid func(T) bool, typeName string) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%s must be a string", typeName)
	}
	if !valid(T(s)) {
		return fmt.Errorf("%q is not a valid %s", s, typeName)
	}
	*dst = T(s)
	return nil
}

func marshalEnum[T ~string](w io.Writer, v T) { _, _ = io.WriteString(w, strconv.Quote(string(v))) }
