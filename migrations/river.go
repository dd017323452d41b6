package migrations

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
)

// riverSchema is River's schema version the binary migrates to.
const riverSchema = 6

// RiverVersion names the River schema the binary expects. It is part of the schema's
// identity (test templates are keyed on it), so a River upgrade adds a new step here.
var RiverVersion = fmt.Sprintf("river v0.25.0, schema %d", riverSchema)

// Go returns the migrations that are code, not SQL: River's own schema for the job
// queue, applied through River's migrator as one numbered goose step so that the
// whole schema has one history.
func Go() []*goose.Migration {
	return []*goose.Migration{
		goose.NewGoMigration(5,
			&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error { return river(ctx, db, rivermigrate.DirectionUp) }},
			&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error { return river(ctx, db, rivermigrate.DirectionDown) }},
		),
	}
}

func river(ctx context.Context, db *sql.DB, dir rivermigrate.Direction) error {
	m, err := rivermigrate.New(riverdatabasesql.New(db), nil)
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	opts := &rivermigrate.MigrateOpts{TargetVersion: riverSchema}
	if dir == rivermigrate.DirectionDown {
		opts.TargetVersion = -1
	}
	if _, err := m.Migrate(ctx, dir, opts); err != nil {
		return fmt.Errorf("river schema: %w", err)
	}
	return nil
}
