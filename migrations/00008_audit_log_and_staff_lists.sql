-- +goose Up
-- (Version 5 is River's schema, a Go step: see river.go.)
--
-- The audit log (OPS-4): every manual action and refused privileged attempt. It is
-- append-only in the database itself: the trigger refuses UPDATE and DELETE for every
-- role, and TRUNCATE is refused too, so neither our code nor a stray query can rewrite it.
CREATE TABLE audit_log (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    actor_issuer  text NOT NULL,
    actor_subject text NOT NULL,
    actor_roles   jsonb NOT NULL DEFAULT '[]',
    action        text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    target_type   text NOT NULL,
    target_id     text NOT NULL,
    reason        text NOT NULL,
    request_id    text,
    client_ip     text,
    before        jsonb,
    after         jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_created_idx ON audit_log (created_at DESC, id DESC);

-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Staff lists (adminSubscriptions, adminCustomers) page newest first by
-- (created_at, id); with a status filter, subscriptions_status_idx serves.
CREATE INDEX subscriptions_created_idx ON subscriptions (created_at DESC, id DESC);
CREATE INDEX customers_created_idx ON customers (created_at DESC, id DESC);

-- +goose Down
DROP INDEX customers_created_idx;
DROP INDEX subscriptions_created_idx;
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
