package subscriptions

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The me statement's parameters are numbered in the order gorm would bind them,
// and none is left as a question mark.
func TestMeStatementNumbersItsParameters(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a $1 b $2$3", numberParameters("a ? b ??"))
	require.Equal(t, "none", numberParameters("none"))
	require.NotContains(t, meStatementPG, "?")
	require.Equal(t, 3, strings.Count(meStatement, "?"), "LIMIT, issuer, subject")
	for _, p := range []string{"LIMIT $1", "c.issuer = $2", "c.subject = $3"} {
		require.Contains(t, meStatementPG, p)
	}
}
