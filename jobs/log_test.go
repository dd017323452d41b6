package jobs

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestQuietLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := quiet(slog.New(slog.NewJSONHandler(&buf, nil)))

	logger.Info("Election change received")
	// River's periodic enqueuer, stopped within its first second as leader.
	logger.Error("maintenance.PeriodicJobEnqueuer: Error starting transaction", "error", context.Canceled.Error())
	// Its job scheduler, stopped inside its transaction (database/sql rolled it back).
	logger.Error("maintenance.JobScheduler: Error scheduling jobs", "error", sql.ErrTxDone)
	require.Empty(t, buf.String(), "River's info lines and a stop's cancelled context are not the product's news")

	// A job's failure keeps its level, whatever ended it.
	logger.Error("jobexecutor.JobExecutor: Job errored", "error", context.Canceled.Error())
	require.Contains(t, buf.String(), `"level":"ERROR"`)
	buf.Reset()
	logger.Error("maintenance.JobRescuer: Error rescuing jobs", "error", errors.New("connection refused").Error())
	require.Contains(t, buf.String(), `"level":"ERROR"`)
	require.Contains(t, buf.String(), "connection refused")
	buf.Reset()
	logger.Error("jobexecutor.JobExecutor: Job errored", "error", sql.ErrTxDone)
	require.Contains(t, buf.String(), `"level":"ERROR"`, "only a maintenance service's line is demoted")
	buf.Reset()
	logger.Warn("producer: slow fetch")
	require.Contains(t, buf.String(), `"level":"WARN"`)
}
