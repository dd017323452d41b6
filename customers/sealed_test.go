package customers

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/database/dbtest"
)

// rawCustomers is every customers row in PostgreSQL's text form.
func rawCustomers(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	var rows []string
	require.NoError(t, db.Raw(`SELECT c::text FROM customers c`).Scan(&rows).Error)
	return rows
}

func TestProvisionSealsAndFollowsTheToken(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
	svc := NewService(db)
	ctx := context.Background()
	p := &auth.Principal{Issuer: "https://id.example", Subject: "ana", Email: "Ana.Canary@Example.com", EmailVerified: true, Name: "Ana Canary"}

	c, err := svc.Provision(ctx, p)
	require.NoError(t, err)
	require.Equal(t, "Ana.Canary@Example.com", c.Email)
	rows := rawCustomers(t, db)
	require.Len(t, rows, 1)
	for _, leak := range []string{"canary", "Canary", "ana.canary", "Ana Canary"} {
		require.NotContains(t, rows[0], leak, "no plaintext e-mail or name in the row")
	}

	before := rawCustomers(t, db)
	again, err := svc.Provision(ctx, p)
	require.NoError(t, err)
	require.Equal(t, c.ID, again.ID)
	require.Equal(t, before, rawCustomers(t, db), "nothing changed, nothing written (not even a fresh seal)")

	// A token without e-mail or name blanks nothing.
	bare, err := svc.Provision(ctx, &auth.Principal{Issuer: p.Issuer, Subject: p.Subject})
	require.NoError(t, err)
	require.Equal(t, "Ana.Canary@Example.com", bare.Email)
	require.Equal(t, "Ana Canary", *bare.Name)

	// A new address in the token replaces the old one, index included.
	moved, err := svc.Provision(ctx, &auth.Principal{Issuer: p.Issuer, Subject: p.Subject, Email: "ana@new.example", EmailVerified: true})
	require.NoError(t, err)
	require.Equal(t, c.ID, moved.ID)
	require.Equal(t, "ana@new.example", moved.Email)
	require.Equal(t, "Ana Canary", *moved.Name)
	found, err := svc.List(ctx, ptr("ANA@new.example"), nil, nil)
	require.NoError(t, err)
	require.Len(t, found.Edges, 1)
	gone, err := svc.List(ctx, ptr("Ana.Canary@Example.com"), nil, nil)
	require.NoError(t, err)
	require.Empty(t, gone.Edges, "the old address no longer finds them")
}

func TestProvisionConcurrentFirstCallsMakeOneRow(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
	svc := NewService(db)
	p := &auth.Principal{Issuer: "https://id.example", Subject: "race", Email: "race@example.com", EmailVerified: true}
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := svc.Provision(context.Background(), p)
			if err == nil {
				ids[i] = c.ID
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id)
	}
	require.Len(t, rawCustomers(t, db), 1)
}

func TestEmailLookupUsesTheBlindIndex(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
	svc := NewService(db)
	ctx := context.Background()
	ana, err := svc.Provision(ctx, &auth.Principal{Issuer: "https://id.example", Subject: "ana", Email: "Ana@Example.com", EmailVerified: true})
	require.NoError(t, err)
	_, err = svc.Provision(ctx, &auth.Principal{Issuer: "https://id.example", Subject: "bob", Email: "bob@example.com", EmailVerified: true})
	require.NoError(t, err)

	for _, q := range []string{"Ana@Example.com", "ana@example.com", "ANA@EXAMPLE.COM", "  ana@example.com "} {
		got, err := svc.List(ctx, ptr(q), nil, nil)
		require.NoError(t, err)
		require.Len(t, got.Edges, 1, "exact address, any case: %q", q)
		require.Equal(t, ana.ID, got.Edges[0].Node.ID)
	}
	for _, q := range []string{"ana", "ana@", "ana@example", "ana@example.co", "na@example.com", "%", "ana@example.com%"} {
		got, err := svc.List(ctx, ptr(q), nil, nil)
		require.NoError(t, err)
		require.Empty(t, got.Edges, "a part of an address finds nobody: %q", q)
	}

}

func ptr(s string) *string { return &s }

func TestProvisionStoresOnlyVerifiedEmail(t *testing.T) {
	t.Parallel()
	db := dbtest.NewSealed(t)
	svc := NewService(db)
	ctx := context.Background()
	const iss = "https://id.example"

	// First sight with an unverified address: the account exists, without e-mail.
	c, err := svc.Provision(ctx, &auth.Principal{Issuer: iss, Subject: "mallory", Email: "victim@example.com", EmailVerified: false})
	require.NoError(t, err)
	require.Equal(t, "", c.Email)
	found, err := svc.List(ctx, ptr("victim@example.com"), nil, nil)
	require.NoError(t, err)
	require.Empty(t, found.Edges, "staff search does not find an unverified address")

	// The same address, now verified, is stored and found.
	c, err = svc.Provision(ctx, &auth.Principal{Issuer: iss, Subject: "mallory", Email: "victim@example.com", EmailVerified: true})
	require.NoError(t, err)
	require.Equal(t, "victim@example.com", c.Email)

	// A later unverified address neither replaces nor blanks the verified one.
	c, err = svc.Provision(ctx, &auth.Principal{Issuer: iss, Subject: "mallory", Email: "other@example.com"})
	require.NoError(t, err)
	require.Equal(t, "victim@example.com", c.Email)
	found, err = svc.List(ctx, ptr("other@example.com"), nil, nil)
	require.NoError(t, err)
	require.Empty(t, found.Edges)
	found, err = svc.List(ctx, ptr("victim@example.com"), nil, nil)
	require.NoError(t, err)
	require.Len(t, found.Edges, 1)
}
