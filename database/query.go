package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// ErrQueryInTransaction is Query's refusal of a handle inside a transaction: Query
// takes a connection of the pool, which would not see the transaction's writes.
var ErrQueryInTransaction = errors.New("database: Query reads through the pool; run it on the pool's handle, not a transaction's")

// Query runs a hand-written read, text with PostgreSQL's numbered parameters ($1,
// ...) bound to args, on a connection of db's pool through pgx itself: scan gets
// pgx's rows, decoded straight into the caller's typed destinations, with none of
// database/sql's per-value conversions. The connection is the pool's (no second
// budget of connections), held until scan returns, and its cached prepared
// statements are the same as for every other statement.
//
// The statement runs as one of gorm's raw statements (the processor db.Exec runs),
// so whatever is registered there sees it as it sees any other: the tracing span,
// the slow and failed statement log (placeholders only), the statement counts; the
// rows it read are its rows affected, and the span and the log cover reading them,
// scan's own error included. db must be the pool's handle: inside a transaction
// Query returns ErrQueryInTransaction and runs nothing.
func Query(ctx context.Context, db *gorm.DB, text string, args []any, scan func(pgx.Rows) error) error {
	tx := db.WithContext(ctx).Raw("")
	pool, ok := tx.Statement.ConnPool.(*sql.DB)
	if !ok {
		return ErrQueryInTransaction
	}
	tx.Statement.ConnPool = pgxReader{DB: pool, scan: scan}
	tx.Statement.SQL.WriteString(text)
	tx.Statement.Vars = append(tx.Statement.Vars, args...)
	return tx.Callback().Raw().Execute(tx).Error
}

// pgxReader is the pool as gorm's raw processor sees it during Query: its Exec runs
// the statement on pgx and hands the rows to scan.
type pgxReader struct {
	*sql.DB
	scan func(pgx.Rows) error
}

func (r pgxReader) ExecContext(ctx context.Context, text string, args ...any) (sql.Result, error) {
	conn, err := r.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	var read int64
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("database: the pool's connection is a %T, not pgx's", dc)
		}
		rows, err := c.Conn().Query(ctx, text, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		if err := r.scan(rows); err != nil {
			return err
		}
		rows.Close()
		read = rows.CommandTag().RowsAffected()
		return rows.Err()
	})
	return driver.RowsAffected(read), err
}
