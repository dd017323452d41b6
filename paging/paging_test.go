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

func TestEdges(t *testing.T) {
	type row struct {
		at time.Time
		id string
	}
	pos := func(r row) (time.Time, string) { return r.at, r.id }
	edge := func(r row, cursor string) string { return r.id + "@" + cursor }

	edges, info := Edges(nil, false, pos, edge)
	if len(edges) != 0 || info.HasNextPage || info.EndCursor != nil {
		t.Fatalf("empty page: %v %+v", edges, info)
	}
	t1, t2 := time.UnixMicro(2_000), time.UnixMicro(1_000)
	rows := []row{{t1, "00000000-0000-4000-8000-000000000002"}, {t2, "00000000-0000-4000-8000-000000000001"}}
	edges, info = Edges(rows, true, pos, edge)
	if len(edges) != 2 || edges[0] != rows[0].id+"@"+Encode(t1, rows[0].id) {
		t.Fatalf("edges %v", edges)
	}
	if !info.HasNextPage || info.EndCursor == nil || *info.EndCursor != Encode(t2, rows[1].id) {
		t.Fatalf("page info %+v, want the last row's cursor", info)
	}
}
