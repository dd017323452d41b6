package auth

import (
	"errors"
)

// ErrInvalidToken is wrapped by every error Verify returns: the request carried an
// access token that must not be trusted. Callers compare with errors.Is and read the
// machine reason with FailureReason.
var ErrInvalidToken = errors.New("invalid access token")

// Failure reasons returned by FailureReason. They are short, stable and low
// cardinality, so callers may use them as metric label values.
const (
	ReasonMalformed      = "malformed"                // not a compact JWS, or claims that are not valid JSON/types
	ReasonTooLarge       = "too_large"                // longer than MaxTokenBytes
	ReasonAlgorithm      = "algorithm"                // alg outside the asymmetric allow-list (none, HS256, ...)
	ReasonBadSignature   = "bad_signature"            // no published key verifies the signature
	ReasonIssuer         = "issuer"                   // iss is not the configured issuer
	ReasonAudience       = "audience"                 // aud does not contain the configured audience
	ReasonExpired        = "expired"                  // exp is in the past
	ReasonMissingExp     = "missing_exp"              // no exp claim: tokens without expiry are refused
	ReasonNotYetValid    = "not_yet_valid"            // nbf is in the future
	ReasonMissingSubject = "missing_sub"              // no sub claim
	ReasonNotAccessToken = "not_access_token"         // an ID token (or other non-access token)
	ReasonBadHeader      = "bad_authorization_header" // Authorization header is not one well-formed Bearer token
	ReasonUnknown        = "unknown"                  // an error that does not come from this package
)

// tokenError carries the reason and, for debugging only, the underlying cause. Its
// message is the reason alone: it never holds token text or claim values.
type tokenError struct {
	reason string
	cause  error
}

func (e *tokenError) Error() string { return "auth: invalid access token: " + e.reason }

func (e *tokenError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrInvalidToken}
	}
	return []error{ErrInvalidToken, e.cause}
}

func invalid(reason string, cause error) error { return &tokenError{reason: reason, cause: cause} }

// FailureReason returns the machine reason of an error from Verify or the
// middleware (one of the Reason constants), ReasonUnknown for any other error, and
// "" for nil.
func FailureReason(err error) string {
	if err == nil {
		return ""
	}
	var te *tokenError
	if errors.As(err, &te) {
		return te.reason
	}
	return ReasonUnknown
}
