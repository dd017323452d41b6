package resolvers

import (
	"context"

	"github.com/graph-gophers/dataloader/v7"
)

// pageKey is one parent's page of a child connection: the parent's id and the page's
// first/after. Siblings asking for the same page shape (the common first page above
// all) share one statement.
type pageKey struct {
	parent   string
	first    int
	hasFirst bool
	after    string
	hasAfter bool
}

func newPageKey(parent string, first *int, after *string) pageKey {
	k := pageKey{parent: parent}
	if first != nil {
		k.first, k.hasFirst = *first, true
	}
	if after != nil {
		k.after, k.hasAfter = *after, true
	}
	return k
}

// pageArgs is first/after as the service takes them.
func (k pageKey) pageArgs() (first *int, after *string) {
	if k.hasFirst {
		f := k.first
		first = &f
	}
	if k.hasAfter {
		a := k.after
		after = &a
	}
	return first, after
}

// batchPages answers a batch of page keys in key order, as dataloader requires, with
// one fetch per distinct page shape.
func batchPages[C any](fetch func(ctx context.Context, parents []string, first *int, after *string) (map[string]C, error),
) dataloader.BatchFunc[pageKey, C] {
	return func(ctx context.Context, keys []pageKey) []*dataloader.Result[C] {
		// A page shape is a key without its parent.
		groups := map[pageKey][]int{}
		var order []pageKey
		for i, k := range keys {
			s := k
			s.parent = ""
			if _, ok := groups[s]; !ok {
				order = append(order, s)
			}
			groups[s] = append(groups[s], i)
		}
		out := make([]*dataloader.Result[C], len(keys))
		for _, s := range order {
			idx := groups[s]
			parents := make([]string, 0, len(idx))
			for _, i := range idx {
				parents = append(parents, keys[i].parent)
			}
			first, after := s.pageArgs()
			found, err := fetch(ctx, parents, first, after)
			for _, i := range idx {
				if err != nil {
					out[i] = &dataloader.Result[C]{Error: err}
					continue
				}
				out[i] = &dataloader.Result[C]{Data: found[keys[i].parent]}
			}
		}
		return out
	}
}

// newPageLoader is a per-request loader of child pages: no cache across requests, a
// short wait so the rows of one list are batched together.
func newPageLoader[C any](fetch func(ctx context.Context, parents []string, first *int, after *string) (map[string]C, error),
) *dataloader.Loader[pageKey, C] {
	return dataloader.NewBatchedLoader(batchPages(fetch), dataloader.WithWait[pageKey, C](loaderWait),
		dataloader.WithCache[pageKey, C](&dataloader.NoCache[pageKey, C]{}))
}
