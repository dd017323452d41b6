package paging

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestArgs(t *testing.T) {
	t.Parallel()
	ptr := func(i int) *int { return &i }
	str := func(s string) *string { return &s }
	id := "4d0c6f1e-0000-4000-8000-000000000101"
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)

	limit, cur, err := Args(nil, nil)
	require.NoError(t, err)
	require.Equal(t, DefaultFirst, limit)
	require.Nil(t, cur)

	limit, _, err = Args(ptr(1_000_000_000), nil)
	require.NoError(t, err)
	require.Equal(t, MaxFirst, limit)

	_, _, err = Args(ptr(-1), nil)
	require.Error(t, err)

	_, cur, err = Args(ptr(5), str(Encode(at, id)))
	require.NoError(t, err)
	require.Equal(t, &Cursor{CreatedAt: at, ID: id}, cur)

	for _, bad := range []string{"!!!", "bm90LWEtY3Vyc29y", Encode(at, "not-a-uuid")} {
		_, _, err = Args(nil, str(bad))
		require.Error(t, err, bad)
	}
}
