package database

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// withoutDescriptionCache leaves out the second of the two caches pgx keeps on each
// connection: the cache of statement descriptions, which only the cache_describe
// exec mode reads, and which pgx allocates at full capacity on every connection.
// Statements are still prepared once per connection and cached (the default exec
// mode). A DATABASE_URL that asks for cache_describe keeps it.
func withoutDescriptionCache(_ context.Context, c *pgx.ConnConfig) error {
	if c.DefaultQueryExecMode != pgx.QueryExecModeCacheDescribe {
		c.DescriptionCacheCapacity = 0
	}
	return nil
}
