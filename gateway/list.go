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
		err := listPages(ctx, s, "ListSubscriptions", func(lp stripe.ListParams) listIter {
			p := &stripe.SubscriptionListParams{ListParams: lp, Status: stripe.String("all")}
			window := &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}
			if byPeriod {
				p.CurrentPeriodStartRange = window
			} else {
				p.CreatedRange = window
			}
			return s.api.Subscriptions.List(p)
		}, func(sub *stripe.Subscription) string {
			if !seen[sub.ID] {
				seen[sub.ID] = true
				out = append(out, toSubscription(sub))
			}
			return sub.ID
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
	err := listPages(ctx, s, "ListInvoices", func(lp stripe.ListParams) listIter {
		return s.api.Invoices.List(&stripe.InvoiceListParams{
			ListParams:   lp,
			Status:       stripe.String(string(status)),
			CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()},
		})
	}, func(inv *stripe.Invoice) string {
		out = append(out, toInvoice(inv))
		return inv.ID
	}, func() int { return len(out) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// listIter is what stripe-go's list iterators have in common.
type listIter interface {
	Next() bool
	Current() interface{}
	Err() error
	Meta() *stripe.ListMeta
}

// listPages fetches page after page, each one call with its own retries, until
// Stripe says there is no more. list starts the listing of one page from lp (its
// context, size and cursor are set here); add takes each object of the page and
// returns its id; count is how many objects the caller holds. A page is one request
// (Single), so a failed attempt has added nothing and its retry cannot duplicate
// objects.
func listPages[T any](ctx context.Context, s *Stripe, op string, list func(lp stripe.ListParams) listIter, add func(T) string, count func() int) error {
	after := ""
	for {
		var more bool
		var last string
		err := s.call(ctx, op, func(ctx context.Context) error {
			lp := stripe.ListParams{Context: ctx, Limit: stripe.Int64(listPageSize), Single: true}
			if after != "" {
				lp.StartingAfter = stripe.String(after)
			}
			it := list(lp)
			last = ""
			for it.Next() {
				last = add(it.Current().(T))
			}
			if err := it.Err(); err != nil {
				return err
			}
			more = it.Meta() != nil && it.Meta().HasMore
			return nil
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
