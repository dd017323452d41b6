package resolvers

import (
	"context"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/privacy"
	"github.com/scoville/scoville/subscriptions"
)

// mutate runs one mutation for the authenticated caller: call is the service method
// given the caller and the input. The expected failures it returns become the
// payload's user errors (models.UserErrorsOf); any other error is returned for the
// error presenter. shape builds the payload from the result and those user errors.
func mutate[I, R, P any](ctx context.Context, in I, call func(context.Context, *auth.Principal, I) (R, error),
	shape func(R, []*models.UserError) *P,
) (*P, error) {
	p, err := auth.RequireAuthenticated(ctx)
	if err != nil {
		return nil, err
	}
	res, err := call(ctx, p, in)
	ues, err := models.UserErrorsOf(err)
	if err != nil {
		return nil, err
	}
	return shape(res, ues), nil
}

// outcome adds the user errors a replayed result carries to ues, and reports whether
// the result stands: there is one and no user error at all.
func outcome(res *subscriptions.Result, ues []*models.UserError) ([]*models.UserError, bool) {
	if res != nil {
		ues = append(ues, res.UserErrors...)
	}
	return ues, res != nil && len(ues) == 0
}

// subscriptionPayload is the changed subscription, unless the change failed.
func subscriptionPayload(res *subscriptions.Result, ues []*models.UserError) *models.SubscriptionPayload {
	out := &models.SubscriptionPayload{}
	var ok bool
	if out.UserErrors, ok = outcome(res, ues); ok {
		out.Subscription = res.Subscription
	}
	return out
}

// checkoutPayload is where to send the customer to pay, unless checkout failed.
func checkoutPayload(res *subscriptions.Result, ues []*models.UserError) *models.StartCheckoutPayload {
	out := &models.StartCheckoutPayload{}
	var ok bool
	if out.UserErrors, ok = outcome(res, ues); ok {
		out.CheckoutURL, out.SessionID = &res.URL, &res.SessionID
	}
	return out
}

// createdPayload is the new subscription and, when the first payment needs the
// customer, its client secret.
func createdPayload(res *subscriptions.Result, ues []*models.UserError) *models.CreateSubscriptionPayload {
	out := &models.CreateSubscriptionPayload{}
	var ok bool
	if out.UserErrors, ok = outcome(res, ues); ok {
		out.Subscription = res.Subscription
		if res.ClientSecret != "" {
			out.ClientSecret = &res.ClientSecret
		}
	}
	return out
}

// portalPayload is the billing portal's address, unless opening it failed.
func portalPayload(res *subscriptions.Result, ues []*models.UserError) *models.CreateBillingPortalSessionPayload {
	out := &models.CreateBillingPortalSessionPayload{}
	var ok bool
	if out.UserErrors, ok = outcome(res, ues); ok {
		out.URL = &res.URL
	}
	return out
}

// refundPayload is the refunded payment, unless the refund failed.
func refundPayload(res *subscriptions.Result, ues []*models.UserError) *models.RefundPaymentPayload {
	out := &models.RefundPaymentPayload{}
	var ok bool
	if out.UserErrors, ok = outcome(res, ues); ok {
		out.Payment = res.Payment
	}
	return out
}

// unlessFailed is v when there is no user error, else T's zero value: a payload
// carries a result only when nothing failed.
func unlessFailed[T any](v T, ues []*models.UserError) T {
	if len(ues) > 0 {
		var zero T
		return zero
	}
	return v
}

// resyncPayload is the subscription as Stripe has it now, unless the resync failed.
func resyncPayload(sub *models.Subscription, ues []*models.UserError) *models.SubscriptionPayload {
	return &models.SubscriptionPayload{Subscription: unlessFailed(sub, ues), UserErrors: ues}
}

// replayPayload is the replayed event, unless the replay was refused.
func replayPayload(ev *models.WebhookEvent, ues []*models.UserError) *models.ReplayWebhookEventPayload {
	return &models.ReplayWebhookEventPayload{Event: unlessFailed(ev, ues), UserErrors: ues}
}

// endpointSecret is a webhook endpoint with the signing secret it was just given.
type endpointSecret struct {
	endpoint *models.WebhookEndpoint
	secret   string
}

// withSecret adapts an outbox method that returns an endpoint and its new secret
// to mutate's one result.
func withSecret[I any](call func(context.Context, *auth.Principal, I) (*models.WebhookEndpoint, string, error),
) func(context.Context, *auth.Principal, I) (endpointSecret, error) {
	return func(ctx context.Context, p *auth.Principal, in I) (endpointSecret, error) {
		ep, secret, err := call(ctx, p, in)
		return endpointSecret{endpoint: ep, secret: secret}, err
	}
}

// createdEndpointPayload is the new endpoint and its secret (shown this once),
// unless the creation failed.
func createdEndpointPayload(res endpointSecret, ues []*models.UserError) *models.CreateWebhookEndpointPayload {
	return &models.CreateWebhookEndpointPayload{Endpoint: unlessFailed(res.endpoint, ues), Secret: unlessFailed(&res.secret, ues), UserErrors: ues}
}

// rotatedEndpointPayload is the endpoint and its new secret (shown this once),
// unless the rotation failed.
func rotatedEndpointPayload(res endpointSecret, ues []*models.UserError) *models.RotateWebhookEndpointSecretPayload {
	return &models.RotateWebhookEndpointSecretPayload{Endpoint: unlessFailed(res.endpoint, ues), Secret: unlessFailed(&res.secret, ues), UserErrors: ues}
}

// updatedEndpointPayload is the changed endpoint, unless the change failed.
func updatedEndpointPayload(ep *models.WebhookEndpoint, ues []*models.UserError) *models.UpdateWebhookEndpointPayload {
	return &models.UpdateWebhookEndpointPayload{Endpoint: unlessFailed(ep, ues), UserErrors: ues}
}

// redeliveryPayload is the delivery queued again, unless the redelivery was refused.
func redeliveryPayload(d *models.WebhookDelivery, ues []*models.UserError) *models.RedeliverWebhookPayload {
	return &models.RedeliverWebhookPayload{Delivery: unlessFailed(d, ues), UserErrors: ues}
}

// planPayload is the created plan, if any.
func planPayload(plan *models.Plan, ues []*models.UserError) *models.CreatePlanPayload {
	return &models.CreatePlanPayload{Plan: plan, UserErrors: ues}
}

// deletedPayload says whether the account is gone: only when nothing failed.
func deletedPayload(res *privacy.DeleteOutcome, ues []*models.UserError) *models.DeleteMyAccountPayload {
	out := &models.DeleteMyAccountPayload{UserErrors: ues}
	if res != nil {
		out.UserErrors = append(out.UserErrors, res.UserErrors...)
		out.Deleted = res.Deleted && len(out.UserErrors) == 0
	}
	return out
}
