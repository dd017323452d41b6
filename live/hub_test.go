package live

import (
	"context"
	"database/sql"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database/dbtest"
)

// wait bounds each wait for the hub, so a missing wake-up fails instead of
// hanging. It is not a latency assertion.
const wait = 30 * time.Second

type setup struct {
	hub     *Hub
	db      *gorm.DB
	metrics *Metrics
	app     string // the LISTEN connection's application_name
}

// newSetup is a hub on a fresh database; connect, when set, wraps its Connect.
func newSetup(t *testing.T, connect func(n int, next func(context.Context) (*pgx.Conn, error), ctx context.Context) (*pgx.Conn, error)) setup {
	t.Helper()
	url := dbtest.NewURL(t, "")
	db, err := gorm.Open(postgres.Open(url), &gorm.Config{})
	require.NoError(t, err)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sqlDB.Close() })
	appName := "live-test-" + uuid.NewString()[:8]
	open := func(ctx context.Context) (*pgx.Conn, error) {
		cc, err := pgx.ParseConfig(url)
		if err != nil {
			return nil, err
		}
		cc.RuntimeParams["application_name"] = appName
		return pgx.ConnectConfig(ctx, cc)
	}
	var calls atomic.Int32
	m := NewMetrics(prometheus.NewRegistry())
	h := NewHub(Config{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			n := int(calls.Add(1))
			if connect != nil {
				return connect(n, open, ctx)
			}
			return open(ctx)
		},
		ReconnectDelay: 10 * time.Millisecond,
		Metrics:        m,
	})
	t.Cleanup(h.Close)
	return setup{hub: h, db: db, metrics: m, app: appName}
}

// listening waits until the hub has established n LISTEN connections.
func (s setup) listening(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return testutil.ToFloat64(s.metrics.listens) >= float64(n) }, wait, 5*time.Millisecond)
}

// woken waits for f's wake-up and returns what is pending.
func woken(t *testing.T, f *Follow) ([]string, bool) {
	t.Helper()
	select {
	case <-f.signal:
	case <-time.After(wait):
		t.Fatal("the follow was never woken")
	}
	return f.takePending()
}

// asleep requires that nothing woke f.
func asleep(t *testing.T, f *Follow, why string) {
	t.Helper()
	select {
	case <-f.signal:
		ids, all := f.takePending()
		t.Fatalf("%s: woken with %v (everything %v)", why, ids, all)
	default:
	}
}

func (s setup) announce(t *testing.T, id string, commit bool) {
	t.Helper()
	tx := s.db.Begin()
	require.NoError(t, tx.Error)
	require.NoError(t, Announce(tx, id))
	if commit {
		require.NoError(t, tx.Commit().Error)
	} else {
		require.NoError(t, tx.Rollback().Error)
	}
}

// newBarrierSetup is a listening hub with one caller's follow of "barrier", its
// first push taken: an announcement of "barrier" committed after another shows,
// when it wakes, that the other would have arrived first.
func newBarrierSetup(t *testing.T) (setup, Caller, *Follow) {
	t.Helper()
	s := newSetup(t, nil)
	caller := Caller{Principal: "p", Address: "a"}
	barrier, err := s.hub.Follow(caller, "barrier", "")
	require.NoError(t, err)
	s.listening(t, 1)
	woken(t, barrier) // the first push, merged or not with the one after LISTEN
	return s, caller, barrier
}

// A rolled-back announcement wakes no one; the committed one after it (delivered
// in commit order on the one connection) proves the rolled-back one would have
// arrived first.
func TestRolledBackAnnouncementWakesNoOne(t *testing.T) {
	t.Parallel()
	s, caller, barrier := newBarrierSetup(t)
	f, err := s.hub.Follow(caller, "followed", "")
	require.NoError(t, err)
	_, everything := woken(t, f)
	require.True(t, everything, "a new follow starts with its current state")
	for len(barrier.signal) > 0 {
		woken(t, barrier)
	}

	s.announce(t, "followed", false)
	s.announce(t, "barrier", true)
	ids, _ := woken(t, barrier)
	require.Equal(t, []string{"barrier"}, ids)
	asleep(t, f, "a rolled-back announcement")

	s.announce(t, "followed", true)
	ids, _ = woken(t, f)
	require.Equal(t, []string{"followed"}, ids)
}

// Under WithAnnounceLater, Announce in the Later's transaction only records, and
// AnnounceLater then makes the announcements recorded, each id once, with one
// statement at its commit. An Announce in another transaction, or in the same one
// after AnnounceLater, is made at once: a context that reaches other work loses
// no announcement.
func TestAnnouncementsRecordedLaterAreMadeByAnnounceLater(t *testing.T) {
	t.Parallel()
	s, caller, barrier := newBarrierSetup(t)
	follows := map[string]*Follow{}
	for _, id := range []string{"a", "b", "c", "d"} {
		f, err := s.hub.Follow(caller, id, "")
		require.NoError(t, err)
		woken(t, f)
		follows[id] = f
	}
	for len(barrier.signal) > 0 {
		woken(t, barrier)
	}

	var ctx context.Context
	require.NoError(t, s.db.Transaction(func(tx *gorm.DB) error {
		sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
		require.True(t, ok)
		var later *Later
		ctx, later = WithAnnounceLater(context.Background(), sqlTx)
		tx = tx.WithContext(ctx)
		for _, id := range []string{"a", "b", "a"} {
			if err := Announce(tx, id); err != nil {
				return err
			}
		}
		require.NoError(t, s.db.WithContext(ctx).Transaction(func(other *gorm.DB) error { return Announce(other, "c") }))
		ids, _ := woken(t, follows["c"])
		require.Equal(t, []string{"c"}, ids, "another transaction's announcement, at its commit")
		if err := AnnounceLater(ctx, sqlTx, later, nil); err != nil {
			return err
		}
		return Announce(tx, "d")
	}))
	for _, id := range []string{"a", "b", "d"} {
		ids, _ := woken(t, follows[id])
		require.Equal(t, []string{id}, ids)
	}

	// The context outlives its transaction.
	require.NoError(t, s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return Announce(tx, "a") }))
	ids, _ := woken(t, follows["a"])
	require.Equal(t, []string{"a"}, ids)
}

// A lost LISTEN connection reconnects, and every follower is then woken for its
// whole state: an announcement committed while nobody listened is not lost.
func TestReconnectWakesEveryFollower(t *testing.T) {
	t.Parallel()
	reconnecting, resume := make(chan struct{}), make(chan struct{})
	s := newSetup(t, func(n int, open func(context.Context) (*pgx.Conn, error), ctx context.Context) (*pgx.Conn, error) {
		if n == 2 {
			close(reconnecting)
			select {
			case <-resume:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return open(ctx)
	})
	f, err := s.hub.Follow(Caller{Principal: "p", Address: "a"}, "followed", "")
	require.NoError(t, err)
	s.listening(t, 1)
	for len(f.signal) > 0 {
		woken(t, f)
	}

	var killed int
	require.NoError(t, s.db.Raw(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ?`, s.app).Scan(&killed).Error)
	require.Equal(t, 1, killed)
	select {
	case <-reconnecting:
	case <-time.After(wait):
		t.Fatal("the hub did not reconnect")
	}
	s.announce(t, "followed", true) // nobody listens
	asleep(t, f, "no connection listens")

	close(resume)
	_, everything := woken(t, f)
	require.True(t, everything, "after a reconnect the follower is pushed its current state")
	require.EqualValues(t, 2, testutil.ToFloat64(s.metrics.listens))
}

// Follows and sockets are bounded per principal and per address, and a released
// slot is free again.
func TestBounds(t *testing.T) {
	t.Parallel()
	h := NewHub(Config{
		Connect:                   func(ctx context.Context) (*pgx.Conn, error) { <-ctx.Done(); return nil, ctx.Err() }, // never listens
		MaxOperationsPerPrincipal: 2, MaxOperationsPerAddress: 3, MaxSocketsPerAddress: 1, MaxSocketsPerPrincipal: 1,
	})
	defer h.Close()
	a, err := h.Follow(Caller{"p1", "addr"}, "x", "")
	require.NoError(t, err)
	_, err = h.Follow(Caller{"p1", "addr"}, "", "customer")
	require.NoError(t, err)
	_, err = h.Follow(Caller{"p1", "addr"}, "y", "")
	require.Equal(t, &LimitError{Reason: RefusedOperationsPerCaller}, err)
	_, err = h.Follow(Caller{"p2", "addr"}, "y", "")
	require.NoError(t, err)
	_, err = h.Follow(Caller{"p3", "addr"}, "y", "")
	require.Equal(t, &LimitError{Reason: RefusedOperationsPerAddress}, err)
	a.Close()
	a.Close()
	_, err = h.Follow(Caller{"p3", "addr"}, "y", "")
	require.NoError(t, err, "a closed follow frees its slots once")

	release, err := h.OpenSocket("addr")
	require.NoError(t, err)
	_, err = h.OpenSocket("addr")
	require.Equal(t, &LimitError{Reason: RefusedSocketsPerAddress}, err)
	release()
	release()
	_, err = h.OpenSocket("addr")
	require.NoError(t, err)
	_, err = h.BindSocket("p1")
	require.NoError(t, err)
	_, err = h.BindSocket("p1")
	require.Equal(t, &LimitError{Reason: RefusedSocketsPerPrincipal}, err)
}
