package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/logging"
	"github.com/scoville/scoville/models"
)

// errPanic stands for a recovered panic; its details go to the log only.
var errPanic = errors.New("panic in resolver")

// NewErrorPresenter returns the one place where errors become what a client sees: typed
// errors get their API.md code and message, errors about the query itself (parse,
// validation) pass as gqlgen made them, and anything else is logged with the request
// id and shown only as INTERNAL, so no SQL, stack or internal text leaks.
func NewErrorPresenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		path := graphql.GetPath(ctx)
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Path != nil {
			path = gqlErr.Path
		}
		present := func(code, msg string, ext map[string]any) *gqlerror.Error {
			if ext == nil {
				ext = map[string]any{}
			}
			ext["code"] = code
			return &gqlerror.Error{Message: msg, Path: path, Extensions: ext}
		}

		var stepUp *auth.StepUpRequiredError
		var userErr *models.UserError
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			return present(models.CodeUnauthenticated, auth.ErrUnauthenticated.Error(), nil)
		case errors.Is(err, auth.ErrForbidden):
			return present(models.CodeForbidden, auth.ErrForbidden.Error(), nil)
		case errors.As(err, &stepUp):
			return present(models.CodeStepUpRequired, stepUp.Error(), stepUpExtensions(stepUp))
		case errors.Is(err, gateway.ErrProviderUnavailable):
			return present(models.CodeProviderUnavailable, "the payment provider could not be reached; nothing was charged; retry with the same idempotency key", nil)
		case errors.As(err, &userErr):
			// A query's bad argument (a mutation returns these in its payload instead).
			return present(string(userErr.Code), userErr.Error(), nil)
		case gqlErr != nil && gqlErr.Err == nil:
			// Made by gqlgen or gqlparser about the request (syntax, validation).
			return gqlErr
		}

		requestID := logging.RequestID(ctx)
		if clientGone(ctx) {
			// Nobody reads this answer, and nothing failed on our side: no ERROR line
			// (and Metrics counts it as CodeCanceled, not INTERNAL).
			logger.DebugContext(ctx, "graphql: request canceled by the client", "path", path.String())
		} else if !errors.Is(err, errPanic) { // a panic was logged with its stack by the recover function
			logger.ErrorContext(ctx, "graphql: internal error", "path", path.String(), "error", err.Error())
		}
		ext := map[string]any{}
		if requestID != "" {
			ext["requestId"] = requestID
		}
		return present(models.CodeInternal, "internal error; quote the requestId when contacting support", ext)
	}
}

// clientGone reports whether the request's client went away before its answer: its
// context was canceled. A server-side deadline is an error of its own, not this.
func clientGone(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}

// stepUpExtensions tells the client what to ask the identity provider for, in RFC
// 9470's terms: maxAge (seconds) always; acrValues, space-separated as the
// authorization request's acr_values parameter takes them, when the policy names
// acr values; amrValues, the same way, when it names amr values (no standard
// request parameter carries these: the client maps them to its provider's).
func stepUpExtensions(e *auth.StepUpRequiredError) map[string]any {
	ext := map[string]any{"maxAge": int(e.MaxAge.Seconds())}
	if len(e.ACRValues) > 0 {
		ext["acrValues"] = strings.Join(e.ACRValues, " ")
	}
	if len(e.AMRValues) > 0 {
		ext["amrValues"] = strings.Join(e.AMRValues, " ")
	}
	return ext
}

// NewRecoverFunc logs a resolver panic with its stack and turns it into an error that
// the presenter shows as INTERNAL.
func NewRecoverFunc(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "graphql: panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return errPanic
	}
}
