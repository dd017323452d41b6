package graph

import (
	"container/list"
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/clientip"
	"github.com/scoville/scoville/models"
)

// DefaultAPQPerCaller is how many persisted queries one caller may have in the
// cache that nobody else has used (HandlerConfig.APQPerCaller).
const DefaultAPQPerCaller = 32

// apqCache holds automatic persisted queries so that no single caller can churn
// it. Each query is registered by a caller (APQCaller: the principal, or the
// client address when anonymous) and counts against that caller's allowance of
// perCaller until another caller uses it; a caller's registration past its
// allowance evicts its own least recently used query, never anybody else's. When
// the whole cache is full, a registration evicts the least recently used query
// that only one caller has used, and only when there is none, the least
// recently used of all. So one caller registering any number of documents
// displaces at most perCaller queries of others, and never one that two callers
// have used while any query of a single caller is held. Queries longer than
// maxBytes are run but not kept (the client sends them whole again), so its
// memory is bounded by size times maxBytes.
type apqCache struct {
	size, perCaller, maxBytes int
	caller                    func(context.Context) string

	mu     sync.Mutex
	byHash map[string]*apqEntry
	all    *list.List            // every entry, most recently used first
	single *list.List            // entries one caller alone has used, most recent first
	owned  map[string]*list.List // by caller: their entries nobody else has used
}

type apqEntry struct {
	hash, query, owner string // owner "": used by more than one caller
	inAll, inSingle    *list.Element
	inOwned            *list.Element
}

func newAPQCache(size, perCaller, maxBytes int, caller func(context.Context) string) *apqCache {
	if caller == nil {
		caller = defaultAPQCaller
	}
	return &apqCache{size: size, perCaller: min(perCaller, size), maxBytes: maxBytes, caller: caller,
		byHash: map[string]*apqEntry{}, all: list.New(), single: list.New(), owned: map[string]*list.List{}}
}

// defaultAPQCaller is the principal, or the client address when anonymous.
func defaultAPQCaller(ctx context.Context) string {
	if p, ok := auth.PrincipalFrom(ctx); ok {
		return "principal " + p.Issuer + " " + p.Subject
	}
	return "addr " + clientip.From(ctx).String()
}

// Get returns the query of hash; a use by a caller other than the one who
// registered it makes it shared.
func (c *apqCache) Get(ctx context.Context, hash string) (string, bool) {
	who := c.caller(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byHash[hash]
	if !ok {
		return "", false
	}
	c.touch(e, who)
	return e.query, true
}

// Add keeps query under hash (the extension has checked that it is its hash).
func (c *apqCache) Add(ctx context.Context, hash, query string) {
	if len(query) > c.maxBytes {
		return
	}
	who := c.caller(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byHash[hash]; ok {
		c.touch(e, who)
		return
	}
	mine := c.owned[who]
	if mine == nil {
		mine = list.New()
		c.owned[who] = mine
	}
	if mine.Len() >= c.perCaller {
		c.remove(mine.Back().Value.(*apqEntry))
	} else if len(c.byHash) >= c.size {
		victim := c.single.Back()
		if victim == nil {
			victim = c.all.Back()
		}
		c.remove(victim.Value.(*apqEntry))
	}
	if c.owned[who] == nil { // removed with its last entry just now
		c.owned[who] = mine
	}
	e := &apqEntry{hash: hash, query: query, owner: who}
	e.inAll, e.inSingle, e.inOwned = c.all.PushFront(e), c.single.PushFront(e), mine.PushFront(e)
	c.byHash[hash] = e
}

// touch marks e used by who now.
func (c *apqCache) touch(e *apqEntry, who string) {
	c.all.MoveToFront(e.inAll)
	if e.owner == "" {
		return
	}
	if e.owner == who {
		c.single.MoveToFront(e.inSingle)
		c.owned[who].MoveToFront(e.inOwned)
		return
	}
	c.disown(e)
}

// disown makes e shared: out of its owner's allowance and of the single list.
func (c *apqCache) disown(e *apqEntry) {
	mine := c.owned[e.owner]
	mine.Remove(e.inOwned)
	if mine.Len() == 0 {
		delete(c.owned, e.owner)
	}
	c.single.Remove(e.inSingle)
	e.owner, e.inOwned, e.inSingle = "", nil, nil
}

func (c *apqCache) remove(e *apqEntry) {
	if e.owner != "" {
		c.disown(e)
	}
	c.all.Remove(e.inAll)
	delete(c.byHash, e.hash)
}

// len is the number of queries held (tests).
func (c *apqCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byHash)
}

// codedAPQ is gqlgen's automatic persisted queries with a code on every refusal:
// gqlgen's own refusals of a persistedQuery extension it cannot read, of another
// version, or whose hash is not the sha256 of the query sent with it carry none,
// and clients branch on extensions.code. They are BAD_REQUEST; the unknown hash
// keeps its PERSISTED_QUERY_NOT_FOUND, which clients answer by sending the query.
type codedAPQ struct {
	extension.AutomaticPersistedQuery
}

func (a codedAPQ) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	err := a.AutomaticPersistedQuery.MutateOperationParameters(ctx, params)
	if err != nil && err.Extensions["code"] == nil {
		errcode.Set(err, models.CodeBadRequest)
	}
	return err
}
