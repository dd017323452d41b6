-- +goose Up
-- Outgoing webhooks (package outbox): the brand's downstream systems (3PL, CRM,
-- accounting) registered by staff, the messages written in the transaction of the
-- fact that causes them, and one delivery per (message, endpoint).

-- An endpoint's secrets are sealed (package sealing). previous_secret keeps signing
-- beside secret until previous_secret_expires_at, for a rotation.
CREATE TABLE webhook_endpoints (
    id                         uuid PRIMARY KEY,
    url                        text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description                text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    event_types                jsonb NOT NULL CHECK (jsonb_typeof(event_types) = 'array'),
    enabled                    boolean NOT NULL DEFAULT true,
    disabled_reason            text,
    secret                     bytea NOT NULL,
    previous_secret            bytea,
    previous_secret_expires_at timestamptz,
    -- Set at the first failed attempt after a success, cleared by a success: an
    -- endpoint failing for too long is disabled.
    failing_since              timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_created_idx ON webhook_endpoints (created_at DESC, id DESC);

-- One message per fact: its id is derived from the fact (the shipment, the payment's
-- outcome, the subscription's sequence number), so a fact recorded twice cannot
-- write a second one. The payload (it may hold an address) is sealed; customer_id
-- lets erasure find a customer's messages.
CREATE TABLE webhook_messages (
    id          uuid PRIMARY KEY,
    event_type  text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 100),
    customer_id uuid,
    payload     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_messages_customer_idx ON webhook_messages (customer_id) WHERE customer_id IS NOT NULL;

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    message_id       uuid NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status           text NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         integer NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    next_attempt_at  timestamptz,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (created_at) WHERE status = 'PENDING';

-- Every attempt: what the receiver answered (status_code NULL when it did not), a
-- short error, when.
CREATE TABLE webhook_delivery_attempts (
    id          bigserial PRIMARY KEY,
    delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    status_code integer,
    error       text,
    duration_ms integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_delivery_attempts_delivery_idx ON webhook_delivery_attempts (delivery_id, id);

-- The sequence of subscription.updated per subscription: it grows by one with each
-- change committed, in the change's transaction (the row lock orders them).
CREATE TABLE webhook_subscription_sequences (
    subscription_id uuid PRIMARY KEY,
    sequence        bigint NOT NULL
);

-- +goose Down
DROP TABLE webhook_subscription_sequences;
DROP TABLE webhook_delivery_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_messages;
DROP TABLE webhook_endpoints;
