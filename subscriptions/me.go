package subscriptions

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/catalog"
	"github.com/scoville/scoville/customers"
	"github.com/scoville/scoville/database"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
	"github.com/scoville/scoville/sealing"
)

// meStatement reads the principal's customer and their newest subscriptions (as
// ForCustomer orders and bounds them) in one statement: one round trip and one
// snapshot, with the catalog version of that snapshot, at which the subscriptions'
// plans are then taken (catalog.PlanCache). The subscriptions are found through
// the customer row the token's identity selects, so no other customer's row can
// appear; an erased customer's identity is no token's, so their row never does.
var meStatement = "SELECT " + customers.RowColumns + `,
	s.id, s.plan_id, s.status, s.stripe_subscription_id, s.stripe_item_id, s.current_period_start,
	s.current_period_end, s.cancel_at_period_end, s.paused_until, s.shipping_address, s.provider_updated_at,
	s.provider_event_seq, s.created_at, s.updated_at, ` + catalog.VersionColumn + `
FROM customers AS c
LEFT JOIN LATERAL (SELECT * FROM subscriptions WHERE subscriptions.customer_id = c.id
	ORDER BY subscriptions.created_at DESC, subscriptions.id DESC LIMIT ?) AS s ON true
WHERE c.issuer = ? AND c.subject = ?
ORDER BY s.created_at DESC, s.id DESC`

// meStatementPG is meStatement with PostgreSQL's numbered parameters ($1, $2,
// ...) in place of gorm's question marks, in their order.
var meStatementPG = numberParameters(meStatement)

// numberParameters replaces each ? of q with $1, $2, ... in order (q holds no ?
// other than its parameters).
func numberParameters(q string) string {
	var b strings.Builder
	n := 0
	for {
		i := strings.IndexByte(q, '?')
		if i < 0 {
			b.WriteString(q)
			return b.String()
		}
		n++
		b.WriteString(q[:i])
		b.WriteString("$" + strconv.Itoa(n))
		q = q[i+1:]
	}
}

// meRow is one row of meStatement past the customer's columns, in pgx's types;
// every column is nullable (a customer without subscriptions gives one row of
// NULLs). uuid columns are read as their text.
type meRow struct {
	id, planID, status                              pgtype.Text
	stripeSubscriptionID, stripeItemID              *string
	periodStart, periodEnd, pausedUntil, providerAt *time.Time
	cancelAtPeriodEnd                               pgtype.Bool
	address                                         []byte
	providerSeq                                     *int64
	createdAt, updatedAt                            pgtype.Timestamptz
	catalogVersion                                  int64
}

func (r *meRow) targets() []any {
	return []any{&r.id, &r.planID, &r.status, &r.stripeSubscriptionID, &r.stripeItemID, &r.periodStart,
		&r.periodEnd, &r.cancelAtPeriodEnd, &r.pausedUntil, &r.address, &r.providerAt,
		&r.providerSeq, &r.createdAt, &r.updatedAt, &r.catalogVersion}
}

// MeRead says what Me reads beyond the customer, their subscriptions and plans.
type MeRead struct {
	// ShippingAddress opens each subscription's sealed shipping address. Without
	// it the address is not decrypted and ShippingAddress is left empty: only for
	// a caller that will not show it.
	ShippingAddress bool
}

// Me returns the principal's customer, provisioned as customers.Provision does
// (created on first sight, e-mail and name following the token, written only when
// they changed), with Subscriptions set to their newest subscriptions (ForCustomer's
// order and bound), each with its Plan (active or retired) and the plan's product,
// and with its shipping address when read asks for it. A customer seen for the
// first time is returned without Subscriptions set (the caller reads them as for
// any customer).
func (s *Service) Me(ctx context.Context, p *auth.Principal, read MeRead) (*models.Customer, error) {
	// The statement runs on pgx itself (database.Query: gorm's hooks still see it),
	// scanning into typed values; its parameters are numbered once (meStatementPG).
	var (
		row     *customers.Row
		subs    = []*models.Subscription{}
		planIDs []string
		// Every row holds the same customer: the first row's is kept, the later
		// ones' go to scratch. One meRow serves every row: subscription copies
		// what it keeps, and Scan gives each pointer column a new value or nil.
		first, scratch customers.Row
		m              meRow
		targets        = append(first.Targets(), m.targets()...)
	)
	err := database.Query(ctx, s.db, meStatementPG, []any{paging.MaxList, p.Issuer, p.Subject}, func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(targets...); err != nil {
				return err
			}
			c := &scratch
			if row == nil {
				row, c = &first, &first
				copy(targets, scratch.Targets())
			}
			if !m.id.Valid {
				continue
			}
			sub, err := m.subscription(s, c.ID(), read)
			if err != nil {
				return err
			}
			if !slices.Contains(planIDs, sub.PlanID) {
				planIDs = append(planIDs, sub.PlanID)
			}
			subs = append(subs, sub)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("subscriptions: me: %w", err)
	}
	if len(subs) > 0 {
		plans, err := s.plans.At(ctx, m.catalogVersion, planIDs)
		if err != nil {
			return nil, fmt.Errorf("subscriptions: me: %w", err)
		}
		for _, sub := range subs {
			sub.Plan = plans[sub.PlanID]
		}
	}
	c, err := s.customers.ProvisionRead(ctx, p, row)
	if err != nil || row == nil {
		return c, err
	}
	c.Subscriptions = subs
	return c, nil
}

// subscription builds the row's subscription of customerID, with its shipping
// address opened when read asks for it; Me sets its plan.
func (m *meRow) subscription(s *Service, customerID string, read MeRead) (*models.Subscription, error) {
	sub := &models.Subscription{
		ID: m.id.String, CustomerID: customerID, PlanID: m.planID.String, Status: models.SubscriptionStatus(m.status.String),
		StripeSubscriptionID: m.stripeSubscriptionID, StripeItemID: m.stripeItemID,
		CurrentPeriodStart: m.periodStart, CurrentPeriodEnd: m.periodEnd, CancelAtPeriodEnd: m.cancelAtPeriodEnd.Bool,
		PausedUntil: m.pausedUntil, ProviderUpdatedAt: m.providerAt, ProviderEventSeq: m.providerSeq,
		CreatedAt: m.createdAt.Time, UpdatedAt: m.updatedAt.Time,
	}
	if read.ShippingAddress && len(m.address) > 0 {
		plain, err := sealing.OpenColumn(s.db, "subscriptions", "shipping_address", sub.ID, m.address)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(plain, &sub.ShippingAddress); err != nil {
			return nil, fmt.Errorf("subscriptions.shipping_address of row %s: decode: %w", sub.ID, err)
		}
	}
	return sub, nil
}
