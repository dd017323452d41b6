package database

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/lib/pq"
)

// nativeArrays lets pgx encode lib/pq's array wrappers as the slices they hold.
// River's database/sql driver passes every array of a job insert through pq.Array,
// whose Value is PostgreSQL's text form; pgx then parses that text back and encodes
// it again. That round trip was about a tenth of the webhook route's CPU. The
// values sent are the same, but for times finer than a microsecond, which are cut
// instead of rounded (as River's own pgx driver does). Enum arrays, the one kind
// left out, still go as text.
func nativeArrays(_ context.Context, conn *pgx.Conn) error {
	m := conn.TypeMap()
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{unwrapPQArray}, m.TryWrapEncodePlanFuncs...)
	return nil
}

// unwrapPQArray is nativeArrays' hook: a pq array becomes its slice, and the plan
// pgx picks for that slice encodes it.
func unwrapPQArray(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	s, ok := pqSlice(value)
	if !ok {
		return nil, nil, false
	}
	return &pqArrayPlan{planned: reflect.TypeOf(s)}, s, true
}

// pqSlice is the slice inside one of the pq array kinds River uses.
func pqSlice(value any) (any, bool) {
	switch v := value.(type) {
	case *pq.StringArray:
		return []string(*v), true
	case *pq.ByteaArray:
		return emptyNotNull(*v), true
	case *pq.Int64Array:
		return []int64(*v), true
	case *pq.Int32Array:
		return []int32(*v), true
	case *pq.BoolArray:
		return []bool(*v), true
	case pq.GenericArray:
		switch a := v.A.(type) {
		case []time.Time, []int16, []int32, []int64, []string:
			return a, true
		}
	}
	return nil, false
}

// pqArrayPlan is kept by pgx per parameter type and Go type. Every GenericArray is
// one Go type whatever it holds, so the plan checks that it gets the slice it was
// planned for.
// emptyNotNull is a copy of a with nil elements empty, as pq sends them (River
// turns those into NULL itself).
func emptyNotNull(a pq.ByteaArray) [][]byte {
	if a == nil {
		return nil
	}
	out := make([][]byte, len(a))
	for i, b := range a {
		if b == nil {
			b = []byte{}
		}
		out[i] = b
	}
	return out
}

type pqArrayPlan struct {
	planned reflect.Type
	next    pgtype.EncodePlan
}

func (p *pqArrayPlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *pqArrayPlan) Encode(value any, buf []byte) ([]byte, error) {
	s, _ := pqSlice(value)
	if t := reflect.TypeOf(s); t != p.planned {
		return nil, fmt.Errorf("database: a pq array of %v where %v was planned for this parameter", t, p.planned)
	}
	return p.next.Encode(s, buf)
}
