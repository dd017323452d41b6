package resolvers

import (
	"context"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
)

// userErrors collects the expected failures of a service call (returned or replayed)
// for the payload; any other error is returned for the error presenter.
func userErrors(res *subscriptions.Result, err error) ([]*models.UserError, error) {
	ues, err := models.UserErrorsOf(err)
	if err != nil {
		return nil, err
	}
	if res != nil {
		ues = append(ues, res.UserErrors...)
	}
	return ues, nil
}

// subscriptionPayload runs a subscription change for the caller and shapes its payload.
func subscriptionPayload(ctx context.Context, call func(*auth.Principal) (*subscriptions.Result, error)) (*models.SubscriptionPayload, error) {
	p, err := auth.RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	res, err := call(p)
	ues, err := userErrors(res, err)
	if err != nil {
		return nil, err
	}
	out := &models.SubscriptionPayload{UserErrors: ues}
	if res != nil && len(ues) == 0 {
		out.Subscription = res.Subscription
	}
	return out, nil
}
