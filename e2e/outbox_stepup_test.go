package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/devidp"
)

// An endpoint receives customers' addresses, so registering, changing or re-keying
// one needs a recent login, like the customer's own critical changes: an admin
// token from an old login is refused with STEP_UP_REQUIRED and nothing is made.
func TestWebhookEndpointChangesNeedARecentLogin(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t)
	s := newHookShop(t, r)
	stale, err := s.issuer.Mint(devidp.Claims{Subject: "ops-stale", Email: "ops-stale@example.com", Roles: []string{"admin"},
		AuthTime: time.Now().Add(-time.Hour)})
	require.NoError(t, err)

	resp, _ := s.createEndpoint(stale, r.srv.URL+"/3pl", "ep-stale", "*")
	require.Equal(t, []string{"STEP_UP_REQUIRED"}, resp.codes(), resp.Raw)
	require.Zero(t, s.count(`SELECT count(*) FROM webhook_endpoints`), "a refused create made an endpoint")

	resp, payload := s.createEndpoint(s.token("ops-fresh", "admin"), r.srv.URL+"/3pl", "ep-fresh", "*")
	require.Empty(t, resp.Errors, resp.Raw)
	id := payload["endpoint"].(map[string]any)["id"].(string)

	resp, _ = s.mutate(stale, "updateWebhookEndpoint", "UpdateWebhookEndpointInput",
		map[string]any{"endpointId": id, "url": r.srv.URL + "/elsewhere", "reason": "move it", "idempotencyKey": "up-stale"}, "endpoint { url }")
	require.Equal(t, []string{"STEP_UP_REQUIRED"}, resp.codes(), resp.Raw)
	resp, _ = s.mutate(stale, "rotateWebhookEndpointSecret", "RotateWebhookEndpointSecretInput",
		map[string]any{"endpointId": id, "reason": "rotate it", "idempotencyKey": "rot-stale"}, "secret")
	require.Equal(t, []string{"STEP_UP_REQUIRED"}, resp.codes(), resp.Raw)
	var url string
	require.NoError(t, s.db.Raw(`SELECT url FROM webhook_endpoints WHERE id = ?`, id).Scan(&url).Error)
	require.Equal(t, r.srv.URL+"/3pl", url)
}
