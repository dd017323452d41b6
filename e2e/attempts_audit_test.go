package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/privacy"
)

// stripeDownAfterOneCall lets the next request to Stripe through and fails every
// retry of the one after it: Stripe has acted once, and the operation fails
// before anything of ours commits.
func stripeDownAfterOneCall() []stripefake.Fault {
	faults := []stripefake.Fault{{}}
	for range 40 {
		faults = append(faults, stripefake.Fault{Status: http.StatusServiceUnavailable})
	}
	return faults
}

// entriesOf returns the entries of action (exact name), oldest first.
func (s *shop) entriesOf(action string) []models.AuditEntry {
	s.t.Helper()
	var out []models.AuditEntry
	require.NoError(s.t, s.db.Where("action = ?", action).Order("created_at").Find(&out).Error)
	return out
}

// requireAttemptCompleted checks that the one attempted entry of action is named
// by the one entry of its outcome.
func (s *shop) requireAttemptCompleted(action string) {
	s.t.Helper()
	attempts, done := s.entriesOf(action+".attempted"), s.entriesOf(action)
	require.Len(s.t, attempts, 1, "a retry with the same key reuses its attempt")
	require.Len(s.t, done, 1)
	var after struct{ AttemptID string }
	require.NoError(s.t, json.Unmarshal([]byte(*done[0].After), &after))
	require.Equal(s.t, attempts[0].ID, after.AttemptID)
}

// createPlan makes a product at Stripe, then its price. When Stripe fails
// between the two (or the process dies after Stripe answered), the product
// exists at Stripe: an entry naming the staff member was committed before.
func TestCreatePlanIsAuditedBeforeStripeIsCalled(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	admin := s.token("plan-maker", "admin")
	in := map[string]any{"name": "Ghost Box", "description": "Bhut jolokia.", "interval": "MONTH",
		"amount": 3900, "currency": "EUR", "idempotencyKey": "plan-attempt"}
	products := s.stripe.Count(http.MethodPost, "/v1/products")
	s.stripe.FailNext(stripeDownAfterOneCall()...)
	resp, _ := s.mutate(admin, "createPlan", "CreatePlanInput", in, "plan { id }")
	s.stripe.ClearFaults()
	require.Equal(t, []string{"PROVIDER_UNAVAILABLE"}, resp.codes(), resp.Raw)
	require.Equal(t, products+1, s.stripe.Count(http.MethodPost, "/v1/products"), "the product exists at Stripe")

	attempts := s.entriesOf("createPlan.attempted")
	require.Len(t, attempts, 1, "the effect at Stripe has an entry naming who asked for it")
	require.Equal(t, "plan-maker", attempts[0].ActorSubject)
	require.Equal(t, "plan", attempts[0].TargetType)
	require.NotEmpty(t, attempts[0].TargetID)
	var after struct {
		Key     string
		Planned map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(*attempts[0].After), &after))
	require.NotEmpty(t, after.Key)
	require.EqualValues(t, 3900, after.Planned["amount"])
	require.Empty(t, s.entriesOf("createPlan"), "no outcome before it happened")

	resp, payload := s.mutate(admin, "createPlan", "CreatePlanInput", in, "plan { id }")
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, attempts[0].TargetID, payload["plan"].(map[string]any)["id"])
	s.requireAttemptCompleted("createPlan")
}

// deleteMyAccount cancels the subscriptions at Stripe, then deletes the Stripe
// customer. When Stripe fails after the cancellation, the subscription is ended
// at Stripe and nothing is erased here: an entry naming the person was committed
// before the first call.
func TestDeleteMyAccountIsAuditedBeforeStripeIsCalled(t *testing.T) {
	t.Parallel()
	s := newPrivacyShop(t)
	p := &person{subject: "attempt-erin", email: "attempt@erasure.example", name: "Attempt Erin", street: "3 Trial Road", city: "Tryville"}
	s.enrol(p, 90)

	s.stripe.FailNext(stripeDownAfterOneCall()...)
	resp, _ := s.deleteAccount(s.tokenFor(p, time.Minute), "del-attempt", true)
	s.stripe.ClearFaults()
	require.Equal(t, []string{"PROVIDER_UNAVAILABLE"}, resp.codes(), resp.Raw)
	require.GreaterOrEqual(t, s.stripe.Count(http.MethodDelete, "/v1/subscriptions/"+p.stripeSub), 1, "the cancellation went through")

	attempts := s.entriesOf(privacy.OpDeleteMyAccount + ".attempted")
	require.Len(t, attempts, 1, "the cancellation at Stripe has an entry naming who asked for it")
	require.Equal(t, p.subject, attempts[0].ActorSubject)
	require.Equal(t, p.customerID, attempts[0].TargetID)
	require.Contains(t, *attempts[0].After, p.subscriptionID, "the planned cancellations")
	for _, v := range []string{p.email, p.name, p.street} {
		require.NotContains(t, *attempts[0].After, v, "no personal data in the entry")
	}
	require.Empty(t, s.entriesOf(privacy.OpDeleteMyAccount))

	resp, payload := s.deleteAccount(s.tokenFor(p, time.Minute), "del-attempt", true)
	require.Empty(t, resp.Errors, resp.Raw)
	require.Equal(t, true, payload["deleted"], resp.Raw)
	s.requireAttemptCompleted(privacy.OpDeleteMyAccount)
}
