package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// listPageSize is Stripe's largest page.
const listPageSize = 100

// MaxListed bounds what one listing returns, so a bad filter cannot make a caller
// page through a whole account in one go; a listing that reaches it is an error, and
// the caller narrows its window.
const MaxListed = 10000

// ErrTooManyListed means a listing reached MaxListed objects.
var ErrTooManyListed = errors.New("gateway: listing reached its limit; narrow the time window")

// ListSubscriptionsSince returns the subscriptions, of any status, that Stripe
// created at or after since, or whose current period started at or after since
// (renewals): what reconciliation compares with ours. Each appears once.
func (s *Stripe) ListSubscriptionsSince(ctx context.Context, since time.Time) ([]Subscription, error) {
	seen := map[string]bool{}
	var out []Subscription
	for _, byPeriod := range []bool{false, true} {
		err := listPages(ctx, s, "ListSubscriptions", func(ctx context.Context, after string) (bool, string, error) {
			p := &stripe.SubscriptionListParams{Status: stripe.String("all")}
			window := &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}
			if byPeriod {
				p.CurrentPeriodStartRange = window
			} else {
				p.CreatedRange = window
			}
			p.Context, p.Limit, p.Single = ctx, stripe.Int64(listPageSize), true
			if after != "" {
				p.StartingAfter = stripe.String(after)
			}
			it := s.api.Subscriptions.List(p)
			last := ""
			for it.Next() {
				sub := it.Subscription()
				last = sub.ID
				if !seen[sub.ID] {
					seen[sub.ID] = true
					out = append(out, toSubscription(sub))
				}
			}
			if err := it.Err(); err != nil {
				return false, "", err
			}
			return it.Meta() != nil && it.Meta().HasMore, last, nil
		}, func() int { return len(out) })
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ListPaidInvoicesSince returns the paid invoices Stripe created at or after since,
// with their first page of lines, for reconciliation to find payments (and so
// shipments) that no webhook reported.
func (s *Stripe) ListPaidInvoicesSince(ctx context.Context, since time.Time) ([]Invoice, error) {
	return s.listInvoices(ctx, since, stripe.InvoiceStatusPaid)
}

// ListOpenInvoicesSince returns the open (unpaid, collectable) invoices Stripe
// created at or after since, for reconciliation to find failed collection attempts
// that no webhook reported.
func (s *Stripe) ListOpenInvoicesSince(ctx context.Context, since time.Time) ([]Invoice, error) {
	return s.listInvoices(ctx, since, stripe.InvoiceStatusOpen)
}

func (s *Stripe) listInvoices(ctx context.Context, since time.Time, status stripe.InvoiceStatus) ([]Invoice, error) {
	var out []Invoice
	err := listPages(ctx, s, "ListInvoices", func(ctx context.Context, after string) (bool, string, error) {
		p := &stripe.InvoiceListParams{
			Status:       stripe.String(string(status)),
			CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()},
		}
		p.Context, p.Limit, p.Single = ctx, stripe.Int64(listPageSize), true
		if after != "" {
			p.StartingAfter = stripe.String(after)
		}
		it := s.api.Invoices.List(p)
		last := ""
		for it.Next() {
			inv := it.Invoice()
			last = inv.ID
			out = append(out, toInvoice(inv))
		}
		if err := it.Err(); err != nil {
			return false, "", err
		}
		return it.Meta() != nil && it.Meta().HasMore, last, nil
	}, func() int { return len(out) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// listPages fetches page after page, each one call with its own retries, until
// Stripe says there is no more. page returns whether more follow and the last id.
// A page is one request (Single), so a failed attempt has appended nothing and its
// retry cannot duplicate objects.
func listPages(ctx context.Context, s *Stripe, op string, page func(ctx context.Context, after string) (bool, string, error), count func() int) error {
	after := ""
	for {
		var more bool
		var last string
		err := s.call(ctx, op, func(ctx context.Context) error {
			var err error
			more, last, err = page(ctx, after)
			return err
		})
		if err != nil {
			return err
		}
		if count() > MaxListed {
			return fmt.Errorf("%w: %s", ErrTooManyListed, op)
		}
		if !more || last == "" {
			return nil
		}
		after = last
	}
}
