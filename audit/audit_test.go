package audit

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/clientip"
	"github.com/scoville/scoville/logging"
)

func TestEntryKeepsNoPersonalData(t *testing.T) {
	t.Parallel()
	ctx := clientip.With(logging.WithRequestID(context.Background(), "req-12345678"), netip.MustParseAddr("203.0.113.9"))
	p := &auth.Principal{Issuer: "https://id.example", Subject: "staff-1", Email: "staff@example.com",
		Roles: []auth.Role{auth.RoleCustomer, auth.RoleAdmin}}
	e, err := entry(ctx, p, Action{
		Name: "refundPayment", TargetType: "payment", TargetID: "p1",
		Reason: "asked by jane.doe@example.org on the phone",
		Before: map[string]any{"status": "SUCCEEDED", "email": "jane.doe@example.org",
			"shippingAddress": map[string]any{"line1": "1 Pepper Lane"}},
		After: []any{map[string]any{"Name": "Jane", "note": "mail bob@example.net"}, 42},
	})
	require.NoError(t, err)
	require.Equal(t, "asked by [masked] on the phone", e.Reason)
	require.JSONEq(t, `{"status":"SUCCEEDED","email":"[masked]","shippingAddress":"[masked]"}`, *e.Before)
	require.JSONEq(t, `[{"Name":"[masked]","note":"mail [masked]"},42]`, *e.After)
	require.Equal(t, []string{"CUSTOMER", "ADMIN"}, e.ActorRoleList)
	require.Equal(t, "req-12345678", *e.RequestID)
	require.Equal(t, "203.0.113.9", *e.ClientIP)
	require.NotContains(t, *e.Before+*e.After+e.Reason, "@")

	none, err := entry(context.Background(), p, Action{Name: "x"})
	require.NoError(t, err)
	require.Nil(t, none.Before)
	require.Nil(t, none.RequestID, "no request id outside a request")
	require.Nil(t, none.ClientIP)

	_, err = entry(ctx, nil, Action{Name: "refundPayment"})
	require.Error(t, err, "an entry always has an actor")
}
