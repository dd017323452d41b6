package sealing

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// Column is one sealed column, Table.Name; its table's primary key is named id, a
// uuid, or a bigint for the tables in bigintKeyed.
type Column struct {
	Table string
	Name  string
}

// Columns is every sealed column in the schema. A test checks that it matches the
// model fields tagged `serializer:sealed`, so re-encryption never misses one.
var Columns = []Column{
	{"customers", "email"},
	{"customers", "name"},
	{"subscriptions", "shipping_address"},
	{"shipments", "address"},
	{"webhook_events", "payload"},
	{"idempotency_keys", "response"}, // written by package idempotency's raw statements
	{"webhook_endpoints", "secret"},
	{"webhook_endpoints", "previous_secret"},
	{"webhook_messages", "payload"},
}

// bigintKeyed are the tables of Columns whose id is a bigint rather than a uuid.
var bigintKeyed = map[string]bool{"idempotency_keys": true}

// ColumnReport counts what re-encryption did to one column.
type ColumnReport struct {
	Column
	// Scanned is every non-NULL value looked at.
	Scanned int
	// Resealed is how many were under an older key and now are under the primary.
	Resealed int
}

// Reencrypt moves every sealed value to the primary key, one column at a time, in
// batches of batchSize rows each committed on its own (rows locked while rewritten,
// so concurrent writers are not overwritten). It is resumable: a run that stops half
// way leaves every value readable, and the next run skips what is already under the
// primary. A value that does not open stops the run with its table, column and row:
// it needs a person, not a retry. progress, when not nil, is called after each batch.
func Reencrypt(ctx context.Context, db *gorm.DB, k *Keyring, batchSize int, progress func(ColumnReport)) ([]ColumnReport, error) {
	if batchSize < 1 {
		return nil, errors.New("sealing: reencrypt: batch size must be at least 1")
	}
	reports := make([]ColumnReport, 0, len(Columns))
	for _, col := range Columns {
		rep := ColumnReport{Column: col}
		after := "00000000-0000-0000-0000-000000000000"
		if bigintKeyed[col.Table] {
			after = "0" // ids are positive
		}
		for {
			n, last, resealed, err := reencryptBatch(ctx, db, k, col, after, batchSize)
			if err != nil {
				return append(reports, rep), err
			}
			rep.Scanned += n
			rep.Resealed += resealed
			if progress != nil && n > 0 {
				progress(rep)
			}
			if n < batchSize {
				break
			}
			after = last
		}
		reports = append(reports, rep)
	}
	return reports, nil
}

func reencryptBatch(ctx context.Context, db *gorm.DB, k *Keyring, col Column, after string, limit int) (n int, last string, resealed int, err error) {
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Identifiers come from Columns, never from input.
		idType := "uuid"
		if bigintKeyed[col.Table] {
			idType = "bigint"
		}
		rows, err := tx.Raw(fmt.Sprintf(`SELECT id::text, %[2]s FROM %[1]s WHERE id > ?::%[3]s AND %[2]s IS NOT NULL
			ORDER BY id LIMIT ? FOR UPDATE`, col.Table, col.Name, idType), after, limit).Rows()
		if err != nil {
			return err
		}
		type row struct {
			id     string
			sealed []byte
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.sealed); err != nil {
				_ = rows.Close()
				return err
			}
			batch = append(batch, r)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range batch {
			n++
			last = r.id
			if id, ok := KeyID(r.sealed); ok && id == k.PrimaryKeyID() {
				continue
			}
			aad := AAD(col.Table, col.Name, r.id)
			plain, err := k.Open(aad, r.sealed)
			if err != nil {
				return fmt.Errorf("%s.%s of row %s: %w", col.Table, col.Name, r.id, err)
			}
			fresh, err := k.Seal(aad, plain)
			if err != nil {
				return err
			}
			if err := tx.Exec(fmt.Sprintf(`UPDATE %s SET %s = ? WHERE id = ?::%s`, col.Table, col.Name, idType), fresh, r.id).Error; err != nil {
				return err
			}
			resealed++
		}
		return nil
	})
	if err != nil {
		return 0, "", 0, fmt.Errorf("sealing: reencrypt %s.%s: %w", col.Table, col.Name, err)
	}
	return n, last, resealed, nil
}

// Census counts, for each sealed column, the non-NULL values per key id (0 for a
// value without Tink's prefix, which we never write), so an operator can see that no
// value is left under a retired key before removing it.
func Census(ctx context.Context, db *gorm.DB) (map[Column]map[uint32]int, error) {
	out := make(map[Column]map[uint32]int, len(Columns))
	for _, col := range Columns {
		var rows []struct {
			Prefix []byte
			N      int
		}
		err := db.WithContext(ctx).Raw(fmt.Sprintf(`SELECT substring(%[2]s FROM 1 FOR %[3]d) AS prefix, count(*) AS n
			FROM %[1]s WHERE %[2]s IS NOT NULL GROUP BY 1`, col.Table, col.Name, tinkPrefixLen)).Scan(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("sealing: census %s.%s: %w", col.Table, col.Name, err)
		}
		m := make(map[uint32]int, len(rows))
		for _, r := range rows {
			id, _ := KeyID(r.Prefix) // 0 for a value without Tink's prefix: not sealed by us
			m[id] += r.N
		}
		out[col] = m
	}
	return out, nil
}
