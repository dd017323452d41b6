package models

// The codes of API.md, each spelled here and nowhere else in the code (a test
// fails on a code's literal anywhere else). Clients branch on codes, never on
// messages, so a code once published never changes its spelling.
//
// Top-level GraphQL errors carry one of these in extensions.code. Those of the cost
// limits mean the request ran nothing and the client must send a smaller operation.
const (
	CodeUnauthenticated     = "UNAUTHENTICATED"
	CodeForbidden           = "FORBIDDEN"
	CodeStepUpRequired      = "STEP_UP_REQUIRED"
	CodeRateLimited         = "RATE_LIMITED"
	CodeProviderUnavailable = "PROVIDER_UNAVAILABLE"
	CodeInternal            = "INTERNAL"

	CodeDepthLimit      = "DEPTH_LIMIT_EXCEEDED"
	CodeAliasLimit      = "ALIAS_LIMIT_EXCEEDED"
	CodeFieldLimit      = "FIELD_LIMIT_EXCEEDED"
	CodeComplexityLimit = "COMPLEXITY_LIMIT_EXCEEDED" // gqlgen's complexity extension
	CodeBatchRefused    = "BATCH_NOT_SUPPORTED"
	CodeBadRequest      = "BAD_REQUEST"
	CodeBodyTooLarge    = "REQUEST_TOO_LARGE"
	// CodeDocumentTooComplex refuses a document that would cost validation more
	// than its budget: too many nodes to visit, or too many field comparisons.
	CodeDocumentTooComplex = "DOCUMENT_TOO_COMPLEX"
	// CodeRequestTimeout ends a request that ran past its deadline
	// (GRAPHQL_REQUEST_TIMEOUT); what it did before may have committed.
	CodeRequestTimeout = "REQUEST_TIMEOUT"
	// CodeServerBusy refuses a request, before any work, while the server has as
	// many requests in flight as it takes; retry after extensions.retryAfter.
	CodeServerBusy = "SERVER_BUSY"
	// CodeDocumentNotAllowed refuses, in persisted-documents mode
	// (PERSISTED_DOCUMENTS_MANIFEST), a document that is not in the manifest,
	// sent whole or by a hash, from a caller who is not SUPPORT or ADMIN.
	CodeDocumentNotAllowed = "DOCUMENT_NOT_ALLOWED"
)

// The UserErrorCode values of a mutation payload's userErrors: API.md's, and the
// payment ones a provider's refusal needs (gateway.AsUserError).
const (
	UserErrorInvalid              UserErrorCode = "INVALID"
	UserErrorNotFound             UserErrorCode = "NOT_FOUND"
	UserErrorInvalidState         UserErrorCode = "INVALID_STATE"
	UserErrorIdempotencyKeyReused UserErrorCode = "IDEMPOTENCY_KEY_REUSED"
	UserErrorPaymentDeclined      UserErrorCode = "PAYMENT_DECLINED"
	UserErrorProviderRejected     UserErrorCode = "PROVIDER_REJECTED"
)
