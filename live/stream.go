package live

import (
	"context"
	"slices"
)

// Source reads what a follow pushes, as the operation's caller may see it.
type Source[T any] struct {
	// All lists the ids the follow covers, for its first push and after a gap in
	// the announcements (a reconnected LISTEN).
	All func(ctx context.Context) ([]string, error)
	// Read returns subscription id as the caller may see it, or false when the
	// caller may not see it (or it is gone).
	Read func(ctx context.Context, id string) (T, bool, error)
}

// Stream pushes src.Read of each subscription f marks, in a channel the operation
// reads, until ctx ends, the hub closes, a read fails, or a followed subscription
// stops being visible to the caller; then the channel is closed and f released.
// Marks that arrive while a push waits for the client are merged, so a slow client
// costs memory bounded by what it follows, and always gets the latest state.
func Stream[T any](ctx context.Context, f *Follow, src Source[T]) <-chan T {
	out := make(chan T)
	go func() {
		defer close(out)
		defer f.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case <-f.done:
				return
			case <-f.signal:
			}
			ids, everything := f.takePending()
			if everything {
				all, err := src.All(ctx)
				if err != nil {
					f.h.logReadFailure(ctx, err)
					return
				}
				ids = append(ids, all...)
				slices.Sort(ids)
				ids = slices.Compact(ids)
			}
			for _, id := range ids {
				v, ok, err := src.Read(ctx, id)
				if err != nil {
					f.h.logReadFailure(ctx, err)
					return
				}
				if !ok {
					if f.subscriptionID != "" {
						return // the one subscription followed is no longer visible
					}
					continue
				}
				select {
				case out <- v:
					f.h.cfg.Metrics.pushed()
				case <-ctx.Done():
					return
				case <-f.done:
					return
				}
			}
		}
	}()
	return out
}

func (h *Hub) logReadFailure(ctx context.Context, err error) {
	if ctx.Err() == nil {
		h.cfg.Logger.ErrorContext(ctx, "live: reading a followed subscription failed; the operation ends", "error", err.Error())
	}
}
