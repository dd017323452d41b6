package notifications

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
)

// workerBundle is a database with one queued payment_failed notification, and a
// worker whose log lines go to logs.
type workerBundle struct {
	*testBundle
	mailer *fakeMailer
	worker *SendWorker
	logs   *bytes.Buffer
	id     string // the notification
}

const (
	paymentURL = "https://invoice.stripe.com/i/acct_1/test_secret_link"
	address    = "Ana.Example@example.com"
)

func setupWorker(t *testing.T, email string) *workerBundle {
	t.Helper()
	b := setup(t)
	id := b.enqueue(t, Notification{
		CustomerID: b.newCustomer(t, email),
		Kind:       KindPaymentFailed,
		Data:       map[string]string{DataAmount: "$24.00", DataPlan: "Hot box, monthly", DataURL: paymentURL},
		DedupeKey:  "evt_" + uuid.NewString() + ":payment_failed",
	})
	mailer := &fakeMailer{}
	logs := &bytes.Buffer{}
	return &workerBundle{
		testBundle: b, mailer: mailer, id: id, logs: logs,
		worker: NewSendWorker(b.db, mailer, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
}

func (b *workerBundle) work(t *testing.T) error {
	t.Helper()
	return b.worker.Work(context.Background(), &river.Job[SendArgs]{
		JobRow: &rivertype.JobRow{ID: 1, Attempt: 1, Kind: SendArgs{}.Kind()},
		Args:   SendArgs{NotificationID: b.id},
	})
}

func (b *workerBundle) sentAt(t *testing.T) *time.Time {
	t.Helper()
	var sentAt *time.Time
	require.NoError(t, b.db.Raw("SELECT sent_at FROM notifications WHERE id = ?", b.id).Row().Scan(&sentAt))
	return sentAt
}

// requireCleanLogs checks the project rule: no address, name, link or body in a log.
func (b *workerBundle) requireCleanLogs(t *testing.T) {
	t.Helper()
	logs := strings.ToLower(b.logs.String())
	for _, secret := range []string{strings.ToLower(address), "example.com", "ana example", "invoice.stripe.com", "couldn't take your payment"} {
		require.NotContains(t, logs, secret)
	}
}

func TestSendWorker(t *testing.T) {
	t.Parallel()

	t.Run("sends once to the customer's address and records it", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, address)
		require.NoError(t, b.work(t))
		sent := b.mailer.messages()
		require.Len(t, sent, 1)
		require.Equal(t, address, sent[0].To)
		subject, text, err := Compose(KindPaymentFailed, map[string]string{DataAmount: "$24.00", DataPlan: "Hot box, monthly", DataURL: paymentURL})
		require.NoError(t, err)
		require.Equal(t, subject, sent[0].Subject)
		require.Equal(t, text, sent[0].Text)
		require.NotNil(t, b.sentAt(t))

		require.NoError(t, b.work(t), "a re-run after a successful send")
		require.Len(t, b.mailer.messages(), 1, "a re-run must not send again")

		require.Contains(t, b.logs.String(), `"notification_id":"`+b.id+`"`)
		require.Contains(t, b.logs.String(), `"kind":"payment_failed"`)
		b.requireCleanLogs(t)
	})

	t.Run("a mailer error is returned for River to retry, without the address", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, address)
		refused := errors.New("550 5.1.1 <" + strings.ToUpper(address) + ">: mailbox unavailable")
		b.mailer.fail(refused)
		err := b.work(t)
		require.ErrorIs(t, err, refused)
		require.NotContains(t, strings.ToLower(err.Error()), strings.ToLower(address))
		require.Contains(t, err.Error(), "[recipient]")
		require.Nil(t, b.sentAt(t))
		require.Empty(t, b.mailer.messages())

		b.mailer.fail(nil) // the retry
		require.NoError(t, b.work(t))
		require.Len(t, b.mailer.messages(), 1)
		require.NotNil(t, b.sentAt(t))
		b.requireCleanLogs(t)
	})

	t.Run("a customer without an address is skipped and recorded", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, "")
		require.NoError(t, b.work(t))
		require.Empty(t, b.mailer.messages())
		require.NotNil(t, b.sentAt(t))
		require.Contains(t, b.logs.String(), "skipped")
		require.Contains(t, b.logs.String(), b.id)
	})

	t.Run("a missing notification is nothing to do", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, address)
		b.id = uuid.NewString()
		require.NoError(t, b.work(t))
		require.Empty(t, b.mailer.messages())
		require.Contains(t, b.logs.String(), b.id)
	})

	t.Run("a malformed id cancels the job", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, address)
		b.id = "not-a-uuid"
		var cancel *rivertype.JobCancelError
		require.ErrorAs(t, b.work(t), &cancel)
		require.Empty(t, b.mailer.messages())
	})

	t.Run("through River: the queued job decodes, sends and completes", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, address)
		ctx := context.Background()
		tx, err := b.sqlDB.BeginTx(ctx, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tx.Rollback() })

		job := rivertest.RequireInsertedTx[*riverdatabasesql.Driver](ctx, t, tx, &SendArgs{}, nil)
		require.Equal(t, b.id, job.Args.NotificationID)
		res, err := rivertest.NewWorker(t, riverdatabasesql.New(nil), &river.Config{}, river.Worker[SendArgs](b.worker)).
			WorkJob(ctx, t, tx, job.JobRow)
		require.NoError(t, err)
		require.Equal(t, river.EventKindJobCompleted, res.EventKind)
		require.Len(t, b.mailer.messages(), 1)
		require.NotNil(t, b.sentAt(t))
	})
}

func TestScrub(t *testing.T) {
	t.Parallel()
	base := errors.New("rcpt <Ana@Example.com> and again ana@example.COM: rejected; Ünïcode after")
	got := scrub(base, "ana@example.com")
	require.Equal(t, "rcpt <[recipient]> and again [recipient]: rejected; Ünïcode after", got.Error())
	require.ErrorIs(t, got, base)

	untouched := errors.New("timeout")
	require.Same(t, untouched, scrub(untouched, "ana@example.com"))
	require.NoError(t, scrub(nil, "ana@example.com"))
}
