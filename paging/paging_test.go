package paging

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/models"
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

func TestConnection(t *testing.T) {
	t.Parallel()
	pos := func(p *models.Payment) (time.Time, string) { return p.CreatedAt, p.ID }

	c := Connection[models.PaymentConnection](nil, false, pos)
	if len(c.Edges) != 0 || c.PageInfo.HasNextPage || c.PageInfo.EndCursor != nil {
		t.Fatalf("empty page: %v %+v", c.Edges, c.PageInfo)
	}
	t1, t2 := time.UnixMicro(2_000), time.UnixMicro(1_000)
	rows := []*models.Payment{{CreatedAt: t1, ID: "00000000-0000-4000-8000-000000000002"}, {CreatedAt: t2, ID: "00000000-0000-4000-8000-000000000001"}}
	c = Connection[models.PaymentConnection](rows, true, pos)
	if len(c.Edges) != 2 || c.Edges[0].Node != rows[0] || c.Edges[0].Cursor != Encode(t1, rows[0].ID) || c.Edges[1].Node != rows[1] {
		t.Fatalf("edges %+v", c.Edges)
	}
	if !c.PageInfo.HasNextPage || c.PageInfo.EndCursor == nil || *c.PageInfo.EndCursor != Encode(t2, rows[1].ID) {
		t.Fatalf("page info %+v, want the last row's cursor", c.PageInfo)
	}
}
