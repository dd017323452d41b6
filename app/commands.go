package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"gorm.io/gorm"

	"github.com/scoville/scoville/catalog"
	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/httpserver"
)

// shutdownGrace is how long the development issuer waits for in-flight requests.
const shutdownGrace = 5 * time.Second

// Serve runs the API until ctx ends, then drains in-flight requests. Unless
// RUN_WORKERS=false it also works the background queue.
func Serve(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	logger.InfoContext(ctx, "starting", "config", cfg)
	for _, w := range cfg.Warnings() {
		logger.WarnContext(ctx, w)
	}
	a, err := New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	if cfg.RunWorkers {
		if err := a.Start(ctx); err != nil {
			return err
		}
	} else {
		logger.InfoContext(ctx, "RUN_WORKERS=false: jobs are enqueued here and worked by `scoville work`")
	}
	settleHeap()

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR: %w", err)
	}
	errc := make(chan error, 2)
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen on METRICS_ADDR: %w", err)
		}
		msrv := httpserver.NewServer(cfg.MetricsAddr, a.metrics, logger)
		go func() { errc <- httpserver.Serve(ctx, msrv, mln, cfg.ShutdownTimeout) }()
		logger.InfoContext(ctx, "metrics listening", "addr", mln.Addr().String())
	} else if cfg.IsProduction() {
		logger.WarnContext(ctx, "METRICS_ADDR is not set: /metrics is not served (production serves it only on METRICS_ADDR)")
	} else {
		logger.InfoContext(ctx, "METRICS_ADDR is not set: /metrics is served on HTTP_ADDR (development only)")
	}
	srv := httpserver.NewServer(cfg.HTTPAddr, a.handler, logger)
	logger.InfoContext(ctx, "listening", "addr", ln.Addr().String(), "env", string(cfg.Env))
	err = httpserver.Serve(ctx, srv, ln, cfg.ShutdownTimeout)
	logger.InfoContext(context.Background(), "stopped")
	return err
}

// Work runs the background queue without the API until ctx ends, then lets running
// jobs finish (a job cut short is retried). It pairs with servers started with
// RUN_WORKERS=false; any number of either may share one database.
func Work(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	logger.InfoContext(ctx, "starting workers", "config", cfg)
	a, err := New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Start(ctx); err != nil {
		return err
	}
	settleHeap()
	if cfg.MetricsAddr == "" {
		logger.InfoContext(ctx, "working the queue (METRICS_ADDR is not set: no metrics listener)")
		<-ctx.Done()
		return nil
	}
	mln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on METRICS_ADDR: %w", err)
	}
	logger.InfoContext(ctx, "working the queue; metrics listening", "addr", mln.Addr().String())
	return httpserver.Serve(ctx, httpserver.NewServer(cfg.MetricsAddr, a.metrics, logger), mln, cfg.ShutdownTimeout)
}

// Migrate applies pending database migrations, as the schema's owner when
// DATABASE_MIGRATION_URL is set, and returns.
func Migrate(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	return withDB(ctx, cfg, logger, func(_ *gorm.DB, sqlDB *sql.DB) error {
		return migrateSchema(ctx, cfg, sqlDB, logger)
	})
}

// Seed loads the development catalog (with prices at Stripe when
// STRIPE_SECRET_KEY is set). It is refused in production.
func Seed(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	if cfg.IsProduction() {
		return errors.New("seed loads demo data and is refused when APP_ENV=production")
	}
	return withDB(ctx, cfg, logger, func(db *gorm.DB, _ *sql.DB) error {
		var provider catalog.Provider
		if cfg.StripeSecretKey != "" {
			gw, err := newGateway(cfg, logger, options{}, nil)
			if err != nil {
				return err
			}
			provider = gw
		}
		if err := catalog.NewService(db, provider, nil).SeedDevelopment(ctx); err != nil {
			return err
		}
		logger.InfoContext(ctx, "development catalog loaded")
		return nil
	})
}

// withDB runs fn on the database opened for one command, and closes it when fn
// returns.
func withDB(ctx context.Context, cfg *config.Config, logger *slog.Logger, fn func(db *gorm.DB, sqlDB *sql.DB) error) error {
	db, err := openDB(ctx, cfg, logger)
	if err != nil {
		return err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	return fn(db, sqlDB)
}

func openDB(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*gorm.DB, error) {
	return database.Open(ctx, cfg.DatabaseURL.Reveal(), database.Pool{
		MaxOpenConns:    cfg.DBMaxOpenConns,
		MaxIdleConns:    cfg.DBMaxIdleConns,
		ConnMaxLifetime: cfg.DBConnMaxLifetime,
		ConnMaxIdleTime: cfg.DBConnMaxIdleTime,
	}, logger)
}

// migrateSchema applies pending migrations as the schema's owner
// (DATABASE_MIGRATION_URL, else DATABASE_URL's role, runtime) and, when the two
// roles differ, grants runtime's role what the server needs and nothing more.
func migrateSchema(ctx context.Context, cfg *config.Config, runtime *sql.DB, logger *slog.Logger) error {
	if cfg.DatabaseMigrationURL == "" {
		return database.Migrate(ctx, runtime, logger)
	}
	owner, err := database.OpenOwner(ctx, cfg.DatabaseMigrationURL.Reveal())
	if err != nil {
		return err
	}
	defer owner.Close()
	if err := database.Migrate(ctx, owner, logger); err != nil {
		return err
	}
	role, err := database.CurrentRole(ctx, runtime)
	if err != nil {
		return err
	}
	ownerRole, err := database.CurrentRole(ctx, owner)
	if err != nil {
		return err
	}
	if role == ownerRole {
		return nil
	}
	return database.GrantRuntime(ctx, owner, role)
}
