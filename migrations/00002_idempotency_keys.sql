-- +goose Up
-- Client idempotency keys: one row per (caller, operation, key). The request hash
-- catches a key reused with another input; the stored response answers replays.
CREATE TABLE idempotency_keys (
    id           bigserial PRIMARY KEY,
    scope        text NOT NULL CHECK (length(scope) BETWEEN 1 AND 600),
    operation    text NOT NULL CHECK (length(operation) BETWEEN 1 AND 100),
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL,
    state        text NOT NULL CHECK (state IN ('IN_PROGRESS', 'COMPLETED')),
    response     jsonb,
    locked_until timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_scope_key UNIQUE (scope, operation, key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
