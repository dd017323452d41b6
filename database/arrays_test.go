package database_test

import (
	"context"
	"database/sql"
	"log/slog"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the plain driver the results are compared with
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/database/dbtest"
)

// River's job inserts pass lib/pq arrays; the connection Open makes encodes them
// natively. PostgreSQL must receive the same values as through pq's text form.
func TestPQArraysReachPostgreSQLUnchanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.AdminURL(t)
	db, err := database.Open(ctx, url, database.Pool{MaxOpenConns: 1}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	native, err := db.DB()
	require.NoError(t, err)
	t.Cleanup(func() { _ = native.Close() })
	plain, err := sql.Open("pgx", url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = plain.Close() })

	// Times are sent to the microsecond PostgreSQL keeps; finer ones are cut where pq's
	// text was rounded, as River's own pgx driver cuts them.
	when := time.Date(2026, 11, 23, 4, 5, 6, 123456000, time.FixedZone("x", 5*3600+1800))
	cases := []struct {
		cast  string
		value any
	}{
		{"text[]", pq.Array([]string{"a", "b,c", `q"uote`, `back\slash`, "", "NULL", "{}", "ü"})},
		{"text[]", pq.Array([]string{})},
		{"jsonb[]", pq.Array([]string{`{"event_id":"0193"}`, `{}`, `{"a":[1,"x\"y"]}`})},
		{"timestamptz[]", pq.Array([]time.Time{when, when.UTC(), time.Unix(0, 0)})},
		{"smallint[]", pq.Array([]int16{1, -2, 32767})},
		{"integer[]", pq.Array([]int32{0, 7, -2147483648})},
		{"bigint[]", pq.Array([]int64{0, 1 << 62})},
		{"boolean[]", pq.Array([]bool{true, false})},
		{"bytea[]", pq.Array([][]byte{nil, {}, {0, 1, 0xff}})},
	}
	for _, c := range cases {
		var got, want sql.NullString
		q := "SELECT ($1::" + c.cast + ")::text"
		require.NoError(t, native.QueryRowContext(ctx, q, c.value).Scan(&got), c.cast)
		require.NoError(t, plain.QueryRowContext(ctx, q, c.value).Scan(&want), c.cast)
		require.Equal(t, want, got, c.cast)
	}

	// Every GenericArray is one Go type: one of another slice for a parameter
	// planned for times is refused, not misencoded (the plan refuses it, pgx tries
	// pq's text instead, and PostgreSQL refuses that).
	q := "SELECT ($1::timestamptz[])::text"
	var s string
	require.NoError(t, native.QueryRowContext(ctx, q, pq.Array([]time.Time{when})).Scan(&s))
	err = native.QueryRowContext(ctx, q, pq.GenericArray{A: []int16{1}}).Scan(&s)
	require.ErrorContains(t, err, "timestamp")
}
