package gateway

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDeleteCustomerAtStripeMock(t *testing.T) {
	t.Parallel()
	m := setupMock(t)
	ctx := context.Background()
	id, err := m.gw.CreateCustomer(ctx, "t-del-cus", CustomerInput{OurCustomerID: "c_del", Email: "gone@example.com"})
	require.NoError(t, err)
	require.NoError(t, m.gw.DeleteCustomer(ctx, "t-del-cus-delete", id))
	require.NotContains(t, m.log.String(), "gone@example.com")

	require.ErrorIs(t, m.gw.DeleteCustomer(ctx, "", id), ErrInvalidIdempotencyKey)
	require.ErrorIs(t, m.gw.DeleteCustomer(ctx, "k", ""), ErrInvalidInput)
}

func TestDeleteCustomerTreatsAMissingCustomerAsDeletedAndOutagesAsUnavailable(t *testing.T) {
	t.Parallel()
	missing := setup(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such customer: 'cus_gone'"}}`))
	})
	require.NoError(t, missing.gw.DeleteCustomer(context.Background(), "k-missing", "cus_gone"))

	down := setup(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	require.ErrorIs(t, down.gw.DeleteCustomer(context.Background(), "k-down", "cus_1"), ErrProviderUnavailable)
}
