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
)

// TestAPaidInvoiceReadsEachRowOnce checks the apply path of invoice.paid (issue
// 18): the payment is read and locked by one statement, and the plan is read
// once for the checks, the notice and shipment.created, and the endpoints once for
// all of the event's messages, with an endpoint subscribed to every type, and
// again when the same event comes back.
func TestAPaidInvoiceReadsEachRowOnce(t *testing.T) {
	t.Parallel()
	b := newBench(t)
	logStatements(t, b.db)
	require.NoError(t, b.db.Exec(`INSERT INTO webhook_endpoints (id, url, event_types, secret) VALUES (?, ?, '["*"]', '\x00')`,
		uuid.NewString(), "https://3pl.example/in").Error)
	sub := b.subscribe(t)
	created := time.Now().Truncate(time.Second)
	ev := asStored(t, 1, evInvoicePaid, created, paidInvoiceOf(t, b, sub, "in_once", created))
	for _, round := range []string{"first delivery", "replay"} {
		log := &statementLog{}
		ctx := context.WithValue(context.Background(), statementLogKey{}, log)
		effect := b.effect(t, ctx, ev)
		require.False(t, effect.Ignored, round)
		require.Equal(t, 1, log.matching(paymentLocks), "%s: payment locks in:\n%s", round, strings.Join(log.sql, "\n"))
		require.Equal(t, 1, log.matching(planReads), "%s: plan reads in:\n%s", round, strings.Join(log.sql, "\n"))
		require.Equal(t, 1, log.matching(endpointReads), "%s: endpoint reads in:\n%s", round, strings.Join(log.sql, "\n"))
		t.Logf("%s: %d statements through gorm", round, len(log.sql))
	}
	var shipments int64
	require.NoError(t, b.db.Table("shipments").Where("stripe_invoice_id = ?", "in_once").Count(&shipments).Error)
	require.EqualValues(t, 1, shipments)
	var messages int64
	require.NoError(t, b.db.Table("webhook_messages").Where("event_type = ?", "shipment.created").Count(&messages).Error)
	require.EqualValues(t, 1, messages)
}
