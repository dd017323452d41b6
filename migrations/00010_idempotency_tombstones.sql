-- +goose Up
-- A key that ran is never run again, however late the retry. Stripe forgets the keys
-- we derive from a client's key after 24 hours, so a second run past that would
-- charge twice. Once a key leaves idempotency_keys (after its retention) it leaves
-- a tombstone: a SHA-256 of caller, operation and key, and when it was first used;
-- no input, no result, no personal data. A key with a tombstone is refused.
CREATE TABLE idempotency_tombstones (
    scope_hash    bytea PRIMARY KEY CHECK (octet_length(scope_hash) = 32),
    first_used_at timestamptz NOT NULL,
    retired_at    timestamptz NOT NULL DEFAULT now()
);

-- A run that failed keeps its row (RELEASED) instead of deleting it, so its first
-- use, and with it the window in which the provider still knows the derived keys,
-- is never forgotten by a retry.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_state_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_state_check
    CHECK (state IN ('IN_PROGRESS', 'COMPLETED', 'RELEASED'));

-- The stored result holds a PaymentIntent's client secret or a Checkout URL: sealed
-- from now on (package sealing, bound to idempotency_keys.response and the row id).
-- Existing results are plaintext that SQL cannot seal: their keys are retired into
-- tombstones, so a retry of one gets a clear refusal, never a second effect.
INSERT INTO idempotency_tombstones (scope_hash, first_used_at)
SELECT sha256(convert_to('scoville/idempotency/v1', 'UTF8') || '\x00'::bytea || convert_to(scope, 'UTF8') || '\x00'::bytea ||
    convert_to(operation, 'UTF8') || '\x00'::bytea || convert_to(key, 'UTF8')), created_at
FROM idempotency_keys
ON CONFLICT (scope_hash) DO NOTHING;
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys ALTER COLUMN response TYPE bytea USING NULL;
COMMENT ON COLUMN idempotency_keys.response IS 'sealed (package sealing): the JSON result replayed to a retry';

-- +goose Down
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys ALTER COLUMN response TYPE jsonb USING NULL;
COMMENT ON COLUMN idempotency_keys.response IS NULL;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_state_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_state_check
    CHECK (state IN ('IN_PROGRESS', 'COMPLETED'));
DROP TABLE idempotency_tombstones;
