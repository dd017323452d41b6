package customers

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/database/dbtest"
)

func TestProvisionBoundsWhatATokenMayStore(t *testing.T) {
	t.Parallel()
	svc := NewService(dbtest.NewSealed(t))
	ctx := context.Background()

	_, err := svc.Provision(ctx, &auth.Principal{Issuer: "https://id.example", Subject: ""})
	require.ErrorIs(t, err, ErrInvalidIdentity)
	_, err = svc.Provision(ctx, &auth.Principal{Issuer: "https://id.example", Subject: strings.Repeat("s", 256)})
	require.ErrorIs(t, err, ErrInvalidIdentity)

	c, err := svc.Provision(ctx, &auth.Principal{
		Issuer: "https://id.example", Subject: "long",
		Email: "not an address", EmailVerified: true, Name: strings.Repeat("é", 500),
	})
	require.NoError(t, err)
	require.Equal(t, "", c.Email, "an invalid e-mail is not stored")
	require.Equal(t, 200, len([]rune(*c.Name)), "an over-long name is cut at a rune boundary")
}
