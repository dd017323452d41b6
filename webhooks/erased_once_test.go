package webhooks

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// erasedAsker asks, while applying, whether the event's customer and a customer
// the event does not name are erased, as the subscription code does.
type erasedAsker struct {
	customer, other string
	answers         []bool
}

func (a *erasedAsker) Prepare(context.Context, subscriptions.Event) (*subscriptions.Prepared, error) {
	return &subscriptions.Prepared{}, nil
}

func (a *erasedAsker) Apply(ctx context.Context, tx *gorm.DB, _ subscriptions.Event, _ *subscriptions.Prepared) (subscriptions.Effect, error) {
	for _, id := range []string{a.customer, a.other} {
		erased, err := customers.Erased(ctx, tx, id)
		if err != nil {
			return subscriptions.Effect{}, err
		}
		a.answers = append(a.answers, erased)
	}
	return subscriptions.Effect{Outcome: "asked"}, nil
}

// TestTheWorkerPassesOnWhatItsLockReadOfErasure checks that the erasure status
// the worker read while locking an event's customers answers customers.Erased in
// the apply without another statement (issue 18), for a live and an erased
// customer alike, while a customer the event does not name is still read.
func TestTheWorkerPassesOnWhatItsLockReadOfErasure(t *testing.T) {
	for _, erased := range []bool{false, true} {
		b, db := newTestBatcher(t, 1)
		issuer := "https://idp.test"
		if erased {
			issuer = customers.ErasedIssuer
		}
		stripeID := "cus_lock"
		named := models.Customer{Issuer: issuer, Subject: "named", Email: "n@example.test", StripeCustomerID: &stripeID}
		require.NoError(t, db.Create(&named).Error)
		other := models.Customer{Issuer: customers.ErasedIssuer, Subject: "other", Email: "o@example.test"}
		require.NoError(t, db.Create(&other).Error)

		created := time.Unix(1_700_000_000, 0)
		var ev envelope
		ev.ID, ev.Object, ev.Type, ev.APIVersion, ev.Created = "evt_lock", "event", "invoice.paid", APIVersion, created.Unix()
		ev.Data.Object.ID = "in_lock"
		body := webhooktest.Event(ev.ID, ev.Type, created, webhooktest.Object{"id": "in_lock", "object": "invoice", "customer": stripeID}, nil)
		_, err := b.store(context.Background(), ev, body)
		require.NoError(t, err)
		var row models.WebhookEvent
		require.NoError(t, db.Omit("payload").Take(&row, "provider_event_id = ?", ev.ID).Error)

		var reads atomic.Int32
		require.NoError(t, db.Callback().Query().After("gorm:query").Register("test:customer_reads", func(tx *gorm.DB) {
			if strings.Contains(tx.Statement.SQL.String(), `FROM "customers"`) {
				reads.Add(1)
			}
		}))
		asker := &erasedAsker{customer: named.ID, other: other.ID}
		w := NewWorker(db, asker, NewMetrics(prometheus.NewRegistry(), nil), slog.New(slog.DiscardHandler), nil)
		require.NoError(t, w.Work(context.Background(), &river.Job[ProcessArgs]{
			JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, MaxAttempts: 3},
			Args:   ProcessArgs{EventID: row.ID},
		}))
		require.Equal(t, []bool{erased, true}, asker.answers)
		require.EqualValues(t, 1, reads.Load(), "only the customer the event does not name is read again")
	}
}
