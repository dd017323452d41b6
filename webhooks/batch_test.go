package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/sealing"
	"github.com/scoville/scoville/subscriptions"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// testDB is a fresh migrated database with the development data keys installed, as
// the server has them.
func testDB(t testing.TB) *gorm.DB {
	t.Helper()
	db, owner := dbtest.NewWithOwner(t)
	owners.Store(db, owner)
	t.Cleanup(func() { owners.Delete(db) })
	k, err := sealing.Parse(sealing.DevelopmentKeys)
	if err != nil {
		t.Fatal(err)
	}
	if err := sealing.Install(db, k); err != nil {
		t.Fatal(err)
	}
	return db
}

// owners maps each testDB handle (the application's role) to the schema owner's
// handle on the same database, for tests that make the database refuse writes.
var owners sync.Map

// ownerOf returns the schema owner's handle on db's database.
func ownerOf(t testing.TB, db *gorm.DB) *gorm.DB {
	t.Helper()
	owner, ok := owners.Load(db)
	if !ok {
		t.Fatal("ownerOf: not a testDB handle")
	}
	return owner.(*gorm.DB)
}

// newTestBatcher returns a batcher on a fresh migrated database.
func newTestBatcher(t *testing.T, committers int) (*batcher, *gorm.DB) {
	t.Helper()
	db := testDB(t)
	queue, err := jobs.NewInserter(db, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b := newBatcher(db, queue, committers, DefaultMaxBatch)
	t.Cleanup(b.close)
	return b, db
}

// signedRoute is the route on db; send signs a body with the route's secret, posts
// it and returns the answer.
func signedRoute(t *testing.T, db *gorm.DB) (send func(body []byte) *httptest.ResponseRecorder) {
	t.Helper()
	queue, err := jobs.NewInserter(db, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "whsec_route_test"
	h := NewHandler(db, queue, secret, NewMetrics(prometheus.NewRegistry(), db), slog.New(slog.DiscardHandler))
	t.Cleanup(h.Close)
	return func(body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", webhooktest.Sign(body, secret, time.Now()))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
}

// testEvent is a verified invoice.paid delivery as the handler hands it on.
func testEvent(t *testing.T, id string) (envelope, []byte) {
	t.Helper()
	created := time.Unix(1_700_000_000, 0)
	obj := webhooktest.Object{"id": "in_" + id, "object": "invoice"}
	body := webhooktest.Event(id, "invoice.paid", created, obj, nil)
	var ev envelope
	ev.ID, ev.Object, ev.Type, ev.APIVersion, ev.Created = id, "event", "invoice.paid", APIVersion, created.Unix()
	ev.Data.Object.ID = "in_" + id
	return ev, body
}

// stored counts the events with the given provider ids and the batch jobs' entries
// that point at them.
func stored(t *testing.T, db *gorm.DB, ids ...string) (events, jobsFor int64) {
	t.Helper()
	if err := db.Raw(`SELECT count(*) FROM webhook_events WHERE provider_event_id IN ?`, ids).Scan(&events).Error; err != nil {
		t.Fatal(err)
	}
	err := db.Raw(`SELECT count(*) FROM river_job j, jsonb_array_elements_text(j.args->'eventIds') AS x (id)
		JOIN webhook_events e ON e.id::text = x.id
		WHERE j.kind = ? AND e.provider_event_id IN ?`, EnqueueArgs{}.Kind(), ids).Scan(&jobsFor).Error
	if err != nil {
		t.Fatal(err)
	}
	return events, jobsFor
}

// allJobs counts the events the batch jobs hand out.
func allJobs(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	err := db.Raw(`SELECT coalesce(sum(jsonb_array_length(args->'eventIds')), 0) FROM river_job WHERE kind = ?`,
		EnqueueArgs{}.Kind()).Scan(&n).Error
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// blockEvent holds id's row uncommitted in another transaction, so a batch that
// contains id waits on the unique index until release is called. release(true)
// commits the row, release(false) rolls it back.
func blockEvent(t *testing.T, db *gorm.DB, id string) (release func(commit bool)) {
	t.Helper()
	ev, body := testEvent(t, id)
	tx := db.Begin()
	if tx.Error != nil {
		t.Fatal(tx.Error)
	}
	err := tx.Exec(`INSERT INTO webhook_events (provider_event_id, type, api_version, event_created, payload) VALUES (?, ?, ?, ?, ?)`,
		ev.ID, ev.Type, ev.APIVersion, time.Unix(ev.Created, 0), body).Error
	if err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	var once sync.Once
	release = func(commit bool) {
		once.Do(func() {
			if commit {
				if err := tx.Commit().Error; err != nil {
					t.Error(err)
				}
				return
			}
			tx.Rollback()
		})
	}
	t.Cleanup(func() { release(false) })
	return release
}

// waitPending waits until n deliveries are queued behind a busy committer.
func waitPending(t *testing.T, b *batcher, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatalf("no %d deliveries queued after 30 s", n)
		}
		b.mu.Lock()
		got := len(b.pending)
		b.mu.Unlock()
		if got == n {
			return
		}
		if got > n {
			t.Fatalf("%d deliveries queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Repeats inside one batch give one row and one job; the first delivery stored it,
// the others are answered as repeats.
func TestBatchDuplicatesInsideOneBatch(t *testing.T) {
	b, db := newTestBatcher(t, 1)
	var batch []*delivery
	for _, id := range []string{"evt_b", "evt_a", "evt_b", "evt_c", "evt_a", "evt_b"} {
		ev, body := testEvent(t, id)
		batch = append(batch, &delivery{ev: ev, body: body, done: make(chan outcome, 1)})
	}
	inserted, err := b.write(batch)
	if err != nil {
		t.Fatal(err)
	}
	b.answer(batch, inserted, err)
	var got []bool
	for _, d := range batch {
		o := <-d.done
		if o.err != nil {
			t.Fatal(o.err)
		}
		got = append(got, o.inserted)
	}
	want := []bool{true, true, false, true, false, false}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("inserted per delivery = %v, want %v", got, want)
	}
	if ev, jb := stored(t, db, "evt_a", "evt_b", "evt_c"); ev != 3 || jb != 3 {
		t.Errorf("stored %d events with %d jobs, want 3 and 3", ev, jb)
	}
	if n := allJobs(t, db); n != 3 {
		t.Errorf("%d jobs in all, want 3", n)
	}
	// seq follows the first arrival of each event, not the id order the rows went in.
	var byArrival []string
	if err := db.Raw(`SELECT provider_event_id FROM webhook_events ORDER BY seq`).Scan(&byArrival).Error; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(byArrival) != "[evt_b evt_a evt_c]" {
		t.Errorf("events by seq = %v, want them in arrival order [evt_b evt_a evt_c]", byArrival)
	}
	// The payload is stored sealed, and opens through the model as the body Stripe
	// signed.
	_, body := testEvent(t, "evt_a")
	var row models.WebhookEvent
	if err := db.Take(&row, "provider_event_id = ?", "evt_a").Error; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(row.Payload, body) {
		t.Errorf("payload read back = %q, want the delivered body", row.Payload)
	}
	var raw []byte
	if err := db.Raw(`SELECT payload FROM webhook_events WHERE provider_event_id = 'evt_a'`).Row().Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("in_evt_a")) {
		t.Error("the payload is stored in the clear")
	}
}

// Many concurrent deliveries of the same few events, spread over racing batches:
// every delivery is answered, exactly one per event stored it, and each event has
// one row and one job.
func TestBatchConcurrentDuplicatesAcrossBatches(t *testing.T) {
	b, db := newTestBatcher(t, 3)
	const events, repeats = 20, 6
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		mu     sync.Mutex
		firsts = map[string]int{}
		errs   []error
	)
	var ids []string
	for e := range events {
		id := fmt.Sprintf("evt_race_%02d", e)
		ids = append(ids, id)
		for range repeats {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev, body := testEvent(t, id)
				<-start
				inserted, err := b.store(context.Background(), ev, body)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if inserted {
					firsts[id]++
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d deliveries failed, first: %v", len(errs), errs[0])
	}
	for _, id := range ids {
		if firsts[id] != 1 {
			t.Errorf("%s: %d deliveries reported storing it, want 1", id, firsts[id])
		}
	}
	if ev, jb := stored(t, db, ids...); ev != events || jb != events {
		t.Errorf("stored %d events with %d jobs, want %d and %d", ev, jb, events, events)
	}
	if n := allJobs(t, db); n != events {
		t.Errorf("%d jobs in all, want %d", n, events)
	}
}

// A batch that meets an event another transaction is still writing waits for it;
// when that one commits, the event is a repeat (no second job), and when it rolls
// back, the batch stores it.
func TestBatchWaitsForTheConcurrentWriterOfAnEvent(t *testing.T) {
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprintf("other commits %v", commit), func(t *testing.T) {
			b, db := newTestBatcher(t, 1)
			release := blockEvent(t, db, "evt_held")
			type result struct {
				inserted bool
				err      error
			}
			res := make(chan result, 1)
			go func() {
				ev, body := testEvent(t, "evt_held")
				inserted, err := b.store(context.Background(), ev, body)
				res <- result{inserted, err}
			}()
			// The committer took it and is waiting on the row: queue one more behind it.
			waitRunning(t, b)
			waitBlocked(t, db)
			go func() {
				ev, body := testEvent(t, "evt_after")
				_, _ = b.store(context.Background(), ev, body)
			}()
			waitPending(t, b, 1)
			release(commit)
			r := <-res
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.inserted == commit {
				t.Errorf("inserted = %v after the other writer committed = %v", r.inserted, commit)
			}
			b.close()
			wantJobs := int64(1) // evt_after's
			if !commit {
				wantJobs = 2
			}
			if ev, jb := stored(t, db, "evt_held", "evt_after"); ev != 2 || jb != wantJobs {
				t.Errorf("stored %d events with %d jobs, want 2 and %d", ev, jb, wantJobs)
			}
		})
	}
}

// waitRunning waits until the queue is empty and a committer is at work.
func waitRunning(t *testing.T, b *batcher) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("no committer busy after 30 s")
		}
		b.mu.Lock()
		busy := b.running > 0 && len(b.pending) == 0
		b.mu.Unlock()
		if busy {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// waitBlocked waits until a session of db's database waits for a lock: the committer
// is inside the write that blockEvent holds back, not still finishing an earlier
// batch (which also counts as running).
func waitBlocked(t *testing.T, db *gorm.DB) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("no write blocked after 30 s")
		}
		var n int64
		if err := db.Raw(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// failJobs makes every insert into River's job table fail, as a database refusing
// the write midway would, until the returned function is called.
func failJobs(t *testing.T, db *gorm.DB) (restore func()) {
	t.Helper()
	db = ownerOf(t, db)
	for _, q := range []string{
		`CREATE FUNCTION test_refuse_job() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'refused by the test'; END$$`,
		`CREATE TRIGGER test_refuse_job BEFORE INSERT ON river_job FOR EACH STATEMENT EXECUTE FUNCTION test_refuse_job()`,
	} {
		if err := db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		if err := db.Exec(`DROP TRIGGER test_refuse_job ON river_job`).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// When the database refuses part of a batch (the jobs), the whole batch fails: no
// event of it is stored, not even those whose own insert went through, and every
// delivery in it, repeats included, is answered with the error.
func TestBatchFailureStoresNothingAndFailsEveryDelivery(t *testing.T) {
	b, db := newTestBatcher(t, 1)
	if _, err := b.store(mustEvent(t, "evt_old")); err != nil {
		t.Fatal(err)
	}
	restore := failJobs(t, db)
	var batch []*delivery
	for _, id := range []string{"evt_f1", "evt_f2", "evt_f1", "evt_old"} {
		ev, body := testEvent(t, id)
		batch = append(batch, &delivery{ev: ev, body: body, done: make(chan outcome, 1)})
	}
	inserted, err := b.write(batch)
	if err == nil {
		t.Fatal("the batch was written although the job insert was refused")
	}
	b.answer(batch, inserted, err)
	for i, d := range batch {
		if o := <-d.done; o.err == nil || o.inserted {
			t.Errorf("delivery %d (%s): outcome %+v, want the error", i, d.ev.ID, o)
		}
	}
	if ev, jb := stored(t, db, "evt_f1", "evt_f2"); ev != 0 || jb != 0 {
		t.Errorf("after the failed batch: %d events, %d jobs stored, want none", ev, jb)
	}
	if n := allJobs(t, db); n != 1 {
		t.Errorf("%d jobs in all, want only evt_old's", n)
	}
	// Stripe redelivers; once the database takes writes again, each is stored once.
	restore()
	for _, id := range []string{"evt_f1", "evt_f2", "evt_f1"} {
		if _, err := b.store(mustEvent(t, id)); err != nil {
			t.Fatal(err)
		}
	}
	if ev, jb := stored(t, db, "evt_f1", "evt_f2"); ev != 2 || jb != 2 {
		t.Errorf("after redelivery: %d events, %d jobs, want 2 and 2", ev, jb)
	}
}

func mustEvent(t *testing.T, id string) (context.Context, envelope, []byte) {
	t.Helper()
	ev, body := testEvent(t, id)
	return context.Background(), ev, body
}

// Through the route: a delivery whose batch fails is answered 503 with Retry-After,
// and nothing is stored.
func TestBatchFailureAnswers503(t *testing.T) {
	db := testDB(t)
	route := signedRoute(t, db)
	send := func(id string) *httptest.ResponseRecorder {
		_, body := testEvent(t, id)
		return route(body)
	}
	restore := failJobs(t, db)
	rec := send("evt_http")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	if bytes.Contains(rec.Body.Bytes(), []byte("refused by the test")) {
		t.Errorf("the database's error reached the sender: %s", rec.Body)
	}
	if ev, jb := stored(t, db, "evt_http"); ev != 0 || jb != 0 {
		t.Errorf("%d events, %d jobs stored after a 503, want none", ev, jb)
	}
	restore()
	if rec := send("evt_http"); rec.Code != http.StatusOK {
		t.Fatalf("redelivery: status %d, want 200", rec.Code)
	}
	if ev, jb := stored(t, db, "evt_http"); ev != 1 || jb != 1 {
		t.Errorf("after redelivery: %d events, %d jobs, want 1 and 1", ev, jb)
	}
}

// Closing drains: deliveries queued before close are written and answered, those
// after it are refused with ErrClosed, and no committer is left running.
func TestBatchCloseDrainsQueuedDeliveries(t *testing.T) {
	b, db := newTestBatcher(t, 1)
	release := blockEvent(t, db, "evt_block")
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	storeAsync := func(id string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.store(mustEvent(t, id))
			errs <- err
		}()
	}
	storeAsync("evt_block")
	waitRunning(t, b)
	waitBlocked(t, db)
	queued := []string{"evt_q1", "evt_q2", "evt_q3"}
	for i, id := range queued {
		storeAsync(id)
		waitPending(t, b, i+1)
	}
	closed := make(chan struct{})
	go func() {
		b.close()
		close(closed)
	}()
	for {
		b.mu.Lock()
		c := b.closed
		b.mu.Unlock()
		if c {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := b.store(mustEvent(t, "evt_late")); !errors.Is(err, ErrClosed) {
		t.Errorf("delivery after close: %v, want ErrClosed", err)
	}
	release(false)
	<-closed
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a queued delivery failed: %v", err)
		}
	}
	if b.running != 0 || len(b.pending) != 0 {
		t.Errorf("after close: %d committers running, %d deliveries queued", b.running, len(b.pending))
	}
	all := append([]string{"evt_block"}, queued...)
	if ev, jb := stored(t, db, all...); ev != 4 || jb != 4 {
		t.Errorf("stored %d events with %d jobs, want 4 and 4", ev, jb)
	}
	if ev, _ := stored(t, db, "evt_late"); ev != 0 {
		t.Error("the delivery refused after close was stored")
	}
}

// A request that gives up while its delivery is still queued withdraws it: it is
// not written, and the committer carries on with the rest.
func TestBatchCancelledRequestIsWithdrawn(t *testing.T) {
	b, db := newTestBatcher(t, 1)
	release := blockEvent(t, db, "evt_block")
	done := make(chan error, 1)
	go func() {
		_, err := b.store(mustEvent(t, "evt_block"))
		done <- err
	}()
	waitRunning(t, b)
	waitBlocked(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		ev, body := testEvent(t, "evt_gone")
		_, err := b.store(ctx, ev, body)
		gaveUp <- err
	}()
	waitPending(t, b, 1)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled delivery: %v, want context.Canceled", err)
	}
	waitPending(t, b, 0)
	release(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b.close()
	if ev, _ := stored(t, db, "evt_gone"); ev != 0 {
		t.Error("a withdrawn delivery was stored")
	}
	if ev, jb := stored(t, db, "evt_block"); ev != 1 || jb != 0 {
		t.Errorf("evt_block: %d events, %d jobs; want the other writer's row and no job from the repeat", ev, jb)
	}
}

// A panic while writing (here: no job client) fails the batch like a database error:
// its deliveries are answered, the transaction is rolled back, and the process and
// the committers go on.
func TestBatchPanicFailsTheBatchOnly(t *testing.T) {
	db := testDB(t)
	b := newBatcher(db, nil, 1, DefaultMaxBatch)
	t.Cleanup(b.close)
	if _, err := b.store(mustEvent(t, "evt_panic")); err == nil {
		t.Fatal("a batch whose job insert panicked was answered as stored")
	}
	if ev, _ := stored(t, db, "evt_panic"); ev != 0 {
		t.Error("the event of a batch that panicked was committed")
	}
	// The route is still alive: a repeat of an event already stored needs no job.
	if err := db.Exec(`INSERT INTO webhook_events (provider_event_id, type, event_created, payload) VALUES ('evt_there', 'invoice.paid', now(), '\x7b7d')`).Error; err != nil {
		t.Fatal(err)
	}
	inserted, err := b.store(mustEvent(t, "evt_there"))
	if err != nil || inserted {
		t.Errorf("repeat after a panic: inserted %v, err %v; want a repeat", inserted, err)
	}
}

// A repeat of an event this process saw committed is answered from memory: while
// the database refuses every write to the inbox, the stored event's redelivery is
// still acknowledged as a repeat, and a new event is not.
func TestBatchRepeatOfACommittedEventNeedsNoWrite(t *testing.T) {
	b, db := newTestBatcher(t, 1)
	if inserted, err := b.store(mustEvent(t, "evt_known")); err != nil || !inserted {
		t.Fatalf("first delivery: inserted %v, err %v", inserted, err)
	}
	for _, q := range []string{
		`CREATE FUNCTION test_refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'refused by the test'; END$$`,
		`CREATE TRIGGER test_refuse_event BEFORE INSERT ON webhook_events FOR EACH STATEMENT EXECUTE FUNCTION test_refuse_event()`,
	} {
		if err := ownerOf(t, db).Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	if inserted, err := b.store(mustEvent(t, "evt_known")); err != nil || inserted {
		t.Errorf("repeat of a committed event: inserted %v, err %v; want a repeat without error", inserted, err)
	}
	if _, err := b.store(mustEvent(t, "evt_unknown")); err == nil {
		t.Error("a new event was acknowledged while the database refused it")
	}
	if ev, jb := stored(t, db, "evt_known", "evt_unknown"); ev != 1 || jb != 1 {
		t.Errorf("%d events, %d jobs stored, want evt_known's only", ev, jb)
	}
}

// The memory is bounded: the oldest id is forgotten first, and a forgotten id only
// means a database round trip.
func TestRememberedForgetsTheOldest(t *testing.T) {
	r := newRemembered(2)
	r.add("a")
	r.add("b")
	r.add("a") // already there: not added twice
	r.add("c")
	if r.has("a") || !r.has("b") || !r.has("c") {
		t.Errorf("after a, b, c in a set of 2: a=%v b=%v c=%v, want only b and c", r.has("a"), r.has("b"), r.has("c"))
	}
	if len(r.ids) != 2 {
		t.Errorf("%d ids held, want 2", len(r.ids))
	}
	r.add("d")
	r.add("e")
	if r.has("b") || r.has("c") || !r.has("d") || !r.has("e") || len(r.ids) != 2 {
		t.Errorf("after d, e: %d ids held, want only d and e", len(r.ids))
	}
}

// A delivery that finds every committer busy marks the route saturated; one that
// finds a committer free does not.
func TestBatchMarksSaturationWhenEveryCommitterIsBusy(t *testing.T) {
	b, db := newTestBatcher(t, 1)
	if _, err := b.store(mustEvent(t, "evt_free")); err != nil {
		t.Fatal(err)
	}
	h := &Handler{batches: b}
	if h.Saturated(time.Hour) {
		t.Fatal("saturated after a delivery that found its committer free")
	}
	release := blockEvent(t, db, "evt_busy")
	go func() { _, _ = b.store(mustEvent(t, "evt_busy")) }()
	waitRunning(t, b)
	waitBlocked(t, db)
	go func() { _, _ = b.store(mustEvent(t, "evt_queued")) }()
	waitPending(t, b, 1)
	if !h.Saturated(time.Hour) {
		t.Error("not saturated while a delivery waits for the only committer")
	}
	release(true)
	time.Sleep(5 * time.Millisecond)
	if h.Saturated(time.Millisecond) {
		t.Error("still saturated once the window has passed")
	}
}

// scriptedIntake is saturated for its first n questions.
type scriptedIntake struct {
	mu    sync.Mutex
	n     int
	asked int
}

func (s *scriptedIntake) Saturated(time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked++
	return s.asked <= s.n
}

// A worker holds its event back while the route is saturated and goes on as soon
// as it is not; a cancelled job stops waiting at once.
func TestWorkerYieldsWhileTheRouteIsSaturated(t *testing.T) {
	intake := &scriptedIntake{n: 3}
	start := time.Now()
	yield(context.Background(), intake)
	if intake.asked != 4 {
		t.Errorf("asked %d times, want 4 (three saturated answers, then free)", intake.asked)
	}
	if waited := time.Since(start); waited < 3*yieldWindow {
		t.Errorf("waited %v for three saturated answers, want at least %v", waited, 3*yieldWindow)
	}

	always := &scriptedIntake{n: 1 << 30}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { yield(ctx, always); close(done) }()
	select {
	case <-done:
	case <-time.After(yieldMax):
		t.Error("a cancelled job kept waiting")
	}

	yield(context.Background(), nil) // no route: returns at once
}

// sameSecondFixture is a plan, a customer and an ACTIVE subscription of ours at
// Stripe's sub_same, as the API would have left them.
func sameSecondFixture(t *testing.T, db *gorm.DB) (subscriptionID string) {
	t.Helper()
	var productID, planID string
	if err := db.Raw(`INSERT INTO products (name, description) VALUES ('Hot box', 'Three hot sauces') RETURNING id`).Scan(&productID).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Raw(`INSERT INTO plans (product_id, billing_interval, amount, currency, stripe_price_id)
		VALUES (?, 'MONTH', 2400, 'USD', 'price_same') RETURNING id`, productID).Scan(&planID).Error; err != nil {
		t.Fatal(err)
	}
	stripeCustomer, stripeSub := "cus_same", "sub_same"
	c := models.Customer{Issuer: "https://id.test", Subject: "sub-same", Email: "same@example.com", StripeCustomerID: &stripeCustomer}
	if err := db.Create(&c).Error; err != nil {
		t.Fatal(err)
	}
	sub := models.Subscription{ID: uuid.NewString(), CustomerID: c.ID, PlanID: planID, Status: models.SubscriptionActive,
		StripeSubscriptionID: &stripeSub,
		ShippingAddress:      models.Address{Name: "Buyer", Line1: "1 Pepper St", City: "Austin", PostalCode: "78701", Country: "US"}}
	if err := db.Create(&sub).Error; err != nil {
		t.Fatal(err)
	}
	return sub.ID
}

// Two changes of one subscription from the same second, delivered together so
// that they share a batch, with ids that sort opposite to their arrival (the rows
// go in by id): the one that arrived later is the state that stays, whichever
// order the worker applies them in (API.md: equal times apply in arrival order).
func TestBatchSameSecondEventsApplyInArrivalOrder(t *testing.T) {
	for _, lastFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("later arrival applied first %v", lastFirst), func(t *testing.T) {
			db := testDB(t)
			subscriptionID := sameSecondFixture(t, db)
			queue, err := jobs.NewInserter(db, 0, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			const secret = "whsec_same_second"
			logger := slog.New(slog.DiscardHandler)
			metrics := NewMetrics(prometheus.NewRegistry(), db)
			b := newBatcher(db, queue, 1, DefaultMaxBatch)
			t.Cleanup(b.close)
			h := &Handler{batches: b, secret: secret, metrics: metrics, logger: logger}
			codes := make(chan int, 3)
			post := func(body []byte) {
				go func() {
					req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(body))
					req.Header.Set("Stripe-Signature", webhooktest.Sign(body, secret, time.Now()))
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					codes <- rec.Code
				}()
			}

			// The only committer waits on a row another transaction holds, so the
			// next deliveries queue up, in the order they arrive, for one batch.
			release := blockEvent(t, db, "evt_block")
			_, blocked := testEvent(t, "evt_block")
			post(blocked)
			waitRunning(t, b)
			waitBlocked(t, db)
			created := time.Now().Add(-time.Minute).Truncate(time.Second)
			sub := webhooktest.Subscription{ID: "sub_same", Customer: "cus_same", Price: "price_same", Amount: 2400, Currency: "usd",
				PeriodStart: created.AddDate(0, 0, -3), PeriodEnd: created.AddDate(0, 1, -3)}
			first, last := sub, sub
			first.Status, last.Status = "past_due", "active"
			post(webhooktest.Event("evt_same_z", "customer.subscription.updated", created, first.Object(), nil))
			waitPending(t, b, 1)
			post(webhooktest.Event("evt_same_a", "customer.subscription.updated", created, last.Object(), nil))
			waitPending(t, b, 2)
			release(true)
			for range 3 {
				if code := <-codes; code != http.StatusOK {
					t.Fatalf("a delivery was answered %d", code)
				}
			}

			var seqs []int64
			if err := db.Raw(`SELECT seq FROM webhook_events WHERE provider_event_id IN ('evt_same_z', 'evt_same_a') ORDER BY provider_event_id`).
				Scan(&seqs).Error; err != nil {
				t.Fatal(err)
			}
			if len(seqs) != 2 || seqs[0] <= seqs[1] {
				t.Errorf("seq of evt_same_a (arrived last), evt_same_z (arrived first) = %v; want the later arrival's larger", seqs)
			}

			w := NewWorker(db, subscriptions.NewSyncer(db, nil, queue, subscriptions.NewSyncMetrics(prometheus.NewRegistry()), logger),
				metrics, logger, nil)
			order := []string{"evt_same_z", "evt_same_a"}
			if lastFirst {
				order = []string{"evt_same_a", "evt_same_z"}
			}
			for _, id := range order {
				var rowID string
				if err := db.Raw(`SELECT id FROM webhook_events WHERE provider_event_id = ?`, id).Scan(&rowID).Error; err != nil {
					t.Fatal(err)
				}
				job := &river.Job[ProcessArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 3}, Args: ProcessArgs{EventID: rowID}}
				if err := w.Work(context.Background(), job); err != nil {
					t.Fatal(err)
				}
			}
			var status string
			if err := db.Raw(`SELECT status FROM subscriptions WHERE id = ?`, subscriptionID).Scan(&status).Error; err != nil {
				t.Fatal(err)
			}
			if status != string(models.SubscriptionActive) {
				t.Errorf("subscription %s after both events, want ACTIVE: the state of the later arrival", status)
			}
		})
	}
}
