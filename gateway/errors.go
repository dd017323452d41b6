package gateway

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors the service layer maps to API codes. Test with errors.Is.
var (
	// ErrProviderUnavailable means Stripe could not be reached, timed out or kept
	// answering 5xx/429 until the retry budget ran out. Nothing is known to have
	// happened; retry the same operation with the same idempotency key
	// (PROVIDER_UNAVAILABLE).
	ErrProviderUnavailable = errors.New("payment provider unavailable: retry later with the same idempotency key")

	// ErrNotFound means Stripe does not know the object (error code
	// resource_missing); the error is also a *ProviderError whose Param names the
	// missing reference when Stripe gives one.
	ErrNotFound = errors.New("payment provider object not found")

	// ErrPromotionCodeNotFound means no active promotion code has that code; the
	// caller shows it as an invalid code, whatever the reason (unknown, expired,
	// deactivated).
	ErrPromotionCodeNotFound = errors.New("promotion code not found or not active")

	// ErrInvalidIdempotencyKey means the key is empty or longer than Stripe's 255
	// characters; nothing was sent. It is a bug in the caller's key derivation.
	ErrInvalidIdempotencyKey = errors.New("idempotency key must be 1 to 255 printable characters")

	// ErrInvalidInput means an argument was refused before anything was sent (an
	// empty id, a bad currency or interval). The wrapping message names the field.
	ErrInvalidInput = errors.New("invalid gateway input")

	// ErrInvalidObject means JSON given to a FromJSON function is not a Stripe
	// object of the expected type: malformed, another object, or without an id.
	// The same bytes always fail, so retrying is pointless. The wrapping message
	// says what is wrong without quoting the payload.
	ErrInvalidObject = errors.New("not the expected Stripe object")
)

// ProviderError is Stripe's refusal of a request (a 4xx answer other than 429): the
// request reached Stripe and was not carried out, and retrying it unchanged gives
// the same answer. Fields are Stripe's, see https://stripe.com/docs/error-codes.
type ProviderError struct {
	HTTPStatus  int
	Type        string // card_error, invalid_request_error, idempotency_error, ...
	Code        string // e.g. card_declined, resource_missing, parameter_invalid_integer
	DeclineCode string // for card errors, e.g. insufficient_funds
	Param       string // the request parameter at fault, when Stripe names one
	// Message is Stripe's human-readable text. It can echo submitted values
	// (an e-mail address, for one), so it is left out of Error() and of logs.
	Message   string
	RequestID string // Stripe's Request-Id, for support tickets
}

// Error gives status, type and codes, never Message: error strings end up in logs.
func (e *ProviderError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stripe refused the request: HTTP %d", e.HTTPStatus)
	for _, kv := range [][2]string{{"type", e.Type}, {"code", e.Code}, {"decline_code", e.DeclineCode}, {"param", e.Param}, {"request_id", e.RequestID}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) true for Stripe's resource_missing.
func (e *ProviderError) Is(target error) bool {
	return target == ErrNotFound && (e.Code == "resource_missing" || (e.HTTPStatus == 404 && e.Code == ""))
}

// IsCardDeclined reports whether err is a card refusal (Stripe type card_error):
// the customer must use another payment method; retrying will not help.
func IsCardDeclined(err error) bool {
	var pe *ProviderError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Type == "card_error" || pe.Code == "card_declined"
}

// unavailableError is ErrProviderUnavailable with the last cause attached. It never
// unwraps to a *ProviderError, so errors.As(err, *ProviderError) stays a reliable
// "Stripe refused" test.
type unavailableError struct {
	attempts int
	cause    error // redacted transport/context error, or nil
	detail   string
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("%s (after %d attempt(s): %s)", ErrProviderUnavailable.Error(), e.attempts, e.detail)
}

func (e *unavailableError) Is(target error) bool { return target == ErrProviderUnavailable }

func (e *unavailableError) Unwrap() error { return e.cause }

// redactedError keeps a cause for errors.Is/As while presenting a message scrubbed
// of the secret key.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }
