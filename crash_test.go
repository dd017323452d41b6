package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// jobsRecoveryBound is how soon after a process dies every job it was running is
// taken up again (the bound; jobs.RescueAfter and River's intervals meet it).
const jobsRecoveryBound = 60 * time.Second

// crashChildEnv carries the database URL to the child process that crashes.
const crashChildEnv = "SCOVILLE_TEST_CRASH_CHILD_DB"

// TestWebhookCrashMidJobAppliesOnce kills a worker process with SIGKILL in the middle
// of applying an event (its writes made, nothing committed), then shows a new process
// picking the stuck job up and applying the event exactly once (REL-4).
func TestWebhookCrashMidJobAppliesOnce(t *testing.T) {
	if dbURL := os.Getenv(crashChildEnv); dbURL != "" {
		runCrashingWorker(t, dbURL)
		return
	}
	t.Parallel()
	dbURL := dbtest.NewURL(t, "")
	a := newTestApp(t, appOptions{dbURL: dbURL}) // receives, works nothing
	f := a.fixture("price_crash", "cus_crash", "sub_crash")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	require.Equal(t, 200, a.deliver(webhooktest.Event("evt_crash", "invoice.paid", t0, paidInvoice(f, "in_crash", t0).Object(), nil)))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestWebhookCrashMidJobAppliesOnce$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dbURL)
	out, err := cmd.CombinedOutput()
	died := time.Now()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "the worker process should have been killed; output:\n%s", out)
	ws, _ := exit.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "want death by SIGKILL, got %v; output:\n%s", err, out)

	// Nothing of the half-done attempt survived, and the event waits.
	require.Equal(t, int64(0), a.count(`SELECT count(*) FROM payments`))
	require.Equal(t, int64(0), a.count(`SELECT count(*) FROM notifications`))
	require.Equal(t, int64(1), a.count(`SELECT count(*) FROM webhook_events WHERE status = 'RECEIVED'`))
	require.Equal(t, int64(1), a.count(`SELECT count(*) FROM river_job WHERE kind = 'webhook_event_process' AND state = 'running'`))

	// A new process, configured as production is, rescues the stuck job (River's
	// rescuer) within a minute of the death and applies it once.
	b := newTestApp(t, appOptions{dbURL: dbURL, jobs: true})
	require.Eventually(t, func() bool {
		return b.count(`SELECT count(*) FROM webhook_events WHERE status = 'PROCESSED'`) == 1
	}, time.Until(died.Add(jobsRecoveryBound)), 100*time.Millisecond, "the stuck job was not rescued within a minute of the death")
	t.Logf("applied %s after the worker's death", time.Since(died).Round(100*time.Millisecond))
	require.Equal(t, int64(1), b.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id = 'in_crash'`))
	require.Equal(t, int64(1), b.count(`SELECT count(*) FROM shipments WHERE stripe_invoice_id = 'in_crash'`))
	require.Equal(t, int64(1), b.count(`SELECT count(*) FROM notifications`))
	require.Equal(t, int64(2), b.count(`SELECT attempts FROM webhook_events`), "the killed attempt counts; the second applied it")
}

// runCrashingWorker is the child: it works the queue with an applier that dies
// right after making its writes, before the transaction commits.
func runCrashingWorker(t *testing.T, dbURL string) {
	newTestApp(t, appOptions{dbURL: dbURL, jobs: true, overrides: overrides{
		wrapApplier: func(inner webhooks.Applier) webhooks.Applier { return crashingApplier{inner} },
	}})
	time.Sleep(60 * time.Second)
	t.Fatal("the worker never reached the crash point")
}

type crashingApplier struct{ webhooks.Applier }

func (c crashingApplier) Apply(ctx context.Context, tx *gorm.DB, ev subscriptions.Event, p *subscriptions.Prepared) (subscriptions.Effect, error) {
	if _, err := c.Applier.Apply(ctx, tx, ev, p); err != nil {
		return subscriptions.Effect{}, err
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
