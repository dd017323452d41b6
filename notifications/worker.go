package notifications

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
)

// Message is one e-mail, ready to send.
type Message struct {
	// ID names the message, the notification's id: the same message sent again (a
	// retry after a crash) carries the same Message-ID, which mail systems and
	// clients use to recognise a duplicate. Empty: a new random Message-ID.
	ID      string
	To      string // bare address
	Subject string
	Text    string // plain-text body, lines separated by "\n"
}

// Mailer delivers messages. An error means the message may not have been delivered,
// and the send is retried.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// SendWorker delivers queued notifications (SendArgs). Delivery is at least once: a
// notification recorded as sent is never sent again, but a crash between the mailer
// accepting a message and the record being written sends it twice.
type SendWorker struct {
	river.WorkerDefaults[SendArgs]
	db     *gorm.DB
	mailer Mailer
	logger *slog.Logger
}

// NewSendWorker builds the worker; a nil logger discards log lines.
func NewSendWorker(db *gorm.DB, mailer Mailer, logger *slog.Logger) *SendWorker {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &SendWorker{db: db, mailer: mailer, logger: logger}
}

// notificationRow is the part of a notifications row the worker reads.
type notificationRow struct {
	CustomerID string
	Kind       string
	Data       []byte
	SentAt     *time.Time
}

// Work sends the notification once. A missing notification or customer address is
// not an error (there is nothing to retry); a mailer error is, and River retries it.
func (w *SendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	id := job.Args.NotificationID
	if _, err := uuid.Parse(id); err != nil {
		return river.JobCancel(errors.New("notifications: job has no valid notification id"))
	}
	var n notificationRow
	err := w.db.WithContext(ctx).Table("notifications").
		Select("customer_id", "kind", "data", "sent_at").
		Where("id = ?", id).Take(&n).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		w.logger.WarnContext(ctx, "notification not sent: no such notification", "notification_id", id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("notifications: load %s: %w", id, err)
	}
	log := w.logger.With("notification_id", id, "kind", n.Kind, "customer_id", n.CustomerID)
	if n.SentAt != nil {
		return nil // sent by an earlier attempt
	}

	var data map[string]string
	if err := json.Unmarshal(n.Data, &data); err != nil {
		log.ErrorContext(ctx, "notification not sent: its data is not a map of strings")
		return river.JobCancel(fmt.Errorf("notifications: %s: data: %w", id, err))
	}
	subject, text, err := Compose(Kind(n.Kind), data)
	if err != nil {
		// Enqueue checked this; only a row written some other way gets here, and a
		// retry cannot fix it.
		log.ErrorContext(ctx, "notification not sent: cannot compose it", "error", err.Error())
		return river.JobCancel(err)
	}

	to, err := w.recipient(ctx, n.CustomerID)
	if err != nil {
		return err
	}
	if to == "" {
		log.InfoContext(ctx, "notification skipped: customer has no e-mail")
		return w.markSent(ctx, id)
	}
	if err := w.mailer.Send(ctx, Message{ID: id, To: to, Subject: subject, Text: text}); err != nil {
		return fmt.Errorf("notifications: send %s: %w", id, scrub(err, to))
	}
	if err := w.markSent(ctx, id); err != nil {
		return err
	}
	log.InfoContext(ctx, "notification sent")
	return nil
}

// recipient is the customer's address as it is now, "" when they have none. It is
// the one place the address is read: it is sealed at rest, and models.Customer's
// sealed field opens it (the row id is selected with it, as the seal requires).
func (w *SendWorker) recipient(ctx context.Context, customerID string) (string, error) {
	var c models.Customer
	err := w.db.WithContext(ctx).Select("id", "email").Take(&c, "id = ?", customerID).Error
	if err != nil {
		return "", fmt.Errorf("notifications: recipient of customer %s: %w", customerID, err)
	}
	return strings.TrimSpace(c.Email), nil
}

func (w *SendWorker) markSent(ctx context.Context, id string) error {
	err := w.db.WithContext(ctx).Exec(
		"UPDATE notifications SET sent_at = now() WHERE id = ? AND sent_at IS NULL", id).Error
	if err != nil {
		return fmt.Errorf("notifications: mark %s sent: %w", id, err)
	}
	return nil
}

// scrubbedError hides the recipient's address in an error that quotes it (an SMTP
// server's "550 <x@y>: no such user"): River logs and stores job errors.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub returns err with every occurrence of addr, in any ASCII case, replaced.
func scrub(err error, addr string) error {
	if err == nil || addr == "" {
		return err
	}
	msg := err.Error()
	lower, needle := asciiLower(msg), asciiLower(addr)
	if !strings.Contains(lower, needle) {
		return err
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, needle)
		if i < 0 {
			b.WriteString(msg)
			break
		}
		b.WriteString(msg[:i])
		b.WriteString("[recipient]")
		msg, lower = msg[i+len(needle):], lower[i+len(needle):]
	}
	return &scrubbedError{msg: b.String(), err: err}
}

// asciiLower lower-cases ASCII letters only, so byte offsets stay those of s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
