// Package paging implements Relay-style cursors over lists ordered newest first by
// (created_at, id), so pages stay stable while new rows arrive.
package paging

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
)

// Page bounds of API.md: first defaults to DefaultFirst and is capped at MaxFirst.
const (
	DefaultFirst = 20
	MaxFirst     = 100
)

// MaxList bounds the lists that are not connections (Customer.subscriptions): such a
// list holds at most this many items, the newest, and the complexity limit prices it
// as this many.
const MaxList = 25

// Cursor is a position in a (created_at DESC, id DESC) list.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// Encode makes the opaque cursor of a row.
func Encode(createdAt time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(createdAt.UnixMicro(), 10) + ":" + id))
}

// Args validates first and after. A nil cursor means "from the newest".
func Args(first *int, after *string) (limit int, cursor *Cursor, err error) {
	limit = DefaultFirst
	if first != nil {
		if *first < 0 {
			return 0, nil, models.NewUserError(models.UserErrorInvalid, "first must not be negative", "first")
		}
		limit = min(*first, MaxFirst)
	}
	if after == nil || *after == "" {
		return limit, nil, nil
	}
	bad := models.NewUserError(models.UserErrorInvalid, "after is not a cursor from this list", "after")
	if len(*after) > 200 {
		return 0, nil, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(*after)
	if err != nil {
		return 0, nil, bad
	}
	micros, id, ok := strings.Cut(string(raw), ":")
	us, perr := strconv.ParseInt(micros, 10, 64)
	if !ok || perr != nil || !models.ValidID(id) {
		return 0, nil, bad
	}
	return limit, &Cursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, nil
}

// Fetch runs q newest first by (column, id) from the cursor in first/after, and
// returns at most the page's rows and whether more follow. column is a trusted
// column name such as "created_at".
func Fetch[T any](q *gorm.DB, column string, first *int, after *string) ([]T, bool, error) {
	limit, cursor, err := Args(first, after)
	if err != nil {
		return nil, false, err
	}
	if cursor != nil {
		q = q.Where("("+column+", id) < (?, ?)", cursor.CreatedAt, cursor.ID)
	}
	var rows []T
	if err := q.Order(column + " DESC, id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, false, err
	}
	if len(rows) > limit {
		return rows[:limit], true, nil
	}
	return rows, false, nil
}

// Edge is the shape every generated Relay edge of the schema has (models.PaymentEdge,
// models.CustomerEdge...): a node and its cursor.
type Edge[N any] interface {
	~struct {
		Node   N      `json:"node"`
		Cursor string `json:"cursor"`
	}
}

// Conn is the shape every generated Relay connection of the schema has
// (models.PaymentConnection...): edges to E and the page info.
type Conn[E any] interface {
	~struct {
		Edges    []*E             `json:"edges"`
		PageInfo *models.PageInfo `json:"pageInfo"`
	}
}

// Connection shapes a fetched page as the connection C, in the rows' order: pos gives
// a row's place in the list (the time ordered by, and the id), from which its cursor
// is made. The page info says whether more follow and holds the last row's cursor
// (nil on an empty page). Name C only: Connection[models.PaymentConnection](rows,
// more, pos).
func Connection[C Conn[E], E Edge[N], N any](rows []N, more bool, pos func(N) (time.Time, string)) *C {
	edges := make([]*E, 0, len(rows))
	info := &models.PageInfo{HasNextPage: more}
	for _, r := range rows {
		cursor := Encode(pos(r))
		edges = append(edges, &E{Node: r, Cursor: cursor})
		info.EndCursor = &cursor
	}
	return &C{Edges: edges, PageInfo: info}
}

// FetchEach is Fetch for many parents in one statement: for each id in parents, the
// rows of table whose parentColumn is that id, newest first by (column, id), from the
// cursor in first/after, at most the page's rows each. It returns each parent's rows
// (absent when it has none) and whether more follow them. Each parent's page is read
// through the index on (parentColumn, column, id), so the statement costs what the
// pages hold. table, parentTable and the columns are trusted names; parentOf gives a
// row's parent id.
func FetchEach[T any](q *gorm.DB, parentTable, table, parentColumn, column string, parents []string, parentOf func(T) string,
	first *int, after *string,
) (map[string][]T, map[string]bool, error) {
	limit, cursor, err := Args(first, after)
	if err != nil {
		return nil, nil, err
	}
	if len(parents) == 0 {
		return map[string][]T{}, map[string]bool{}, nil
	}
	inner := "SELECT * FROM " + table + " WHERE " + table + "." + parentColumn + " = parent.id"
	var args []any
	if cursor != nil {
		inner += " AND (" + table + "." + column + ", " + table + ".id) < (?, ?)"
		args = append(args, cursor.CreatedAt, cursor.ID)
	}
	inner += " ORDER BY " + table + "." + column + " DESC, " + table + ".id DESC LIMIT ?"
	args = append(args, limit+1, parents)
	var rows []T
	err = q.Raw("SELECT t.* FROM "+parentTable+" AS parent CROSS JOIN LATERAL ("+inner+") AS t WHERE parent.id IN ?"+
		" ORDER BY t."+parentColumn+", t."+column+" DESC, t.id DESC", args...).Scan(&rows).Error
	if err != nil {
		return nil, nil, err
	}
	pages := make(map[string][]T, len(parents))
	for _, r := range rows {
		p := parentOf(r)
		pages[p] = append(pages[p], r)
	}
	more := make(map[string]bool, len(pages))
	for p, page := range pages {
		if len(page) > limit {
			pages[p], more[p] = page[:limit], true
		}
	}
	return pages, more, nil
}
