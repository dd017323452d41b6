package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// CompleteManyTx marks the running jobs ids of client completed in tx, in one
// statement: what river.JobCompleteTx does for one job (River's own query, through
// its pilot), for a transaction that applies the work of several jobs at once. If
// tx rolls back, none is completed. A job that does not exist is an error, and the
// caller must then roll tx back: which of its jobs was missing is not told apart.
//
// River marks its pilot as not a stable API: an upgrade that changes it breaks the
// build here, not the behaviour.
func CompleteManyTx(ctx context.Context, tx *sql.Tx, client *Client, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	n := len(ids)
	p := &riverdriver.JobSetStateIfRunningManyParams{
		ID: ids, Attempt: make([]*int, n), ErrData: make([][]byte, n), FinalizedAt: make([]*time.Time, n),
		MetadataDoMerge: make([]bool, n), MetadataUpdates: make([][]byte, n), ScheduledAt: make([]*time.Time, n),
		State: make([]rivertype.JobState, n),
	}
	now := time.Now().UTC()
	for i, id := range ids {
		done := riverdriver.JobSetStateCompleted(id, now, nil)
		p.Attempt[i], p.ErrData[i], p.FinalizedAt[i], p.ScheduledAt[i], p.State[i] = done.Attempt, done.ErrData, done.FinalizedAt, done.ScheduledAt, done.State
	}
	rows, err := client.Pilot().JobSetStateIfRunningMany(ctx, client.Driver().UnwrapExecutor(tx), p)
	if err != nil {
		return fmt.Errorf("jobs: complete %d jobs: %w", n, err)
	}
	if len(rows) != n {
		return fmt.Errorf("jobs: complete: %d of %d jobs found", len(rows), n)
	}
	return nil
}
