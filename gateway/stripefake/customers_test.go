package stripefake_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/gateway"
)

func TestDeletingACustomerForgetsIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id, err := b.gw.CreateCustomer(ctx, "k-create", gateway.CustomerInput{OurCustomerID: "c_1"})
	require.NoError(t, err)
	require.NoError(t, b.gw.DeleteCustomer(ctx, "k-delete", id))
	require.Equal(t, 1, b.fake.Count(http.MethodDelete, "/v1/customers/"+id))
	// Deleted already: Stripe answers 404, which the adapter takes as done.
	require.NoError(t, b.gw.DeleteCustomer(ctx, "k-delete-again", id))
	require.Equal(t, 2, b.fake.Count(http.MethodDelete, "/v1/customers/"+id))
}
