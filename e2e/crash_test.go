package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/app"
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
	require.Equal(t, int64(1), a.count(`SELECT count(*) FROM river_job WHERE kind = 'webhook_events_enqueue' AND state = 'running'`),
		"the batch job the event was stored with was applying it")

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
	newTestApp(t, appOptions{dbURL: dbURL, jobs: true, options: []app.Option{
		app.WithApplierWrapper(func(inner webhooks.Applier) webhooks.Applier { return crashingApplier{inner} }),
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

// crashStepKey marks the context of an apply whose statements are counted.
type crashStepKey struct{}

// crashStep stops an apply right after its k-th SQL statement (once): the
// statement ran, then the apply dies as in a crash (a panic: nothing after it runs,
// the transaction is rolled back).
type crashStep struct {
	k     int
	n     atomic.Int64
	fired atomic.Bool
}

var errCrashStep = errors.New("crash injected after a statement")

// crashStepApplier marks each apply's context with the event's crashStep.
type crashStepApplier struct {
	webhooks.Applier
	steps *sync.Map // provider event id -> *crashStep
}

func (c crashStepApplier) Apply(ctx context.Context, tx *gorm.DB, ev subscriptions.Event, p *subscriptions.Prepared) (subscriptions.Effect, error) {
	if s, ok := c.steps.Load(ev.ProviderEventID); ok {
		ctx = context.WithValue(ctx, crashStepKey{}, s)
		tx = tx.WithContext(ctx)
	}
	return c.Applier.Apply(ctx, tx, ev, p)
}

// TestWebhookCrashAtEveryStepAppliesOnce stops an invoice.paid apply after its
// first statement, then after its second, and so on until the apply finishes
// before the k-th; each time the retried job applies the event exactly once: one
// payment, one shipment, one notification (REL-4).
func TestWebhookCrashAtEveryStepAppliesOnce(t *testing.T) {
	t.Parallel()
	var steps sync.Map
	a := newTestApp(t, appOptions{jobs: true, options: []app.Option{app.WithJobRetryPolicy(fastRetry{}),
		app.WithApplierWrapper(func(inner webhooks.Applier) webhooks.Applier { return crashStepApplier{inner, &steps} })}})
	count := func(db *gorm.DB) {
		s, ok := db.Statement.Context.Value(crashStepKey{}).(*crashStep)
		if ok && s.n.Add(1) == int64(s.k) && s.fired.CompareAndSwap(false, true) {
			panic(errCrashStep)
		}
	}
	afterEveryStatement(t, a.db, "test:crash_step", count)

	f := a.fixture("price_steps", "cus_steps", "sub_steps")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for k := 1; ; k++ {
		require.Less(t, k, 100, "the apply never finished before its k-th statement")
		evt, inv := fmt.Sprintf("evt_step_%d", k), fmt.Sprintf("in_step_%d", k)
		s := &crashStep{k: k}
		steps.Store(evt, s)
		require.Equal(t, 200, a.deliver(webhooktest.Event(evt, "invoice.paid", t0, paidInvoice(f, inv, t0.AddDate(0, k, 0)).Object(), nil)))
		require.Equal(t, "PROCESSED", a.awaitEvent(evt), "k=%d", k)
		require.Equal(t, int64(1), a.count(`SELECT count(*) FROM payments WHERE stripe_invoice_id = ?`, inv), "k=%d", k)
		require.Equal(t, int64(1), a.count(`SELECT count(*) FROM shipments WHERE stripe_invoice_id = ?`, inv), "k=%d", k)
		require.Equal(t, int64(1), a.count(`SELECT count(*) FROM notifications n JOIN payments p ON p.id = n.payment_id WHERE p.stripe_invoice_id = ?`, inv), "k=%d", k)
		if !s.fired.Load() {
			t.Logf("the apply makes %d statements through gorm; it was stopped after each", k-1)
			require.Greater(t, k, 2)
			return
		}
		require.Equal(t, int64(2), a.count(`SELECT attempts FROM webhook_events WHERE provider_event_id = ?`, evt), "k=%d: the stopped attempt, then the one that applied", k)
	}
}
