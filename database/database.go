// Package database owns the connection to PostgreSQL, the one source of truth, and the
// schema it must have. Every query in the product goes through the *gorm.DB it opens.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/scoville/scoville/migrations"
)

// Pool bounds the connection pool; zero values take the defaults below.
type Pool struct {
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	ConnMaxIdleTime time.Duration
}

func (p Pool) withDefaults() Pool {
	if p.MaxOpenConns <= 0 {
		p.MaxOpenConns = 20
	}
	if p.MaxIdleConns <= 0 || p.MaxIdleConns > p.MaxOpenConns {
		p.MaxIdleConns = p.MaxOpenConns / 2
	}
	if p.ConnMaxLifetime <= 0 {
		p.ConnMaxLifetime = 30 * time.Minute
	}
	if p.ConnMaxIdleTime <= 0 {
		p.ConnMaxIdleTime = 5 * time.Minute
	}
	return p
}

// Open connects through gorm's pgx driver and checks that the server answers. The
// DSN is never logged or echoed in errors: it carries the password.
func Open(ctx context.Context, dsn string, pool Pool, logger *slog.Logger) (*gorm.DB, error) {
	pool = pool.withDefaults()
	db, err := gorm.Open(postgres.New(postgres.Config{
		DSN:          dsn,
		OptionOpenDB: []stdlib.OptionOpenDB{stdlib.OptionBeforeConnect(withoutDescriptionCache), stdlib.OptionAfterConnect(nativeArrays)},
	}), &gorm.Config{
		Logger:                 newGormLogger(logger, slowQueryThreshold),
		SkipDefaultTransaction: true,
		TranslateError:         true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, errors.New("database: cannot open DATABASE_URL (check its format)")
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	sqlDB.SetMaxOpenConns(pool.MaxOpenConns)
	sqlDB.SetMaxIdleConns(pool.MaxIdleConns)
	sqlDB.SetConnMaxLifetime(pool.ConnMaxLifetime)
	sqlDB.SetConnMaxIdleTime(pool.ConnMaxIdleTime)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("database: PostgreSQL at DATABASE_URL does not answer: %w", err)
	}
	return db, nil
}

// Ping reports whether the database answers within ctx; readiness uses it.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Migrate applies every pending migration under a PostgreSQL advisory lock, so several
// instances starting at once apply each migration exactly once. It is the only way the
// product changes its schema (no AutoMigrate).
func Migrate(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker), goose.WithGoMigrations(migrations.Go()...))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	results, err := provider.Up(ctx)
	for _, r := range results {
		logger.InfoContext(ctx, "migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
