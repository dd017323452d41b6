package webhooks

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// processJobs lists the event ids of the ProcessArgs jobs on the webhooks queue.
func processJobs(t *testing.T, b *batcher) []string {
	t.Helper()
	var ids []string
	err := b.db.Raw(`SELECT args->>'eventId' FROM river_job WHERE kind = ? AND queue = 'webhooks' ORDER BY 1`,
		ProcessArgs{}.Kind()).Scan(&ids).Error
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// The jobs stored batches come with give each of their events one ProcessArgs job;
// when the database refuses those, the attempt fails whole, for River to retry.
func TestEnqueueWorkerGivesEachStoredEventItsJob(t *testing.T) {
	b, db := newTestBatcher(t, 1)
	for _, id := range []string{"evt_a", "evt_b", "evt_c"} {
		if _, err := b.store(mustEvent(t, id)); err != nil {
			t.Fatal(err)
		}
	}
	var raw []string
	if err := db.Raw(`SELECT args::text FROM river_job WHERE kind = ? ORDER BY id`, EnqueueArgs{}.Kind()).Scan(&raw).Error; err != nil {
		t.Fatal(err)
	}
	var want []string
	if err := db.Raw(`SELECT id::text FROM webhook_events ORDER BY 1`).Scan(&want).Error; err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || len(want) != 3 {
		t.Fatalf("%d batch jobs for %d events, want some for 3", len(raw), len(want))
	}

	w := NewEnqueueWorker(db, b.queue, NewMetrics(prometheus.NewRegistry(), nil), nil)
	run := func(r string) error {
		job := &river.Job[EnqueueArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 3}}
		if err := json.Unmarshal([]byte(r), &job.Args); err != nil {
			t.Fatal(err)
		}
		return w.Work(context.Background(), job)
	}

	restore := failJobs(t, db)
	if err := run(raw[0]); err == nil {
		t.Error("the attempt succeeded while the database refused the jobs")
	}
	restore()
	if got := processJobs(t, b); len(got) != 0 {
		t.Errorf("a refused attempt left jobs for %v", got)
	}

	for _, r := range raw {
		if err := run(r); err != nil {
			t.Fatal(err)
		}
	}
	got := processJobs(t, b)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("event jobs for %v, want one for each of %v", got, want)
	}
}

// After the last attempt, the batch's events that still wait are FAILED with the
// error, where support finds them and can replay them; one already applied keeps
// its status.
func TestEnqueueWorkerFailsTheBatchEventsAfterTheLastAttempt(t *testing.T) {
	b, db := newTestBatcher(t, 1)
	for _, id := range []string{"evt_a", "evt_b"} {
		if _, err := b.store(mustEvent(t, id)); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	if err := db.Raw(`SELECT id::text FROM webhook_events ORDER BY provider_event_id`).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`UPDATE webhook_events SET status = 'PROCESSED' WHERE provider_event_id = 'evt_b'`).Error; err != nil {
		t.Fatal(err)
	}
	metrics := NewMetrics(prometheus.NewRegistry(), nil)
	w := NewEnqueueWorker(db, b.queue, metrics, nil)
	restore := failJobs(t, db)
	defer restore()
	for attempt := 1; attempt <= 2; attempt++ {
		job := &river.Job[EnqueueArgs]{JobRow: &rivertype.JobRow{ID: 1, Attempt: attempt, MaxAttempts: 2}, Args: EnqueueArgs{EventIDs: ids}}
		if err := w.Work(context.Background(), job); err == nil {
			t.Fatalf("attempt %d succeeded while the database refused the jobs", attempt)
		}
		var statuses []string
		if err := db.Raw(`SELECT status || ' ' || coalesce(last_error, '') FROM webhook_events ORDER BY provider_event_id`).
			Scan(&statuses).Error; err != nil {
			t.Fatal(err)
		}
		if attempt == 1 && statuses[0] != "RECEIVED " {
			t.Errorf("after a first failed attempt evt_a is %q, want still RECEIVED", statuses[0])
		}
		if attempt == 2 && !strings.HasPrefix(statuses[0], "FAILED not queued: ") {
			t.Errorf("after the last attempt evt_a is %q, want FAILED with the error", statuses[0])
		}
		if statuses[1] != "PROCESSED " {
			t.Errorf("evt_b became %q, want PROCESSED kept", statuses[1])
		}
		// Counted as failed once, when it became FAILED; evt_b not at all.
		if got, want := testutil.ToFloat64(metrics.processed.WithLabelValues("invoice.paid", "failed")), float64(attempt-1); got != want {
			t.Errorf("after attempt %d: %v failed events counted, want %v", attempt, got, want)
		}
	}
}
