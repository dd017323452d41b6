package database

import (
	"context"
	"errors"
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
	return placeholderLogger{Interface: gormlogger.NewSlogLogger(logger, gormlogger.Config{
		SlowThreshold:             slow,
		LogLevel:                  gormlogger.Warn,
		IgnoreRecordNotFoundError: true,
		ParameterizedQueries:      true,
	}), slow: slow, level: gormlogger.Warn}
}

// placeholderLogger keeps statements parameterized whatever path logs them, and
// shows PostgreSQL's placeholders as written ($1): gorm's explainer, given no
// values, prints them as $1$. A statement it will not log (fast and successful,
// below Info) costs nothing: its text is never built.
type placeholderLogger struct {
	gormlogger.Interface
	slow  time.Duration
	level gormlogger.LogLevel
}

var explainedPlaceholder = regexp.MustCompile(`\$(\d+)\$`)

func (l placeholderLogger) LogMode(level gormlogger.LogLevel) gormlogger.Interface {
	return placeholderLogger{Interface: l.Interface.LogMode(level), slow: l.slow, level: level}
}

func (l placeholderLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}

func (l placeholderLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if !l.logs(begin, err) {
		return
	}
	if errors.Is(err, context.Canceled) {
		err = nil // at Info: logged as a statement, not as a failure
	}
	l.Interface.Trace(ctx, begin, func() (string, int64) {
		sql, rows := fc()
		return explainedPlaceholder.ReplaceAllString(sql, "$$$1"), rows
	}, err)
}

// logs reports whether gorm's logger would write a line for a statement that began
// at begin and ended with err: failed (a missing record is no failure, nor a
// statement its caller canceled, such as a client that went away), slow, or any
// statement at Info and above.
func (l placeholderLogger) logs(begin time.Time, err error) bool {
	switch {
	case l.level <= gormlogger.Silent:
		return false
	case l.level >= gormlogger.Info:
		return true
	case errors.Is(err, context.Canceled):
		return false
	case err != nil && !errors.Is(err, gormlogger.ErrRecordNotFound):
		return true
	default:
		return l.slow != 0 && time.Since(begin) > l.slow
	}
}
