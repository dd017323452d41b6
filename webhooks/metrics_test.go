package webhooks

import (
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
)

// statementLog records every SQL statement gorm sends through db.
type statementLog struct {
	mu   sync.Mutex
	sqls []string
}

func recordStatements(t *testing.T, db *gorm.DB) *statementLog {
	t.Helper()
	l := &statementLog{}
	rec := func(tx *gorm.DB) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.sqls = append(l.sqls, tx.Statement.SQL.String())
	}
	cb := db.Callback()
	require.NoError(t, cb.Query().After("gorm:query").Register("test:record_query", rec))
	require.NoError(t, cb.Row().After("gorm:row").Register("test:record_row", rec))
	require.NoError(t, cb.Raw().After("gorm:raw").Register("test:record_raw", rec))
	return l
}

func (l *statementLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.sqls
	l.sqls = nil
	return out
}

// countOfATable is COUNT(*) read straight off a table (every row it matches), as
// opposed to a count of a bounded subquery.
var countOfATable = regexp.MustCompile(`(?i)count\(\s*[*\w]*\s*\)\s+FROM\s+"?[a-z_]`)

// TestScrapesCountBoundedIndexRangesOnly: a scrape reads the backlog gauges with
// queries bounded by gaugeCap, never a COUNT(*) over a table, and still reports the
// exact backlog below the cap.
func TestScrapesCountBoundedIndexRangesOnly(t *testing.T) {
	t.Parallel()
	db := testDB(t)
	now := time.Now().UTC()
	for i, st := range []models.WebhookEventStatus{models.WebhookReceived, models.WebhookReceived, models.WebhookProcessed} {
		require.NoError(t, db.Create(&models.WebhookEvent{
			ProviderEventID: "evt_gauge_" + strconv.Itoa(i), Type: "invoice.paid", APIVersion: "2023-10-16",
			EventCreated: now, Payload: []byte(`{}`), Status: st, ReceivedAt: now,
		}).Error)
	}
	log := recordStatements(t, db)
	reg := prometheus.NewRegistry()
	NewMetrics(reg, db)

	for range 3 {
		_, err := reg.Gather()
		require.NoError(t, err)
	}
	sqls := log.take()
	require.Len(t, sqls, 6, "two gauges, three scrapes: %q", sqls)
	for _, q := range sqls {
		require.NotRegexp(t, countOfATable, q, "a scrape counted a whole table")
		require.Contains(t, q, "LIMIT "+strconv.Itoa(gaugeCap), "every scrape query is bounded")
	}
	require.Equal(t, 2.0, gaugeValue(t, reg, "scoville_webhook_queue_depth"))
	require.Equal(t, 0.0, gaugeValue(t, reg, "scoville_jobs_waiting"))
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}
