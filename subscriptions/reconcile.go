package subscriptions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/eventindex"
	"github.com/scoville/scoville/fulfilment"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/payments"
)

// Reconciliation windows. Each run lists what Stripe created since the last
// successful run's start, less Overlap (clock skew, objects that became visible
// late). Invoices are listed further back, InvoiceLookback, because an invoice is
// paid some time after it is created (an hour for renewals, days for retries) and
// Stripe filters listings by creation time only. The first run looks FirstLookback back.
const (
	ReconcileOverlap       = 10 * time.Minute
	ReconcileInvoiceWindow = 72 * time.Hour
	ReconcileFirstLookback = 72 * time.Hour
)

// reconcileSource names the watermark row of the Stripe reconciliation.
const reconcileSource = "stripe"

// Finding kinds, the label of scoville_reconcile_findings_total.
const (
	FindingSubscriptionMissing = "subscription_missing" // ours at Stripe, no row here
	FindingSubscriptionState   = "subscription_state"   // status, plan, period or pause differed
	FindingPaymentMissing      = "payment_missing"      // a paid invoice we had not recorded as paid
	FindingShipmentMissing     = "shipment_missing"     // paid, but its one shipment was missing
	FindingPaymentFailed       = "payment_failed"       // a failed collection attempt we had not recorded
)

// ReconcileGateway is the provider listings reconciliation compares with.
type ReconcileGateway interface {
	ListSubscriptionsSince(ctx context.Context, since time.Time) ([]gateway.Subscription, error)
	ListPaidInvoicesSince(ctx context.Context, since time.Time) ([]gateway.Invoice, error)
	ListOpenInvoicesSince(ctx context.Context, since time.Time) ([]gateway.Invoice, error)
}

// Reconciler finds what the webhooks missed (OPS-5): it lists from Stripe what
// changed since its last run and applies the difference through the Syncer, the
// code events use, so a missed event and a late one end in the same state.
type Reconciler struct {
	db       *gorm.DB
	syncer   *Syncer
	gw       ReconcileGateway
	findings *prometheus.CounterVec
	runs     *prometheus.CounterVec
	lastOK   prometheus.Gauge
	logger   *slog.Logger
	now      func() time.Time
}

// NewReconciler wires the reconciler and registers its counters on reg.
func NewReconciler(db *gorm.DB, syncer *Syncer, gw ReconcileGateway, reg prometheus.Registerer, logger *slog.Logger) *Reconciler {
	r := &Reconciler{
		db: db, syncer: syncer, gw: gw, logger: logger, now: time.Now,
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scoville_reconcile_findings_total",
			Help: "Differences with Stripe that reconciliation found and applied (events the webhooks missed), by kind.",
		}, []string{"kind"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scoville_reconcile_runs_total", Help: "Reconciliation runs, by outcome (ok, failed).",
		}, []string{"outcome"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scoville_reconcile_last_success_timestamp_seconds",
			Help: "When the last successful reconciliation started (Unix time); alert when it falls behind.",
		}),
	}
	if reg != nil {
		reg.MustRegister(r.findings, r.runs, r.lastOK)
	}
	return r
}

// ReconcileReport is what one run saw and found.
type ReconcileReport struct {
	Started       time.Time // the run's read time, the next watermark
	Since         time.Time
	Subscriptions int            // listed
	Invoices      int            // paid and open invoices listed
	Findings      map[string]int // by kind; empty when Stripe and we agreed
}

// Total is the number of findings.
func (r ReconcileReport) Total() int {
	n := 0
	for _, v := range r.Findings {
		n += v
	}
	return n
}

// Run reconciles once. Every read from Stripe happens first: if Stripe cannot be
// reached nothing is applied and the watermark stays, so the retry covers the same
// window. Each object is then applied in its own transaction, idempotently, so two
// runs overlapping, or a run repeating a window, change nothing twice.
func (r *Reconciler) Run(ctx context.Context) (ReconcileReport, error) {
	rep, err := r.run(ctx)
	if err != nil {
		r.runs.WithLabelValues("failed").Inc()
		return rep, err
	}
	r.runs.WithLabelValues("ok").Inc()
	r.lastOK.Set(float64(rep.Started.Unix()))
	return rep, nil
}

func (r *Reconciler) run(ctx context.Context) (ReconcileReport, error) {
	started := r.now()
	since, err := r.since(ctx, started)
	if err != nil {
		return ReconcileReport{}, err
	}
	rep := ReconcileReport{Started: started, Since: since, Findings: map[string]int{}}
	subs, err := r.gw.ListSubscriptionsSince(ctx, since)
	if err != nil {
		return rep, fmt.Errorf("reconcile: list subscriptions: %w", err)
	}
	invoices, err := r.gw.ListPaidInvoicesSince(ctx, since.Add(-ReconcileInvoiceWindow))
	if err != nil {
		return rep, fmt.Errorf("reconcile: list invoices: %w", err)
	}
	open, err := r.gw.ListOpenInvoicesSince(ctx, since.Add(-ReconcileInvoiceWindow))
	if err != nil {
		return rep, fmt.Errorf("reconcile: list open invoices: %w", err)
	}
	for _, inv := range open {
		// Only an invoice Stripe tried and failed to collect is news; a fresh one is not.
		if inv.Status == "open" && inv.AttemptCount > 0 {
			invoices = append(invoices, inv)
		}
	}
	rep.Subscriptions, rep.Invoices = len(subs), len(invoices)
	listed := map[string]*gateway.Subscription{}
	for i := range subs {
		listed[subs[i].ID] = &subs[i]
	}
	// An invoice of a subscription that is neither ours yet nor listed: read it now,
	// with the other reads, so that applying needs no network.
	for _, inv := range invoices {
		if inv.SubscriptionID == "" || listed[inv.SubscriptionID] != nil {
			continue
		}
		gs, _, err := r.syncer.readUnknownSubscription(ctx, inv.SubscriptionID)
		if err != nil {
			return rep, fmt.Errorf("reconcile: %w", err)
		}
		if gs != nil { // nil: ours already, or unknown at Stripe
			listed[gs.ID] = gs
		}
	}

	// Subscriptions first, oldest first, so that their invoices find them.
	ordered := make([]*gateway.Subscription, 0, len(listed))
	for _, gs := range listed {
		ordered = append(ordered, gs)
	}
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].Created.Before(ordered[j].Created) })
	for _, gs := range ordered {
		kind, err := r.subscription(ctx, *gs, started)
		if err != nil {
			return rep, err
		}
		r.found(ctx, &rep, kind, "stripe_subscription_id", gs.ID)
	}
	for _, inv := range invoices {
		if inv.SubscriptionID == "" {
			continue
		}
		apply := r.invoice
		switch inv.Status {
		case "paid":
		case "open":
			apply = r.failedInvoice
		default:
			continue
		}
		kind, err := apply(ctx, inv, listed[inv.SubscriptionID], started)
		if err != nil {
			return rep, err
		}
		r.found(ctx, &rep, kind, "stripe_invoice_id", inv.ID)
	}

	err = r.db.WithContext(ctx).Exec(`INSERT INTO reconciliation_state (name, watermark, last_run_at, last_findings)
		VALUES (?, ?, now(), ?)
		ON CONFLICT (name) DO UPDATE SET watermark = GREATEST(reconciliation_state.watermark, EXCLUDED.watermark),
			last_run_at = now(), last_findings = EXCLUDED.last_findings`, reconcileSource, started.UTC(), rep.Total()).Error
	if err != nil {
		return rep, fmt.Errorf("reconcile: save watermark: %w", err)
	}
	r.logger.InfoContext(ctx, "reconciliation finished", "since", since.Format(time.RFC3339), "subscriptions", rep.Subscriptions,
		"paid_invoices", rep.Invoices, "findings", rep.Total(), "duration_ms", time.Since(started).Milliseconds())
	return rep, nil
}

// since is where this run's window starts.
func (r *Reconciler) since(ctx context.Context, started time.Time) (time.Time, error) {
	var mark time.Time
	err := r.db.WithContext(ctx).Raw(`SELECT watermark FROM reconciliation_state WHERE name = ?`, reconcileSource).Row().Scan(&mark)
	if errors.Is(err, sql.ErrNoRows) {
		return started.Add(-ReconcileFirstLookback).UTC(), nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("reconcile: read watermark: %w", err)
	}
	return mark.Add(-ReconcileOverlap).UTC(), nil
}

// found counts and logs one finding; kind "" is none. Only ids are logged.
func (r *Reconciler) found(ctx context.Context, rep *ReconcileReport, kind, idKey, id string) {
	if kind == "" {
		return
	}
	rep.Findings[kind]++
	r.findings.WithLabelValues(kind).Inc()
	r.logger.WarnContext(ctx, "reconciliation applied what no webhook delivered", "finding", kind, idKey, id)
}

// subscription applies one listed subscription as a read made when the run started.
func (r *Reconciler) subscription(ctx context.Context, gs gateway.Subscription, readAt time.Time) (string, error) {
	var res readResult
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		subjects := []eventindex.Subject{{Kind: eventindex.Subscription, Value: gs.ID}, {Kind: eventindex.StripeCustomer, Value: gs.CustomerID}}
		if id := gs.Metadata[gateway.MetadataCustomerID]; models.ValidID(id) {
			subjects = append(subjects, eventindex.Subject{Kind: eventindex.Customer, Value: id})
		}
		if _, err := eventindex.LockCustomers(ctx, tx, subjects); err != nil {
			return err
		}
		var err error
		res, err = r.syncer.applyRead(ctx, tx, gs, readAt)
		return err
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("reconcile: subscription %s: %w", gs.ID, err)
	case res.sub == nil || !res.changed:
		return "", nil
	case res.created:
		return FindingSubscriptionMissing, nil
	}
	return FindingSubscriptionState, nil
}

// invoice applies one paid invoice through the invoice.paid code (payment, its one
// shipment, the receipt) unless it is fully recorded already.
func (r *Reconciler) invoice(ctx context.Context, inv gateway.Invoice, read *gateway.Subscription, readAt time.Time) (string, error) {
	kind := ""
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		tx = tx.WithContext(ctx)
		if err := lockInvoiceCustomers(ctx, tx, inv); err != nil {
			return err
		}
		paid, complete, err := paidState(tx, inv.ID)
		if err != nil || complete {
			return err
		}
		effect, err := r.syncer.applyInvoicePaid(ctx, tx, readOrigin(readAt, "reconcile"), inv, read)
		if err != nil || effect.Ignored {
			return err
		}
		if !paid {
			// A trial's invoice for nothing records no payment: none was missing.
			if recorded, _, err := paidState(tx, inv.ID); err != nil || !recorded {
				return err
			}
			kind = FindingPaymentMissing
			return nil
		}
		shipped, err := fulfilment.Exists(tx, inv.ID)
		if err != nil {
			return err
		}
		if shipped {
			kind = FindingShipmentMissing
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("reconcile: invoice %s: %w", inv.ID, err)
	}
	return kind, nil
}

// failedInvoice applies a failed collection attempt through the
// invoice.payment_failed code (FAILED payment, PAST_DUE on a renewal, the notice
// telling the customer how to pay) unless that attempt is recorded already.
func (r *Reconciler) failedInvoice(ctx context.Context, inv gateway.Invoice, read *gateway.Subscription, readAt time.Time) (string, error) {
	kind := ""
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		tx = tx.WithContext(ctx)
		if err := lockInvoiceCustomers(ctx, tx, inv); err != nil {
			return err
		}
		var pay models.Payment
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("stripe_invoice_id = ?", inv.ID).Take(&pay).Error
		switch {
		case err == nil:
			return nil // reported already (failed, awaiting authentication, or paid since)
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return fmt.Errorf("lock payment: %w", err)
		}
		// The webhook of this attempt, should it come after all, is older than this
		// read: recorded, with no second notice.
		o := readOrigin(readAt, fmt.Sprintf("reconcile:%s:%d", inv.ID, inv.AttemptCount))
		effect, err := r.syncer.applyInvoiceFailed(ctx, tx, o, false, inv, read)
		if err != nil || effect.Ignored {
			return err
		}
		if err := tx.Where("stripe_invoice_id = ? AND status = ?", inv.ID, models.PaymentFailed).Take(&pay).Error; err == nil {
			kind = FindingPaymentFailed
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("reconcile: open invoice %s: %w", inv.ID, err)
	}
	return kind, nil
}

// paidState reports whether our payment of an invoice is paid (succeeded, or
// refunded since), and complete: paid with its one shipment, or held for a
// mismatch (which ships nothing until support acts). The payment is locked.
func paidState(tx *gorm.DB, invoiceID string) (paid, complete bool, err error) {
	_, paid, complete, err = lockPaidState(tx, invoiceID)
	return paid, complete, err
}

// lockPaidState is paidState, and the payment it locked (nil: none), for the
// caller to go on with.
func lockPaidState(tx *gorm.DB, invoiceID string) (pay *models.Payment, paid, complete bool, err error) {
	pay, err = payments.Lock(tx, "stripe_invoice_id = ?", invoiceID)
	if err != nil || pay == nil || !payments.Paid(pay) {
		return pay, false, false, err
	}
	if pay.Mismatch != nil {
		return pay, true, true, nil
	}
	shipped, err := fulfilment.Exists(tx, invoiceID)
	if err != nil {
		return nil, false, false, err
	}
	return pay, true, shipped, nil
}

// ReconcileArgs is the periodic reconciliation job.
type ReconcileArgs struct{}

// Kind names the job in River.
func (ReconcileArgs) Kind() string { return "stripe_reconcile" }

// InsertOpts keeps at most one run queued or running: a run that overlaps another
// would only repeat its work.
func (ReconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateRetryable, rivertype.JobStateScheduled,
	}}}
}

// ReconcileWorker runs the Reconciler; a failed run is retried with River's backoff.
type ReconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	reconciler *Reconciler
	logger     *slog.Logger
}

// NewReconcileWorker builds the worker.
func NewReconcileWorker(r *Reconciler, logger *slog.Logger) *ReconcileWorker {
	return &ReconcileWorker{reconciler: r, logger: logger}
}

// Timeout leaves a run time to page through a large account; River's default
// (one minute) is meant for short jobs.
func (w *ReconcileWorker) Timeout(*river.Job[ReconcileArgs]) time.Duration { return 15 * time.Minute }

// Work runs one reconciliation.
func (w *ReconcileWorker) Work(ctx context.Context, job *river.Job[ReconcileArgs]) error {
	if _, err := w.reconciler.Run(ctx); err != nil {
		w.logger.WarnContext(ctx, "reconciliation failed; it will be retried", "attempt", job.Attempt, "error", err.Error())
		return err
	}
	return nil
}

// ReconcileJob runs ReconcileWorker every interval on the elected leader. The first
// run is one interval after start, so restarts do not hammer Stripe.
func ReconcileJob(interval time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return ReconcileArgs{}, nil },
		&river.PeriodicJobOpts{ID: "stripe_reconcile"})
}

// lockInvoiceCustomers takes the KEY SHARE lock of the customers inv names, as the
// event worker does (eventindex.LockCustomers), before anything reads whether they
// are erased: an erasure then either committed before (and is seen) or waits for
// this transaction, so nothing personal is written after it.
func lockInvoiceCustomers(ctx context.Context, tx *gorm.DB, inv gateway.Invoice) error {
	_, err := eventindex.LockCustomers(ctx, tx, []eventindex.Subject{
		{Kind: eventindex.Invoice, Value: inv.ID}, {Kind: eventindex.Subscription, Value: inv.SubscriptionID},
		{Kind: eventindex.StripeCustomer, Value: inv.CustomerID}})
	return err
}
