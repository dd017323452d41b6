package audit

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
)

func TestReasonIsRequired(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "  \t", string(make([]byte, MaxReasonLen+1))} {
		_, err := Reason(bad, "input", "reason")
		ues, rest := models.UserErrorsOf(err)
		require.NoError(t, rest)
		require.Len(t, ues, 1)
		require.Equal(t, models.UserErrorInvalid, ues[0].Code)
	}
	r, err := Reason("  card expired  ")
	require.NoError(t, err)
	require.Equal(t, "card expired", r)
}
