package sealing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// SerializerName is the gorm serializer that seals a model field:
// `gorm:"serializer:sealed"`. A string, *string or []byte field is sealed as its
// bytes; any other type as its JSON. A nil pointer or an empty string is stored as
// NULL, and NULL or empty bytes read back as the zero value. The row's
// primary key must be set before the value is written and selected before it is read
// (SELECT * and gorm's own queries do both).
const SerializerName = "sealed"

func init() { schema.RegisterSerializer(SerializerName, serializer{}) }

type ctxKey struct{}

// WithKeyring returns ctx carrying k, for code that runs statements on a gorm handle
// that Install was not called on.
func WithKeyring(ctx context.Context, k *Keyring) context.Context {
	return context.WithValue(ctx, ctxKey{}, k)
}

// FromContext returns the keyring that WithKeyring or Install put in ctx.
func FromContext(ctx context.Context) (*Keyring, bool) {
	if ctx == nil {
		return nil, false
	}
	k, ok := ctx.Value(ctxKey{}).(*Keyring)
	return k, ok && k != nil
}

// errNoKeyring says a sealed column was touched on a handle without keys.
var errNoKeyring = errors.New("sealing: no keyring on this database handle (call sealing.Install)")

// pluginName is the gorm plugin Install registers.
const pluginName = "scoville:sealing"

// plugin carries the keyring on a gorm handle.
type plugin struct{ k *Keyring }

func (p *plugin) Name() string { return pluginName }

func (p *plugin) Initialize(db *gorm.DB) error {
	put := func(tx *gorm.DB) {
		ctx := tx.Statement.Context
		if ctx == nil {
			ctx = context.Background()
		}
		if _, ok := FromContext(ctx); !ok {
			tx.Statement.Context = WithKeyring(ctx, p.k)
		}
	}
	const name = "sealing:keyring"
	cb := db.Callback()
	for _, err := range []error{
		cb.Create().Before("*").Register(name, put),
		cb.Query().Before("*").Register(name, put),
		cb.Update().Before("*").Register(name, put),
		cb.Delete().Before("*").Register(name, put),
		cb.Row().Before("*").Register(name, put),
		cb.Raw().Before("*").Register(name, put),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// Install makes every statement run on db (and on the sessions and transactions
// derived from it) seal and open with k. It is per handle, not per process, so two
// servers in one test binary can use different keys.
func Install(db *gorm.DB, k *Keyring) error {
	if k == nil {
		return errors.New("sealing: Install needs a keyring")
	}
	if err := db.Use(&plugin{k: k}); err != nil {
		return fmt.Errorf("sealing: install: %w", err)
	}
	return nil
}

// FromDB returns the keyring Install put on db, for code that computes a blind index
// or seals a value for a raw statement.
func FromDB(db *gorm.DB) (*Keyring, bool) {
	if db == nil || db.Config == nil {
		return nil, false
	}
	p, ok := db.Config.Plugins[pluginName].(*plugin)
	if !ok {
		return nil, false
	}
	return p.k, true
}

// serializer is the gorm side of SerializerName.
type serializer struct{}

// rowAAD binds the field of the row dst to its table, column and primary key.
func rowAAD(ctx context.Context, field *schema.Field, dst reflect.Value) ([]byte, error) {
	pk := field.Schema.PrioritizedPrimaryField
	if pk == nil {
		return nil, fmt.Errorf("sealing: %s.%s: the model has no primary key to bind to", field.Schema.Table, field.DBName)
	}
	v, zero := pk.ValueOf(ctx, dst)
	id := fmt.Sprint(v)
	if zero || id == "" {
		return nil, fmt.Errorf("sealing: %s.%s: the row's %s must be set (and selected) with the sealed column",
			field.Schema.Table, field.DBName, pk.DBName)
	}
	return AAD(field.Schema.Table, field.DBName, id), nil
}

// Value seals fieldValue for the database.
func (serializer) Value(ctx context.Context, field *schema.Field, dst reflect.Value, fieldValue any) (any, error) {
	k, ok := FromContext(ctx)
	if !ok {
		return nil, errNoKeyring
	}
	var plain []byte
	switch v := fieldValue.(type) {
	case nil:
		return nil, nil
	case string:
		if v == "" {
			return nil, nil
		}
		plain = []byte(v)
	case *string:
		if v == nil {
			return nil, nil
		}
		plain = []byte(*v)
	case []byte:
		if v == nil {
			return nil, nil
		}
		plain = v
	default:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return nil, nil
		}
		var err error
		if plain, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("sealing: %s.%s: encode: %w", field.Schema.Table, field.DBName, err)
		}
	}
	aad, err := rowAAD(ctx, field, dst)
	if err != nil {
		return nil, err
	}
	return k.Seal(aad, plain)
}

// Scan opens dbValue into the field of dst.
func (serializer) Scan(ctx context.Context, field *schema.Field, dst reflect.Value, dbValue any) error {
	target := field.ReflectValueOf(ctx, dst)
	sealed, ok := dbValue.([]byte)
	if !ok && dbValue != nil {
		return fmt.Errorf("sealing: %s.%s: stored value is %T, not bytes", field.Schema.Table, field.DBName, dbValue)
	}
	if len(sealed) == 0 {
		// NULL, or emptied by an erasure: nothing is stored, so there is nothing to open.
		target.Set(reflect.Zero(field.FieldType))
		return nil
	}
	k, ok := FromContext(ctx)
	if !ok {
		return errNoKeyring
	}
	aad, err := rowAAD(ctx, field, dst)
	if err != nil {
		return err
	}
	plain, err := k.Open(aad, sealed)
	if err != nil {
		return fmt.Errorf("%s.%s of row %s: %w", field.Schema.Table, field.DBName, aadID(aad), err)
	}
	switch field.FieldType {
	case reflect.TypeFor[string]():
		target.SetString(string(plain))
	case reflect.TypeFor[*string]():
		s := string(plain)
		target.Set(reflect.ValueOf(&s))
	case reflect.TypeFor[[]byte]():
		target.SetBytes(plain)
	default:
		v := reflect.New(field.FieldType)
		if err := json.Unmarshal(plain, v.Interface()); err != nil {
			return fmt.Errorf("sealing: %s.%s: decode: %w", field.Schema.Table, field.DBName, err)
		}
		target.Set(v.Elem())
	}
	return nil
}

// aadID is the row id at the end of an AAD, for error messages.
func aadID(aad []byte) string {
	for i := len(aad) - 1; i >= 0; i-- {
		if aad[i] == 0 {
			return string(aad[i+1:])
		}
	}
	return ""
}

// SealColumn seals plaintext for a raw statement that writes table.column of the row
// id, with the keyring installed on db: the same bytes the model's sealed field
// writes, for the few writes that do not go through a model (bulk inserts). The row
// id must be the one the statement stores, so generate it in the application.
func SealColumn(db *gorm.DB, table, column, id string, plaintext []byte) ([]byte, error) {
	k, ok := FromDB(db)
	if !ok {
		return nil, errNoKeyring
	}
	if id == "" {
		return nil, fmt.Errorf("sealing: %s.%s: the row id must be set before sealing", table, column)
	}
	return k.Seal(AAD(table, column, id), plaintext)
}

// OpenColumn is SealColumn's inverse, for raw reads.
func OpenColumn(db *gorm.DB, table, column, id string, sealed []byte) ([]byte, error) {
	k, ok := FromDB(db)
	if !ok {
		return nil, errNoKeyring
	}
	plain, err := k.Open(AAD(table, column, id), sealed)
	if err != nil {
		return nil, fmt.Errorf("%s.%s of row %s: %w", table, column, id, err)
	}
	return plain, nil
}
