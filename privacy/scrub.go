package privacy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"

	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/eventindex"
	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/outbox"
	"github.com/scoville/scoville/webhooks"
)

// Inserter enqueues a job in a database/sql transaction; the application's River
// inserter satisfies it.
type Inserter interface {
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// ScrubDelays are when, after an erasure, the provider events stored since are
// scrubbed again: the cancellation and the customer's deletion make Stripe send
// events (customer.deleted quotes the e-mail, name and address) that arrive after
// the erasure, and Stripe retries a delivery for up to three days.
var ScrubDelays = []time.Duration{time.Hour, 4 * 24 * time.Hour}

// ScrubArgs is the River job that scrubs the stored provider events of an erased
// customer. It carries only our id for them, which is no personal data.
type ScrubArgs struct {
	CustomerID string `json:"customerId"`
}

// Kind is the River job kind; it is stored with queued jobs, so it never changes.
func (ScrubArgs) Kind() string { return "privacy_scrub" }

// InsertOpts puts scrubs on River's default queue.
func (ScrubArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: river.QueueDefault} }

// enqueueScrubs schedules the later scrubs in tx, the erasure's transaction.
func (p *Service) enqueueScrubs(ctx context.Context, tx *gorm.DB, customerID string) error {
	if p.queue == nil {
		return errors.New("privacy: erasure needs a job queue for the later scrubs")
	}
	sqlTx, err := jobs.SQLTx(tx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, d := range ScrubDelays {
		if _, err := p.queue.InsertTx(ctx, sqlTx, ScrubArgs{CustomerID: customerID}, &river.InsertOpts{ScheduledAt: now.Add(d)}); err != nil {
			return fmt.Errorf("privacy: schedule scrub: %w", err)
		}
	}
	return nil
}

// ScrubWorker runs ScrubArgs jobs.
type ScrubWorker struct {
	river.WorkerDefaults[ScrubArgs]
	p *Service
}

// NewScrubWorker builds the worker on the privacy service.
func NewScrubWorker(p *Service) *ScrubWorker { return &ScrubWorker{p: p} }

// Work scrubs the stored events that name the erased customer by their Stripe ids
// (the customer, their subscriptions, invoices and payments, all kept on the
// pseudonymous records). A customer that is not erased is left alone.
func (w *ScrubWorker) Work(ctx context.Context, job *river.Job[ScrubArgs]) error {
	if uuid.Validate(job.Args.CustomerID) != nil {
		return river.JobCancel(errors.New("privacy: scrub job has no valid customer id"))
	}
	n, err := w.p.scrubErased(ctx, job.Args.CustomerID)
	if err != nil {
		return err
	}
	w.p.logger.LogAttrs(ctx, slog.LevelInfo, "erased customer's provider events scrubbed",
		slog.String("customer_id", job.Args.CustomerID), slog.Int("events", n))
	return nil
}

// scrubErased scrubs, in one transaction, every stored event that names the erased
// customer and returns how many it rewrote.
func (p *Service) scrubErased(ctx context.Context, customerID string) (int, error) {
	if _, err := eventindex.IndexPending(ctx, p.db); err != nil {
		return 0, fmt.Errorf("privacy: scrub: %w", err)
	}
	n := 0
	err := p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		c, err := customers.Get(ctx, tx, customerID)
		if err != nil {
			return fmt.Errorf("privacy: scrub: %w", err)
		}
		if c == nil || c.Issuer != customers.ErasedIssuer {
			return nil
		}
		h, err := p.holdings(ctx, tx, c)
		if err != nil {
			return fmt.Errorf("privacy: scrub: %w", err)
		}
		// Only events are locked here, in id order, waiting for a worker applying
		// one: the event comes first in every writer's lock order.
		events, err := p.events(ctx, tx, h.subjects(c), webhooks.LockWait)
		if err != nil {
			return fmt.Errorf("privacy: scrub: %w", err)
		}
		if n, err = webhooks.ScrubPersonal(ctx, tx, events); err != nil {
			return fmt.Errorf("privacy: scrub: %w", err)
		}
		// A shipment message committed beside the erasure (a path that did not wait
		// for the customer's lock) loses its address here at the latest.
		return outbox.ForgetCustomer(ctx, tx, customerID)
	})
	return n, err
}
