package subscriptions

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// notHandled is the outcome of an event no handler took.
const notHandled = "event type not handled"

// minimalEvents is, per registered type, a minimal event as Stripe signs it
// (webhooktest's shapes) about objects this database does not know.
func minimalEvents(created time.Time) map[string]webhooktest.Object {
	sub := webhooktest.Subscription{ID: "sub_min", Customer: "cus_min", Price: "price_min", Status: "active", Amount: 100,
		Currency: "usd", PeriodStart: created, PeriodEnd: created.AddDate(0, 1, 0)}.Object()
	inv := webhooktest.Invoice{ID: "in_min", Subscription: "sub_min", Customer: "cus_min", Price: "price_min", Amount: 100,
		Currency: "usd", PeriodStart: created, PeriodEnd: created.AddDate(0, 1, 0)}
	failed := inv
	failed.Status = "open"
	return map[string]webhooktest.Object{
		evCheckoutCompleted: {"id": "cs_min", "object": "checkout.session", "mode": "subscription", "subscription": "sub_min",
			"customer": "cus_min", "client_reference_id": nil, "status": "complete", "livemode": false},
		evSubCreated:          sub,
		evSubUpdated:          sub,
		evSubDeleted:          sub,
		evSubPaused:           sub,
		evSubResumed:          sub,
		evInvoicePaid:         inv.Object(),
		evInvoiceFailed:       failed.Object(),
		evInvoiceActionNeeded: failed.Object(),
		evChargeRefunded:      webhooktest.Charge("ch_min", "in_min", "pi_min", 100, 100, "usd"),
		evDisputeCreated:      webhooktest.Dispute("dp_min", "ch_min", "pi_min", 100, "usd", "fraudulent"),
		evFraudWarning:        webhooktest.EarlyFraudWarning("issfr_min", "ch_min", "pi_min"),
	}
}

// asStored is a signed-shape event body as the webhook worker hands it over.
func asStored(t *testing.T, seq int64, eventType string, created time.Time, obj webhooktest.Object) Event {
	t.Helper()
	id := "evt_min_" + strconv.FormatInt(seq, 10)
	var body struct {
		Type string `json:"type"`
		Data struct {
			Object             json.RawMessage `json:"object"`
			PreviousAttributes json.RawMessage `json:"previous_attributes"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(webhooktest.Event(id, eventType, created, obj, nil), &body))
	return Event{ID: id, ProviderEventID: id, Type: body.Type, Created: created, Seq: seq,
		Object: body.Data.Object, PreviousAttributes: body.Data.PreviousAttributes}
}

// effect runs ev through Prepare and, in a transaction, Apply, as the worker does,
// and returns what Apply did; neither may fail.
func (b *bench) effect(t *testing.T, ctx context.Context, ev Event) Effect {
	t.Helper()
	p, err := b.syncer.Prepare(ctx, ev)
	require.NoError(t, err)
	var effect Effect
	require.NoError(t, b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		effect, err = b.syncer.Apply(ctx, tx, ev, p)
		return err
	}))
	return effect
}

// TestEveryRegisteredTypeIsHandledByItsEntry runs a minimal event of every
// registered type through Prepare and Apply: each is taken by its own handler (its
// own outcome, no error), and this test has an event for every entry, so a type
// added to the registry without one fails here.
func TestEveryRegisteredTypeIsHandledByItsEntry(t *testing.T) {
	t.Parallel()
	b := newBench(t)
	ctx := context.Background()
	created := time.Now().Truncate(time.Second)
	events := minimalEvents(created)
	types := HandledTypes()
	require.NotEmpty(t, types)
	for i, typ := range types {
		t.Run(typ, func(t *testing.T) {
			obj, ok := events[typ]
			require.True(t, ok, "registered type %s has no minimal event in this test", typ)
			require.True(t, Handles(typ))
			ev := asStored(t, int64(i+1), typ, created, obj)
			effect := b.effect(t, ctx, ev)
			require.NotEqual(t, notHandled, effect.Outcome, "fell through to no handler")
			require.NotEmpty(t, effect.Outcome)
			// None of these objects is ours: no handler may record anything for them.
			require.True(t, effect.Ignored, effect.Outcome)
		})
	}
	for typ := range events {
		require.True(t, Handles(typ), "this test has an event for %s, which the registry does not list", typ)
	}
	var n int64
	require.NoError(t, b.db.Model(&models.Payment{}).Count(&n).Error)
	require.Zero(t, n)
}

// TestARegisteredTypeAppliesToWhatIsOurs checks that the registry routes to the
// real effect, not only to an ignore: a paid invoice of a subscription of ours
// records its payment, through the invoice.paid entry.
func TestARegisteredTypeAppliesToWhatIsOurs(t *testing.T) {
	t.Parallel()
	b := newBench(t)
	ctx := context.Background()
	created := time.Now().Truncate(time.Second)
	ev := asStored(t, 1, evInvoicePaid, created, paidInvoiceOf(t, b, b.subscribe(t), "in_ours", created))
	_, err := b.deliver(ctx, ev)
	require.NoError(t, err)
	var pay models.Payment
	require.NoError(t, b.db.Take(&pay, "stripe_invoice_id = ?", "in_ours").Error)
	require.Equal(t, models.PaymentSucceeded, pay.Status)
	var shipments int64
	require.NoError(t, b.db.Model(&models.Shipment{}).Where("stripe_invoice_id = ?", "in_ours").Count(&shipments).Error)
	require.EqualValues(t, 1, shipments)
}

// paidInvoiceOf is Stripe's paid invoice id for the period of sub starting at start.
func paidInvoiceOf(t *testing.T, b *bench, sub *models.Subscription, id string, start time.Time) webhooktest.Object {
	t.Helper()
	var plan models.Plan
	require.NoError(t, b.db.Take(&plan, "id = ?", sub.PlanID).Error)
	return webhooktest.Invoice{ID: id, Subscription: *sub.StripeSubscriptionID, Price: *plan.StripePriceID,
		Amount: plan.Amount, Currency: strings.ToLower(plan.Currency), PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0)}.Object()
}

// TestAnUnknownTypeIsIgnored checks that types without an entry, look-alikes of
// registered ones included, are stored as IGNORED and change nothing.
func TestAnUnknownTypeIsIgnored(t *testing.T) {
	t.Parallel()
	b := newBench(t)
	ctx := context.Background()
	created := time.Now().Truncate(time.Second)
	inv := paidInvoiceOf(t, b, b.subscribe(t), "in_lookalike", created)
	for i, typ := range []string{"invoice.created", "customer.created", "Invoice.Paid", "invoice.paid ", "invoice.paid.extra", "invoice_paid", ""} {
		t.Run(strconv.Quote(typ), func(t *testing.T) {
			require.False(t, Handles(typ))
			ev := asStored(t, int64(i+1), typ, created, inv)
			effect := b.effect(t, ctx, ev)
			require.Equal(t, Effect{Ignored: true, Outcome: notHandled}, effect)
		})
	}
	var payments int64
	require.NoError(t, b.db.Model(&models.Payment{}).Where("stripe_invoice_id = ?", "in_lookalike").Count(&payments).Error)
	require.Zero(t, payments, "an ignored invoice.paid look-alike recorded a payment")
	// A Prepared of another type's handler is refused, not applied as this one.
	ev := asStored(t, 99, evInvoicePaid, created, inv)
	sub := asStored(t, 100, evSubUpdated, created, minimalEvents(created)[evSubUpdated])
	p, err := b.syncer.Prepare(ctx, sub)
	require.NoError(t, err)
	err = b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		_, err := b.syncer.Apply(ctx, tx, ev, p)
		return err
	})
	require.ErrorContains(t, err, "not by its handler")
}

// stripeEventType is what a Stripe event type written in our code looks like.
var stripeEventType = regexp.MustCompile(`^(checkout\.session|customer|customer\.subscription|invoice|invoiceitem|charge|charge\.dispute|charge\.refund|radar\.early_fraud_warning|payment_intent|payment_method|subscription_schedule|refund)\.[a-z_]+$`)

// TestTheRegistryIsTheOnlyList parses the package's code and fails when an event
// type is named, or an event's type compared, anywhere but in the registry: a type
// handled in Apply (or anywhere else) must have its entry, and nothing fabricates
// an Event to reuse a handler, nor reaches into the Syncer's gateway
// (reconciliation and resync apply and read through the Syncer's methods).
func TestTheRegistryIsTheOnlyList(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	require.NoError(t, err)
	files := map[string]*ast.File{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		files[name] = f
	}
	require.Contains(t, files, "events.go")
	registered := map[string]bool{}
	for _, typ := range HandledTypes() {
		registered[typ] = true
	}
	named := map[string]bool{}
	for name, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(n.Value)
				if err == nil && stripeEventType.MatchString(s) {
					named[s] = true
					require.True(t, registered[s], "%s names event type %q, which has no registry entry", fset.Position(n.Pos()), s)
				}
			case *ast.SelectorExpr:
				if inner, ok := n.X.(*ast.SelectorExpr); ok && n.Sel.Name == "gw" && inner.Sel.Name == "syncer" {
					require.Failf(t, "the Syncer's gateway reached into", "%s: read through a Syncer method", fset.Position(n.Pos()))
				}
				if n.Sel.Name == "Type" && name != "events.go" {
					if id, ok := n.X.(*ast.Ident); ok && (id.Name == "ev" || id.Name == "event") {
						require.Failf(t, "an event's type read outside the registry", "%s: dispatch on event types belongs in events.go", fset.Position(n.Pos()))
					}
				}
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "Event" {
					require.Failf(t, "an Event fabricated", "%s: apply a read through the handlers' methods instead", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
	for typ := range registered {
		require.True(t, named[typ], "registered type %q is not written in the package's code", typ)
	}
}

// TestAPlanLabelFailureFailsTheNotice checks that a notice is never sent with a
// blank plan name: a plan that cannot be read fails the transaction instead.
func TestAPlanLabelFailureFailsTheNotice(t *testing.T) {
	t.Parallel()
	b := newBench(t)
	label, err := planLabel(b.db, benchPlans[1])
	require.NoError(t, err)
	require.NotEmpty(t, label)
	_, err = planLabel(b.db, "4d0c6f1e-0000-4000-8000-00000000dead")
	require.Error(t, err)
	sub := b.subscribe(t)
	sub.PlanID = "4d0c6f1e-0000-4000-8000-00000000dead"
	err = b.syncer.noticeChange(context.Background(), b.db, sub, "subscription_changed", "plan", "dedupe:label")
	require.Error(t, err)
}
