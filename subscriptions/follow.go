package subscriptions

import (
	"context"

	"github.com/scoville/scoville/auth"
	liveupdates "github.com/scoville/scoville/live" // "live" names a func of this package
	"github.com/scoville/scoville/models"
)

// Follow streams subscription id as p may see it (Get's ownership rule: the owner,
// SUPPORT or ADMIN), first its current state and then after each announced change;
// with id nil, every subscription of p's own customer. An id p may not see is
// refused exactly like an unknown one (NOT_FOUND), and so is a caller without a
// customer when id is nil. Each push is read again under the same rule: a
// subscription that stops being visible ends the stream. The hub's bounds refuse
// with *live.LimitError.
func (s *Service) Follow(ctx context.Context, p *auth.Principal, hub *liveupdates.Hub, id *string) (<-chan *models.Subscription, error) {
	notFound := models.NewUserError(models.UserErrorNotFound, "no such subscription", "id")
	caller := liveupdates.CallerFrom(ctx)
	if id != nil {
		sub, err := s.Get(ctx, p, *id)
		if err != nil {
			return nil, err
		}
		if sub == nil {
			hub.Metrics().Refused(liveupdates.RefusedNotFound)
			return nil, notFound
		}
		f, err := hub.Follow(caller, sub.ID, "")
		if err != nil {
			return nil, err
		}
		followed := sub.ID
		return liveupdates.Stream(ctx, f, liveupdates.Source[*models.Subscription]{
			All: func(context.Context) ([]string, error) { return []string{followed}, nil },
			Read: func(ctx context.Context, id string) (*models.Subscription, bool, error) {
				sub, err := s.Get(ctx, p, id)
				return sub, sub != nil, err
			},
		}), nil
	}
	c, err := s.customers.Lookup(ctx, p)
	if err != nil {
		return nil, err
	}
	if c == nil {
		hub.Metrics().Refused(liveupdates.RefusedNotFound)
		return nil, notFound
	}
	f, err := hub.Follow(caller, "", c.ID)
	if err != nil {
		return nil, err
	}
	return liveupdates.Stream(ctx, f, liveupdates.Source[*models.Subscription]{
		All: func(ctx context.Context) ([]string, error) {
			subs, err := s.ForCustomer(ctx, c.ID)
			ids := make([]string, len(subs))
			for i, sub := range subs {
				ids[i] = sub.ID
			}
			return ids, err
		},
		Read: func(ctx context.Context, id string) (*models.Subscription, bool, error) {
			sub, err := s.Get(ctx, p, id)
			// Staff may read any subscription; without an id they follow their own.
			return sub, sub != nil && sub.CustomerID == c.ID, err
		},
	}), nil
}
