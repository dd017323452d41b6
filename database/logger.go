package database

import (
	"context"
	"log/slog"
	"regexp"
	"time"

	gormlogger "gorm.io/gorm/logger"
)

// slowQueryThreshold is how long a statement runs before gorm reports it.
const slowQueryThreshold = 500 * time.Millisecond

func init() {
	// gorm's Scan records its statement through a recorder that ignores the
	// configured logger's ParamsFilter and would interpolate the values; this is
	// the hook gorm gives to change that, process-wide, before any query runs.
	gormlogger.RecorderParamsFilter = func(_ context.Context, sql string, _ ...any) (string, []any) {
		return sql, nil
	}
}

// newGormLogger sends gorm's slow-query and error reports to slog. Statements are
// logged with their placeholders only (ParameterizedQueries, on every path including
// Scan): gorm never interpolates values, so nothing a customer typed reaches a log
// through a slow or failed statement; the error text of a failed one goes through
// the masking handler like every other line.
func newGormLogger(logger *slog.Logger, slow time.Duration) gormlogger.Interface {
	return placeholderLogger{gormlogger.NewSlogLogger(logger, gormlogger.Config{
		SlowThreshold:             slow,
		LogLevel:                  gormlogger.Warn,
		IgnoreRecordNotFoundError: true,
		ParameterizedQueries:      true,
	})}
}

// placeholderLogger keeps statements parameterized whatever path logs them, and
// shows PostgreSQL's placeholders as written ($1): gorm's explainer, given no
// values, prints them as $1$.
type placeholderLogger struct{ gormlogger.Interface }

var explainedPlaceholder = regexp.MustCompile(`\$(\d+)\$`)

func (l placeholderLogger) LogMode(level gormlogger.LogLevel) gormlogger.Interface {
	return placeholderLogger{l.Interface.LogMode(level)}
}

func (l placeholderLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}

func (l placeholderLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	l.Interface.Trace(ctx, begin, func() (string, int64) {
		sql, rows := fc()
		return explainedPlaceholder.ReplaceAllString(sql, "$$$1"), rows
	}, err)
}
