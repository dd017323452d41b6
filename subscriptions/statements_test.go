package subscriptions

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// statementLog keeps the SQL gorm runs for contexts that carry it.
type statementLog struct {
	mu  sync.Mutex
	sql []string
}

type statementLogKey struct{}

// logStatements registers, on db, callbacks that append every statement run with
// a context carrying a *statementLog to it.
func logStatements(t *testing.T, db *gorm.DB) {
	t.Helper()
	record := func(tx *gorm.DB) {
		l, ok := tx.Statement.Context.Value(statementLogKey{}).(*statementLog)
		if !ok {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.sql = append(l.sql, tx.Statement.SQL.String())
	}
	cb := db.Callback()
	require.NoError(t, cb.Create().After("gorm:create").Register("test:log_create", record))
	require.NoError(t, cb.Query().After("gorm:query").Register("test:log_query", record))
	require.NoError(t, cb.Update().After("gorm:update").Register("test:log_update", record))
	require.NoError(t, cb.Delete().After("gorm:delete").Register("test:log_delete", record))
	require.NoError(t, cb.Row().After("gorm:row").Register("test:log_row", record))
	require.NoError(t, cb.Raw().After("gorm:raw").Register("test:log_raw", record))
}

// matching counts the statements that match re.
func (l *statementLog) matching(re *regexp.Regexp) int {
	n := 0
	for _, s := range l.sql {
		if re.MatchString(s) {
			n++
		}
	}
	return n
}

var (
	paymentLocks  = regexp.MustCompile(`(?is)FROM\s+"?payments"?\b.*FOR UPDATE`)
	planReads     = regexp.MustCompile(`(?is)FROM\s+"?plans"?\b`)
	endpointReads = regexp.MustCompile(`(?is)FROM\s+"?webhook_endpoints"?\b`)
	outboxWrites  = regexp.MustCompile(`(?is)INSERT\s+INTO\s+"?webhook_(messages|deliveries)"?\b`)
)

// TestAPaidInvoiceReadsEachRowOnce checks the apply path of invoice.paid (issue
// 18): the payment is read and locked by one statement, and the plan is read
// once for the checks, the notice and shipment.created, and the endpoints once for
// all of the event's messages, with an endpoint subscribed to every type, and
// again when the same event comes back. Each message is written with its
// delivery by one statement.
func TestAPaidInvoiceReadsEachRowOnce(t *testing.T) {
	t.Parallel()
	b := newBench(t)
	logStatements(t, b.db)
	require.NoError(t, b.db.Exec(`INSERT INTO webhook_endpoints (id, url, event_types, secret) VALUES (?, ?, '["*"]', '\x00')`,
		uuid.NewString(), "https://3pl.example/in").Error)
	sub := b.subscribe(t)
	created := time.Now().Truncate(time.Second)
	ev := asStored(t, 1, evInvoicePaid, created, paidInvoiceOf(t, b, sub, "in_once", created))
	// The messages written: payment.succeeded and shipment.created first; the
	// replay tries payment.succeeded again (found written) and ships nothing new.
	writes := map[string]int{"first delivery": 2, "replay": 1}
	for _, round := range []string{"first delivery", "replay"} {
		log := &statementLog{}
		ctx := context.WithValue(context.Background(), statementLogKey{}, log)
		effect := b.effect(t, ctx, ev)
		require.False(t, effect.Ignored, round)
		require.Equal(t, 1, log.matching(paymentLocks), "%s: payment locks in:\n%s", round, strings.Join(log.sql, "\n"))
		require.Equal(t, 1, log.matching(planReads), "%s: plan reads in:\n%s", round, strings.Join(log.sql, "\n"))
		require.Equal(t, 1, log.matching(endpointReads), "%s: endpoint reads in:\n%s", round, strings.Join(log.sql, "\n"))
		require.Equal(t, writes[round], log.matching(outboxWrites), "%s: message writes in:\n%s", round, strings.Join(log.sql, "\n"))
		t.Logf("%s: %d statements through gorm", round, len(log.sql))
	}
	var shipments int64
	require.NoError(t, b.db.Table("shipments").Where("stripe_invoice_id = ?", "in_once").Count(&shipments).Error)
	require.EqualValues(t, 1, shipments)
	var messages int64
	require.NoError(t, b.db.Table("webhook_messages").Where("event_type = ?", "shipment.created").Count(&messages).Error)
	require.EqualValues(t, 1, messages)
}

// TestAPaidInvoiceOfAnEarlierPlanShipsThatPlan checks the plan read once when the
// invoice bills plan A while the subscription is now on plan B: shipment.created
// names plan A, the plan paid for, by id and by name.
func TestAPaidInvoiceOfAnEarlierPlanShipsThatPlan(t *testing.T) {
	t.Parallel()
	b := newBench(t)
	require.NoError(t, b.db.Exec(`INSERT INTO webhook_endpoints (id, url, event_types, secret) VALUES (?, ?, '["*"]', '\x00')`,
		uuid.NewString(), "https://3pl.example/in").Error)
	sub := b.subscribe(t)
	created := time.Now().Truncate(time.Second)
	inv := paidInvoiceOf(t, b, sub, "in_earlier_plan", created)
	var a, other struct{ ID, Name string }
	require.NoError(t, b.db.Raw(`SELECT plans.id, products.name FROM plans JOIN products ON products.id = plans.product_id WHERE plans.id = ?`, sub.PlanID).Scan(&a).Error)
	require.NoError(t, b.db.Raw(`SELECT plans.id, products.name FROM plans JOIN products ON products.id = plans.product_id
		WHERE plans.id <> ? AND products.name <> ? ORDER BY plans.id LIMIT 1`, a.ID, a.Name).Scan(&other).Error)
	require.NotEmpty(t, other.ID)
	require.NoError(t, b.db.Exec(`UPDATE subscriptions SET plan_id = ? WHERE id = ?`, other.ID, sub.ID).Error)

	effect := b.effect(t, context.Background(), asStored(t, 1, evInvoicePaid, created, inv))
	require.False(t, effect.Ignored)
	var msg sealedMessage
	require.NoError(t, b.db.Where("event_type = ?", "shipment.created").Take(&msg).Error)
	require.Contains(t, string(msg.Payload), `"planId":"`+a.ID+`"`)
	require.Contains(t, string(msg.Payload), `"planName":"`+a.Name+`"`)
}

// sealedMessage is an outbox message row read with its payload opened.
type sealedMessage struct {
	ID        string `gorm:"type:uuid;primaryKey"`
	EventType string
	Payload   []byte `gorm:"serializer:sealed"`
}

func (sealedMessage) TableName() string { return "webhook_messages" }
