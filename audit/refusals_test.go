package audit

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/database/dbtest"
)

// TestRefusalEntriesAreBoundedPerPrincipal: a flood of refused attempts by one
// principal writes at most RefusalBurst entries at once, and does not use up anyone
// else's.
func TestRefusalEntriesAreBoundedPerPrincipal(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	r := NewRefusals(db, slog.New(slog.DiscardHandler), nil)
	now := time.Now()
	r.now = func() time.Time { return now } // no refill while the flood is written
	flood := &auth.Principal{Issuer: "https://id.example", Subject: "flooder", Roles: []auth.Role{auth.RoleCustomer}}
	other := &auth.Principal{Issuer: "https://id.example", Subject: "bystander", Roles: []auth.Role{auth.RoleCustomer}}
	for range RefusalBurst + 20 {
		r.Record(context.Background(), flood, "auditLog", auth.RoleAdmin)
	}
	r.Record(context.Background(), other, "auditLog", auth.RoleAdmin)

	rows := func(subject string) int64 {
		var n int64
		require.NoError(t, db.Raw(`SELECT count(*) FROM audit_log WHERE actor_subject = ?`, subject).Scan(&n).Error)
		return n
	}
	require.EqualValues(t, RefusalBurst, rows("flooder"))
	require.EqualValues(t, 1, rows("bystander"))
	require.Equal(t, 20.0, testutil.ToFloat64(r.dropped))

	now = now.Add(time.Minute / RefusalsPerMinute)
	r.Record(context.Background(), flood, "auditLog", auth.RoleAdmin)
	require.EqualValues(t, RefusalBurst+1, rows("flooder"), "the bound refills with time")
}
