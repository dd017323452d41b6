-- +goose Up
-- Tombstones are purged once their key's first use is older than
-- IDEMPOTENCY_TOMBSTONE_RETENTION (idempotency.Store.PurgeTombstones); the purge
-- finds them by first use.
CREATE INDEX idempotency_tombstones_first_used_idx ON idempotency_tombstones (first_used_at);

-- +goose Down
DROP INDEX idempotency_tombstones_first_used_idx;
