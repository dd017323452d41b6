package models

import (
	"errors"
	"io"
	"strings"
)

// UserErrorCode tells a client what kind of expected failure happened; clients branch
// on it, never on the message. Its values are in codes.go.
type UserErrorCode string

var userErrorCodes = newEnum("UserErrorCode", UserErrorInvalid, UserErrorNotFound, UserErrorInvalidState, UserErrorIdempotencyKeyReused, UserErrorPaymentDeclined, UserErrorProviderRejected)

// IsValid reports whether c is one of the codes.
func (c UserErrorCode) IsValid() bool { return userErrorCodes.has(c) }

// UnmarshalGQL binds the schema enum.
func (c *UserErrorCode) UnmarshalGQL(v any) error { return userErrorCodes.unmarshal(v, c) }

// MarshalGQL writes the enum value.
func (c UserErrorCode) MarshalGQL(w io.Writer) { marshalEnum(w, c) }

// UserError is an expected business failure. Services return it as an error; the
// resolver moves it into the payload's userErrors, so it is never a crash.
type UserError struct {
	Field   []string      `json:"field,omitempty"`
	Message string        `json:"message"`
	Code    UserErrorCode `json:"code"`
}

func (e *UserError) Error() string {
	if len(e.Field) == 0 {
		return e.Message
	}
	return strings.Join(e.Field, ".") + ": " + e.Message
}

// NewUserError builds a UserError; field is the input path, e.g. "input", "planId".
func NewUserError(code UserErrorCode, message string, field ...string) *UserError {
	return &UserError{Field: field, Message: message, Code: code}
}

// UserErrorsOf splits err: the user errors it holds (joined ones too) go to the
// payload; anything else is returned as a real error for the error presenter.
func UserErrorsOf(err error) ([]*UserError, error) {
	if err == nil {
		return []*UserError{}, nil
	}
	var out []*UserError
	var rest []error
	for _, e := range flatten(err) {
		var ue *UserError
		if errors.As(e, &ue) {
			out = append(out, ue)
		} else {
			rest = append(rest, e)
		}
	}
	return out, errors.Join(rest...)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
