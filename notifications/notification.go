package notifications

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"

	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/jobs"
)

// Kind names what a notification reports; it picks the message Compose renders.
type Kind string

// The kinds of notification a customer can receive.
const (
	// KindSubscriptionStarted confirms a new subscription.
	KindSubscriptionStarted Kind = "subscription_started"
	// KindSubscriptionChanged confirms any other change: plan change, cancellation
	// scheduled or withdrawn, period renewal.
	KindSubscriptionChanged Kind = "subscription_changed"
	// KindSubscriptionPaused confirms a pause.
	KindSubscriptionPaused Kind = "subscription_paused"
	// KindSubscriptionResumed confirms a resumption.
	KindSubscriptionResumed Kind = "subscription_resumed"
	// KindSubscriptionCanceled confirms that a subscription has ended.
	KindSubscriptionCanceled Kind = "subscription_canceled"
	// KindPaymentSucceeded confirms a payment.
	KindPaymentSucceeded Kind = "payment_succeeded"
	// KindPaymentFailed tells the customer a payment failed and how to fix it (SUB-4).
	KindPaymentFailed Kind = "payment_failed"
	// KindPaymentActionRequired asks the customer to authenticate a payment
	// (3-D Secure).
	KindPaymentActionRequired Kind = "payment_action_required"
	// KindPaymentRefunded confirms a refund.
	KindPaymentRefunded Kind = "payment_refunded"
)

// kinds is every Kind Compose can render; Enqueue refuses any other.
var kinds = []Kind{
	KindSubscriptionStarted, KindSubscriptionChanged, KindSubscriptionPaused,
	KindSubscriptionResumed, KindSubscriptionCanceled, KindPaymentSucceeded,
	KindPaymentFailed, KindPaymentActionRequired, KindPaymentRefunded,
}

// Keys of Notification.Data. Every value is an optional string; a message leaves out
// what it is not given. Times are RFC 3339.
const (
	DataPlan        = "plan"        // plan display name, e.g. "Hot box, monthly"
	DataChange      = "change"      // short human sentence of what changed
	DataAmount      = "amount"      // already formatted money, e.g. "$24.00"
	DataURL         = "url"         // Stripe-hosted page where the customer pays or fixes payment
	DataNextAttempt = "nextAttempt" // RFC 3339 time of Stripe's next automatic retry, "" if none
	DataPeriodEnd   = "periodEnd"   // RFC 3339
	DataResumesAt   = "resumesAt"   // RFC 3339
)

var dataKeys = []string{DataPlan, DataChange, DataAmount, DataURL, DataNextAttempt, DataPeriodEnd, DataResumesAt}

// maxDedupeKey is the column's limit, in characters.
const maxDedupeKey = 300

// Notification is one message owed to a customer.
type Notification struct {
	CustomerID     string
	Kind           Kind
	SubscriptionID *string
	PaymentID      *string
	Data           map[string]string
	// DedupeKey names the cause, e.g. "evt_123:payment_failed": a cause is notified
	// once however often it is processed.
	DedupeKey string
}

// Inserter enqueues a job in a database/sql transaction; *river.Client[*sql.Tx]
// satisfies it, and tests may pass anything that does.
type Inserter interface {
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// SendArgs is the River job that delivers one notification. It carries only the id:
// everything else, the address included, is read when the job runs.
type SendArgs struct {
	NotificationID string `json:"notificationId"`
}

// Kind is the River job kind; it is stored with queued jobs, so it never changes.
func (SendArgs) Kind() string { return "notification_send" }

// InsertOpts puts sends on River's default queue, the one customer-facing work uses.
func (SendArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: river.QueueDefault} }

// errNotInTransaction is returned by Enqueue for a handle outside a transaction: the
// notification must commit, or not, with the change it reports.
var errNotInTransaction = errors.New("notifications: Enqueue needs a *gorm.DB inside db.Transaction")

// Enqueue writes n and the job that sends it in tx, the caller's transaction, so both
// exist exactly when the change they report is committed. A notification whose
// DedupeKey was already used writes nothing and returns nil, and so does one for an
// erased customer (customers.ErasedIssuer): erasure deleted their notifications, and
// a report arriving later must not write, or e-mail, a new one. n is checked first,
// Compose included, so that a queued notification always renders.
func Enqueue(ctx context.Context, tx *gorm.DB, q Inserter, n Notification) error {
	if err := n.validate(); err != nil {
		return err
	}
	sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return errNotInTransaction
	}
	data := n.Data
	if data == nil {
		data = map[string]string{}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("notifications: encode data: %w", err)
	}
	// The customer's KEY SHARE lock first: an erasure holding the customer makes
	// this wait, and the issuer read after the wait is the committed one (an
	// INSERT's own NOT EXISTS reads the snapshot taken before its wait).
	var issuer string
	switch err := sqlTx.QueryRowContext(ctx, `SELECT issuer FROM customers WHERE id = $1::uuid FOR KEY SHARE`,
		n.CustomerID).Scan(&issuer); {
	case err == nil && issuer == customers.ErasedIssuer:
		return nil
	case err != nil && !errors.Is(err, sql.ErrNoRows): // no row: the insert's foreign key refuses it
		return fmt.Errorf("notifications: lock customer: %w", err)
	}
	var id string
	err = sqlTx.QueryRowContext(ctx, `
		INSERT INTO notifications (customer_id, kind, subscription_id, payment_id, data, dedupe_key)
		SELECT $1::uuid, $2::text, $3::uuid, $4::uuid, $5::jsonb, $6::text
		WHERE NOT EXISTS (SELECT 1 FROM customers WHERE id = $1::uuid AND issuer = $7::text)
		ON CONFLICT (dedupe_key) DO NOTHING
		RETURNING id`,
		n.CustomerID, string(n.Kind), n.SubscriptionID, n.PaymentID, string(raw), n.DedupeKey, customers.ErasedIssuer,
	).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // already notified for this cause
	}
	if err != nil {
		return fmt.Errorf("notifications: insert %s: %w", n.Kind, err)
	}
	// Inserted now, or with the other jobs of the transaction (jobs.WithDeferredInserts).
	if err := jobs.InsertTx(ctx, q, sqlTx, SendArgs{NotificationID: id}, nil); err != nil {
		return fmt.Errorf("notifications: enqueue send: %w", err)
	}
	return nil
}

// validate refuses what the database or Compose would refuse later, so that the
// mistake fails the caller's transaction instead of a job nobody watches.
func (n Notification) validate() error {
	if _, err := uuid.Parse(n.CustomerID); err != nil {
		return fmt.Errorf("notifications: customer id %q is not a UUID", n.CustomerID)
	}
	if !slices.Contains(kinds, n.Kind) {
		return fmt.Errorf("notifications: unknown kind %q", n.Kind)
	}
	if err := optionalUUID("subscription", n.SubscriptionID); err != nil {
		return err
	}
	if err := optionalUUID("payment", n.PaymentID); err != nil {
		return err
	}
	if n.DedupeKey == "" || utf8.RuneCountInString(n.DedupeKey) > maxDedupeKey {
		return fmt.Errorf("notifications: dedupe key must be 1 to %d characters", maxDedupeKey)
	}
	for k := range n.Data {
		if !slices.Contains(dataKeys, k) {
			return fmt.Errorf("notifications: unknown data key %q", k)
		}
	}
	if _, _, err := Compose(n.Kind, n.Data); err != nil {
		return err
	}
	return nil
}

func optionalUUID(name string, id *string) error {
	if id == nil {
		return nil
	}
	if _, err := uuid.Parse(*id); err != nil {
		return fmt.Errorf("notifications: %s id %q is not a UUID", name, *id)
	}
	return nil
}
