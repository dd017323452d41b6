// Package gateway is the Stripe adapter behind the services: plain Go types in,
// plain Go types out, no stripe-go type in any signature.
//
// What callers may rely on:
//
//   - Every mutating call takes an idempotency key that the caller derives from its
//     own operation (for example "sub:create:" + our idempotency record id). The same
//     key is sent as Stripe's Idempotency-Key on every attempt, retries included, so a
//     call repeated after a timeout or a crash has at most one effect at Stripe. Stripe
//     keys are scoped to the account and expire after 24 hours; a key reused with other
//     parameters is refused by Stripe (a *ProviderError of type idempotency_error), so
//     derive one key per distinct Stripe request.
//   - Network errors, per-attempt timeouts, 5xx and 429 answers are retried with
//     exponential backoff and jitter, within Config.MaxRetries and Config.RetryBudget
//     (the caller's context can only shorten the budget). When they persist the error
//     is ErrProviderUnavailable: the outcome is unknown, and repeating the call with
//     the same key is safe. Other 4xx answers are never retried and come back as a
//     *ProviderError (with ErrNotFound and IsCardDeclined for the common cases).
//   - The secret key never appears in a returned error or a log line, and neither do
//     e-mail addresses, names or Stripe's free-text messages (which can echo input).
//     Each call logs one line: operation, Stripe request id, HTTP status, attempts,
//     duration.
//   - The FromJSON functions turn a verified webhook event's object
//     (stripe.Event's Data.Raw) into the same plain types the reads return, so
//     the webhook processor never handles a stripe-go type. A reference gives
//     its id whether Stripe sent the id or the expanded object. JSON that is
//     malformed, of another object type or without an id is ErrInvalidObject,
//     whose message never quotes the payload.
//   - In every plain type, currencies are upper-case ISO 4217 codes and times
//     are UTC, zero when Stripe sent none.
//
// The adapter owns its own stripe-go client (client.New with its own backends): it
// never reads or writes the global stripe.Key, so tests and several accounts can
// coexist in one process.
package gateway
