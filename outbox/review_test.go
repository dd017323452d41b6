package outbox

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

// A sealed column copied from another row (an endpoint's secret, a message's
// payload) does not open under this row's id: the attempt fails and sends nothing,
// rather than signing with another endpoint's secret or sending another message.
func TestReviewASealedColumnOfAnotherRowDoesNotOpen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	a, _ := e.endpoint(r.srv.URL+"/a", EventPaymentSucceeded)
	b, _ := e.endpoint(r.srv.URL+"/b", EventPaymentSucceeded)
	e.publish(uuid.NewString())
	e.publish(uuid.NewString())
	w := e.worker(r)

	require.NoError(t, e.db.Exec(`UPDATE webhook_endpoints SET secret = (SELECT secret FROM webhook_endpoints WHERE id = ?) WHERE id = ?`, b, a).Error)
	da := e.deliveries(a)[0]
	require.Error(t, w.Work(context.Background(), job(da.ID, 1)))
	require.Empty(t, r.requests(), "nothing signed with another endpoint's secret")

	db := e.deliveries(b)
	require.NoError(t, e.db.Exec(`UPDATE webhook_messages SET payload = (SELECT payload FROM webhook_messages WHERE id = ?) WHERE id = ?`,
		db[1].MessageID, db[0].MessageID).Error)
	require.Error(t, w.Work(context.Background(), job(db[0].ID, 1)))
	require.Empty(t, r.requests(), "no other message's payload sent")
	require.NoError(t, w.Work(context.Background(), job(db[1].ID, 1)))
	require.Len(t, r.requests(), 1, "the rows left alone still deliver")
}

// After a rotation the attempt signs with both secrets, each opened from its own
// column of the endpoint's row.
func TestReviewARotatedEndpointSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	ep, old, d := e.firstDelivery(r.srv.URL+"/in", EventPaymentSucceeded)
	_, fresh, err := e.svc.RotateSecret(context.Background(), staff, models.RotateWebhookEndpointSecretInput{
		EndpointID: ep, Reason: "the old one leaked", IdempotencyKey: uuid.NewString()})
	require.NoError(t, err)
	require.NotEqual(t, old, fresh)
	require.NoError(t, e.worker(r).Work(context.Background(), job(d.ID, 1)))
	got := r.requests()
	require.Len(t, got, 1)
	require.True(t, verify(t, fresh, got[0].header, got[0].body), "signed with the new secret")
	require.True(t, verify(t, old, got[0].header, got[0].body), "and with the previous one")
}

// A delivery whose endpoint was deleted (its deliveries go with it) ends its job
// quietly: nothing read, nothing sent.
func TestReviewADeliveryOfADeletedEndpointEndsQuietly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newReceiver(t, 204)
	ep, _, d := e.firstDelivery(r.srv.URL+"/in", EventPaymentSucceeded)
	require.NoError(t, e.db.Exec(`DELETE FROM webhook_endpoints WHERE id = ?`, ep).Error)
	require.NoError(t, e.worker(r).Work(context.Background(), job(d.ID, 1)))
	require.Empty(t, r.requests())
}

// The one-statement read fills every field of the three rows as the models' own
// reads do, sealed ones included: a column added to a row and not to the
// statement, or scanned into its neighbour, shows here.
func TestReviewTheOneStatementReadIsTheModelsRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ep, _, d := e.firstDelivery("https://accounting.example/hooks", EventPaymentSucceeded)
	_, _, err := e.svc.RotateSecret(context.Background(), staff, models.RotateWebhookEndpointSecretInput{
		EndpointID: ep, Reason: "the old one leaked", IdempotencyKey: uuid.NewString()})
	require.NoError(t, err)
	require.NoError(t, e.db.Exec(`UPDATE webhook_endpoints SET failing_since = now(), disabled_reason = 'test' WHERE id = ?`, ep).Error)
	require.NoError(t, e.db.Exec(`UPDATE webhook_deliveries SET attempts = 2, last_status_code = 500, last_error = 'boom',
		next_attempt_at = now() WHERE id = ?`, d.ID).Error)

	var (
		gotD  deliveryRow
		gotEp endpointRow
		gotM  messageRow
	)
	require.NoError(t, e.worker(nil).read(context.Background(), d.ID, &gotD, &gotEp, &gotM))
	var (
		wantD  deliveryRow
		wantEp endpointRow
		wantM  messageRow
	)
	require.NoError(t, e.db.Take(&wantD, "id = ?", d.ID).Error)
	require.NoError(t, e.db.Take(&wantEp, "id = ?", wantD.EndpointID).Error)
	require.NoError(t, e.db.Take(&wantM, "id = ?", wantD.MessageID).Error)
	require.NotNil(t, wantEp.PreviousSecret)
	require.NotEmpty(t, wantM.Payload)
	require.Equal(t, wantD, gotD)
	require.Equal(t, wantEp, gotEp)
	require.Equal(t, wantM, gotM)
}
