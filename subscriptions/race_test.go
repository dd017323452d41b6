package subscriptions

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"pgregory.net/rapid"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/catalog"
	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/gateway/stripefake"
	"github.com/scoville/scoville/idempotency"
	"github.com/scoville/scoville/jobs"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// Plans of the development catalog, all in USD.
var benchPlans = []string{
	"4d0c6f1e-0000-4000-8000-000000000101", // mild, monthly
	"4d0c6f1e-0000-4000-8000-000000000201", // hot, monthly
	"4d0c6f1e-0000-4000-8000-000000000202", // hot, quarterly
	"4d0c6f1e-0000-4000-8000-000000000301", // inferno, monthly
}

// bench is the subscription service and the syncer on a real database, in front of
// the stateful fake Stripe, with every answer to a change recorded.
type bench struct {
	db        *gorm.DB
	fake      *stripefake.Server
	svc       *Service
	admin     *Admin
	syncer    *Syncer
	gw        *recorder
	principal *auth.Principal
	prices    map[string]string // Stripe price id -> plan id
	planPrice map[string]string // plan id -> Stripe price id
	seq       atomic.Int64      // arrival order of events, as the inbox numbers them
}

func newBench(t testing.TB) *bench {
	t.Helper()
	ctx := context.Background()
	db := dbtest.NewSealed(t)
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	fake.SetNewSubscriptionStatus("active")
	stripe, err := gateway.NewStripe(gateway.Config{SecretKey: "sk_test_123", APIBase: fake.URL})
	require.NoError(t, err)
	require.NoError(t, catalog.NewService(db, stripe, nil).SeedDevelopment(ctx))
	logger := slog.New(slog.DiscardHandler)
	queue, err := jobs.NewInserter(db, 0, logger)
	require.NoError(t, err)
	syncer := NewSyncer(db, stripe, queue, NewSyncMetrics(nil), logger)
	rec := &recorder{Gateway: stripe, stripe: stripe}
	idem := idempotency.NewStore(db)
	b := &bench{
		db: db, fake: fake, syncer: syncer, gw: rec,
		svc:       NewService(db, rec, syncer, customers.NewService(db), idem, Config{}, logger),
		admin:     NewAdmin(db, rec, syncer, idem, queue, logger),
		principal: &auth.Principal{Issuer: "https://id.example", Subject: "racer", Email: "racer@example.com"},
		prices:    map[string]string{}, planPrice: map[string]string{},
	}
	var plans []models.Plan
	require.NoError(t, db.Find(&plans).Error)
	for _, p := range plans {
		b.prices[*p.StripePriceID], b.planPrice[p.ID] = p.ID, *p.StripePriceID
	}
	return b
}

// recorder is the gateway of the service, keeping Stripe's answers to changes and
// running between: between Stripe's answer and its store, a test's hook.
type recorder struct {
	Gateway
	stripe  *gateway.Stripe
	mu      sync.Mutex
	answers []gateway.Subscription
	between func(gateway.Subscription)
}

func (r *recorder) answered(gs gateway.Subscription, err error) (gateway.Subscription, error) {
	if err != nil {
		return gs, err
	}
	r.mu.Lock()
	r.answers = append(r.answers, gs)
	hook := r.between
	r.mu.Unlock()
	if hook != nil {
		hook(gs)
	}
	return gs, nil
}

func (r *recorder) take() []gateway.Subscription {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.answers
	r.answers = nil
	return out
}

func (r *recorder) RefundPayment(ctx context.Context, key string, in gateway.RefundInput) (gateway.Refund, error) {
	return r.stripe.RefundPayment(ctx, key, in)
}

func (r *recorder) ChangeSubscriptionPrice(ctx context.Context, key, subID string, in gateway.ChangePriceInput) (gateway.Subscription, error) {
	return r.answered(r.Gateway.ChangeSubscriptionPrice(ctx, key, subID, in))
}

func (r *recorder) PauseSubscription(ctx context.Context, key, subID string, resumesAt *time.Time) (gateway.Subscription, error) {
	return r.answered(r.Gateway.PauseSubscription(ctx, key, subID, resumesAt))
}

func (r *recorder) ResumeSubscription(ctx context.Context, key, subID string) (gateway.Subscription, error) {
	return r.answered(r.Gateway.ResumeSubscription(ctx, key, subID))
}

func (r *recorder) CancelSubscription(ctx context.Context, key, subID string, atPeriodEnd bool) (gateway.Subscription, error) {
	return r.answered(r.Gateway.CancelSubscription(ctx, key, subID, atPeriodEnd))
}

var benchKeys atomic.Int64

func nextKey(op string) string { return fmt.Sprintf("%s-%d", op, benchKeys.Add(1)) }

// subscribe gives the bench's customer a new active subscription.
func (b *bench) subscribe(t require.TestingT) *models.Subscription {
	res, err := b.svc.Create(context.Background(), b.principal, models.CreateSubscriptionInput{
		PlanID: benchPlans[1], IdempotencyKey: nextKey("create"),
		ShippingAddress: &models.Address{Name: "Ada", Line1: "1 Pepper Lane", City: "Berlin", PostalCode: "10115", Country: "DE"},
	})
	require.NoError(t, err)
	require.Empty(t, res.UserErrors)
	require.Equal(t, models.SubscriptionActive, res.Subscription.Status)
	return res.Subscription
}

// report is a subscription as Stripe reported it, reduced to what we keep of it.
type report struct {
	Status            models.SubscriptionStatus
	PlanID            string
	CancelAtPeriodEnd bool
	PeriodEnd         int64
	PausedUntil       int64
}

func (b *bench) reportOf(gs gateway.Subscription) report {
	r := report{Status: gs.APIStatus(), PlanID: b.prices[gs.PriceID], CancelAtPeriodEnd: gs.CancelAtPeriodEnd, PeriodEnd: gs.CurrentPeriodEnd.Unix()}
	if gs.PausedUntil != nil && gs.PauseBehavior != "" {
		r.PausedUntil = gs.PausedUntil.Unix()
	}
	return r
}

func rowReport(sub *models.Subscription) report {
	r := report{Status: sub.Status, PlanID: sub.PlanID, CancelAtPeriodEnd: sub.CancelAtPeriodEnd}
	if sub.CurrentPeriodEnd != nil {
		r.PeriodEnd = sub.CurrentPeriodEnd.Unix()
	}
	if sub.PausedUntil != nil {
		r.PausedUntil = sub.PausedUntil.Unix()
	}
	return r
}

// event is a customer.subscription.* event Stripe sends about sub in state st.
type event struct {
	Event
	report report
}

func (b *bench) event(sub *models.Subscription, created time.Time, status string, planID string, cancelAtEnd, paused bool, periodEnd time.Time) event {
	typ := evSubUpdated
	if status == "canceled" {
		typ = evSubDeleted
	}
	obj := webhooktest.Subscription{
		ID: *sub.StripeSubscriptionID, Price: b.planPrice[planID], Status: status, Amount: 100, Currency: "usd",
		PeriodStart: periodEnd.AddDate(0, -1, 0), PeriodEnd: periodEnd, CancelAtPeriodEnd: cancelAtEnd, Paused: paused,
		Metadata: map[string]string{metadataSubscriptionID: sub.ID},
	}.Object()
	raw, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	gs, err := gateway.SubscriptionFromJSON(raw)
	if err != nil {
		panic(err)
	}
	return event{
		Event:  Event{ID: nextKey("evt"), ProviderEventID: nextKey("evt_"), Type: typ, Created: created.Truncate(time.Second), Object: raw},
		report: b.reportOf(gs),
	}
}

// deliver applies an event as the webhook worker does: numbered on arrival,
// prepared, then applied in a transaction. It returns the event as numbered.
func (b *bench) deliver(ctx context.Context, ev Event) (Event, error) {
	ev.Seq = b.seq.Add(1)
	p, err := b.syncer.Prepare(ctx, ev)
	if err != nil {
		return ev, err
	}
	return ev, b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		_, err := b.syncer.Apply(ctx, tx, ev, p)
		return err
	})
}

func (b *bench) row(t require.TestingT, id string) *models.Subscription {
	var sub models.Subscription
	require.NoError(t, b.db.Take(&sub, "id = ?", id).Error)
	return &sub
}

// refused reports whether err refused a change with user errors only; any other
// error is returned.
func refused(err error) (bool, error) {
	ues, rest := models.UserErrorsOf(err)
	return len(ues) > 0, rest
}

// TestMutationsAndEventsKeepTheNewestReport runs random customer changes and Stripe
// events on one subscription, all at once in a shuffled order, and checks that the
// subscription ends as the newest report says: the newest event when one is newer
// than every answer (events here are created an hour ahead or behind), else the
// answer of a change asked in the last second any was, else the newest old event.
// No answer may undo a newer event, and no older event an answer.
func TestMutationsAndEventsKeepTheNewestReport(t *testing.T) {
	t.Parallel()
	b := newBench(t)
	ctx := context.Background()
	rapid.Check(t, func(rt *rapid.T) {
		sub := b.subscribe(rt)
		b.gw.take()
		now := time.Now()
		statuses := []string{"active", "past_due", "unpaid", "trialing", "canceled"}
		type applied struct {
			ev     Event
			report report
		}
		var (
			mu        sync.Mutex
			events    []applied
			addresses = []models.Address{sub.ShippingAddress}
			ops       []func() error
		)
		for i := range rapid.IntRange(1, 10).Draw(rt, "ops") {
			switch kind := rapid.SampledFrom([]string{"pause", "resume", "cancel", "plan", "address", "event"}).Draw(rt, fmt.Sprint("op", i)); kind {
			case "pause":
				var resumeAt *time.Time
				if rapid.Bool().Draw(rt, fmt.Sprint("resumeAt", i)) {
					at := now.Add(48 * time.Hour).Truncate(time.Second)
					resumeAt = &at
				}
				ops = append(ops, func() error {
					_, err := b.svc.Pause(ctx, b.principal, models.PauseSubscriptionInput{SubscriptionID: sub.ID, ResumeAt: resumeAt, IdempotencyKey: nextKey("pause")})
					_, err = refused(err)
					return err
				})
			case "resume":
				ops = append(ops, func() error {
					_, err := b.svc.Resume(ctx, b.principal, models.ResumeSubscriptionInput{SubscriptionID: sub.ID, IdempotencyKey: nextKey("resume")})
					_, err = refused(err)
					return err
				})
			case "cancel":
				atEnd := rapid.Bool().Draw(rt, fmt.Sprint("atPeriodEnd", i))
				ops = append(ops, func() error {
					_, err := b.svc.Cancel(ctx, b.principal, models.CancelSubscriptionInput{SubscriptionID: sub.ID, AtPeriodEnd: atEnd, IdempotencyKey: nextKey("cancel")})
					_, err = refused(err)
					return err
				})
			case "plan":
				plan := rapid.SampledFrom(benchPlans).Draw(rt, fmt.Sprint("plan", i))
				ops = append(ops, func() error {
					_, err := b.svc.ChangePlan(ctx, b.principal, models.ChangeSubscriptionPlanInput{SubscriptionID: sub.ID, PlanID: plan, IdempotencyKey: nextKey("plan")})
					_, err = refused(err)
					return err
				})
			case "address":
				addr := models.Address{Name: "Ada", Line1: fmt.Sprintf("%d Pepper Lane", i+2), City: "Berlin", PostalCode: "10115", Country: "DE"}
				ops = append(ops, func() error {
					_, err := b.svc.UpdateAddress(ctx, b.principal, models.UpdateShippingAddressInput{SubscriptionID: sub.ID, Address: &addr, IdempotencyKey: nextKey("address")})
					no, err := refused(err)
					if err == nil && !no {
						mu.Lock()
						addresses = append(addresses, addr)
						mu.Unlock()
					}
					return err
				})
			case "event":
				hours := time.Duration(rapid.SampledFrom([]int{-1, 1}).Draw(rt, fmt.Sprint("ahead", i))) * time.Hour
				created := now.Add(hours + time.Duration(rapid.IntRange(0, 3).Draw(rt, fmt.Sprint("second", i)))*time.Second)
				ev := b.event(sub, created, rapid.SampledFrom(statuses).Draw(rt, fmt.Sprint("status", i)),
					rapid.SampledFrom(benchPlans).Draw(rt, fmt.Sprint("eventPlan", i)),
					rapid.Bool().Draw(rt, fmt.Sprint("cancelAtEnd", i)), rapid.Bool().Draw(rt, fmt.Sprint("paused", i)),
					now.AddDate(0, 1, rapid.IntRange(0, 30).Draw(rt, fmt.Sprint("periodEnd", i))).Truncate(time.Second))
				ops = append(ops, func() error {
					numbered, err := b.deliver(ctx, ev.Event)
					mu.Lock()
					events = append(events, applied{numbered, ev.report})
					mu.Unlock()
					return err
				})
			}
		}
		ops = rapid.Permutation(ops).Draw(rt, "order")
		askedFrom := time.Now().Truncate(time.Second)
		errs := make([]error, len(ops))
		var wg sync.WaitGroup
		for i, op := range ops {
			wg.Go(func() { errs[i] = op() })
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(rt, err)
		}
		askedUntil := time.Now()
		answers := b.gw.take()

		got := b.row(rt, sub.ID)
		newest := func(ahead bool) *applied {
			var best *applied
			for i := range events {
				e := &events[i]
				if e.ev.Created.After(now) != ahead {
					continue
				}
				if best == nil || e.ev.Created.After(best.ev.Created) || (e.ev.Created.Equal(best.ev.Created) && e.ev.Seq > best.ev.Seq) {
					best = e
				}
			}
			return best
		}
		switch ahead, behind := newest(true), newest(false); {
		case ahead != nil:
			require.Equal(rt, ahead.report, rowReport(got), "the newest event stands, whatever answered around it")
			require.True(rt, got.ProviderUpdatedAt.Equal(ahead.ev.Created))
			require.Equal(rt, ahead.ev.Seq, *got.ProviderEventSeq)
		case len(answers) > 0:
			// An answer applies as a read of the second it was asked in (seq 0); of
			// answers asked in the same second, the last stored stands.
			require.NotNil(rt, got.ProviderUpdatedAt)
			require.Zero(rt, *got.ProviderEventSeq, "an answer, not an older event, stands")
			stamp := *got.ProviderUpdatedAt
			require.False(rt, stamp.Before(askedFrom) || stamp.After(askedUntil), "stamped when it was asked")
			var candidates []report
			for _, gs := range answers {
				candidates = append(candidates, b.reportOf(gs))
			}
			require.Contains(rt, candidates, rowReport(got), "the subscription is as one answer said")
		case behind != nil:
			require.Equal(rt, behind.report, rowReport(got), "the newest event stands")
		}
		require.True(rt, slices.ContainsFunc(addresses, func(a models.Address) bool { return a.Line1 == got.ShippingAddress.Line1 }),
			"the address is one the customer gave")
	})
}

// TestAnEventAppliedWhileStripeAnswersStands applies, for each change, a newer
// event at the worst moment: after Stripe has answered the change and before the
// answer is stored. The event's state and its place in the order stand; the
// change's answer, older, is not stored over it.
func TestAnEventAppliedWhileStripeAnswersStands(t *testing.T) {
	t.Parallel()
	b := newBench(t)
	ctx := context.Background()
	staff := &auth.Principal{Issuer: "https://id.example", Subject: "staff", Roles: []auth.Role{auth.RoleAdmin}}
	cases := []struct {
		name   string
		status string // of the event
		change func(sub *models.Subscription) (*Result, error)
	}{
		{"pause, then deleted", "canceled", func(sub *models.Subscription) (*Result, error) {
			return b.svc.Pause(ctx, b.principal, models.PauseSubscriptionInput{SubscriptionID: sub.ID, IdempotencyKey: nextKey("pause")})
		}},
		{"cancel at period end, then past due", "past_due", func(sub *models.Subscription) (*Result, error) {
			return b.svc.Cancel(ctx, b.principal, models.CancelSubscriptionInput{SubscriptionID: sub.ID, AtPeriodEnd: true, IdempotencyKey: nextKey("cancel")})
		}},
		{"plan change, then deleted", "canceled", func(sub *models.Subscription) (*Result, error) {
			return b.svc.ChangePlan(ctx, b.principal, models.ChangeSubscriptionPlanInput{SubscriptionID: sub.ID, PlanID: benchPlans[2], IdempotencyKey: nextKey("plan")})
		}},
		{"resume, then past due", "past_due", func(sub *models.Subscription) (*Result, error) {
			_, err := b.svc.Pause(ctx, b.principal, models.PauseSubscriptionInput{SubscriptionID: sub.ID, IdempotencyKey: nextKey("pause")})
			require.NoError(t, err)
			return b.svc.Resume(ctx, b.principal, models.ResumeSubscriptionInput{SubscriptionID: sub.ID, IdempotencyKey: nextKey("resume")})
		}},
		{"staff cancel at period end, then past due", "past_due", func(sub *models.Subscription) (*Result, error) {
			return b.admin.Cancel(ctx, staff, models.AdminCancelSubscriptionInput{SubscriptionID: sub.ID, AtPeriodEnd: true, Reason: "test", IdempotencyKey: nextKey("admin-cancel")})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub := b.subscribe(t)
			var delivered Event
			var want report
			b.gw.mu.Lock()
			b.gw.between = func(gs gateway.Subscription) {
				if gs.PauseBehavior != "" && c.name == "resume, then past due" {
					return // the pause before the change under test
				}
				// Stripe's event for what happened after it answered: created now,
				// in the second of the call or a later one.
				ev := b.event(sub, time.Now(), c.status, b.prices[gs.PriceID], gs.CancelAtPeriodEnd, false, gs.CurrentPeriodEnd)
				var err error
				delivered, err = b.deliver(ctx, ev.Event)
				require.NoError(t, err)
				want = ev.report
			}
			b.gw.mu.Unlock()
			defer func() { b.gw.mu.Lock(); b.gw.between = nil; b.gw.mu.Unlock() }()

			res, err := c.change(sub)
			require.NoError(t, err)
			require.Empty(t, res.UserErrors)
			require.NotZero(t, delivered.Seq, "the event was applied between the answer and its store")
			got := b.row(t, sub.ID)
			require.Equal(t, want, rowReport(got), "the event's state stands")
			require.True(t, got.ProviderUpdatedAt.Equal(delivered.Created), "and so does its place in the order")
			require.Equal(t, delivered.Seq, *got.ProviderEventSeq)
			require.Equal(t, want.Status, res.Subscription.Status, "the change answers with the subscription as it is")
			require.Equal(t, sub.ShippingAddress, got.ShippingAddress)
		})
	}
}

// TestAnAddressChangeNeverWritesTheStatus holds the subscription's row while an
// address change runs, commits an event's state (ended) once the change waits for
// the row, then lets it go: the change, judged on the state it finds under the
// lock, is refused, and the event's state and place in the order stand.
func TestAnAddressChangeNeverWritesTheStatus(t *testing.T) {
	t.Parallel()
	b := newBench(t)
	ctx := context.Background()
	sub := b.subscribe(t)

	event := b.db.Begin()
	require.NoError(t, event.Error)
	defer event.Rollback()
	require.NoError(t, event.Exec(`SELECT 1 FROM subscriptions WHERE id = ? FOR UPDATE`, sub.ID).Error)

	done := make(chan *Result, 1)
	go func() {
		res, err := b.svc.UpdateAddress(ctx, b.principal, models.UpdateShippingAddressInput{SubscriptionID: sub.ID, IdempotencyKey: nextKey("address"),
			Address: &models.Address{Name: "Ada", Line1: "9 Elsewhere", City: "Bonn", PostalCode: "53111", Country: "DE"}})
		assert.NoError(t, err)
		done <- res
	}()
	require.Eventually(t, func() bool {
		var waiting int64
		_ = b.db.Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting).Error
		return waiting > 0
	}, 20*time.Second, 10*time.Millisecond, "the address change waits for the row")
	endedAt := time.Now().UTC().Truncate(time.Second)
	require.NoError(t, event.Exec(`UPDATE subscriptions SET status = 'CANCELED', provider_updated_at = ?, provider_event_seq = 7 WHERE id = ?`, endedAt, sub.ID).Error)
	require.NoError(t, event.Commit().Error)

	res := <-done
	require.NotNil(t, res)
	require.Len(t, res.UserErrors, 1)
	require.Equal(t, models.UserErrorInvalidState, res.UserErrors[0].Code, "the subscription has ended meanwhile")
	got := b.row(t, sub.ID)
	require.Equal(t, models.SubscriptionCanceled, got.Status)
	require.True(t, got.ProviderUpdatedAt.Equal(endedAt))
	require.EqualValues(t, 7, *got.ProviderEventSeq)
	require.Equal(t, sub.ShippingAddress, got.ShippingAddress)
}
