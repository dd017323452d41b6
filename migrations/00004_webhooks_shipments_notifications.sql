-- +goose Up
-- The webhook inbox: every verified Stripe event, stored once by its id (WH-2) and kept
-- with its outcome (WH-5). seq is the arrival order, which breaks ties between events
-- with the same created second.
CREATE TABLE webhook_events (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq               bigint GENERATED ALWAYS AS IDENTITY,
    provider_event_id text NOT NULL UNIQUE CHECK (length(provider_event_id) BETWEEN 1 AND 255),
    type              text NOT NULL CHECK (length(type) BETWEEN 1 AND 100),
    api_version       text NOT NULL DEFAULT '' CHECK (length(api_version) <= 40),
    livemode          boolean NOT NULL DEFAULT false,
    object_id         text CHECK (length(object_id) <= 255),
    event_created     timestamptz NOT NULL,
    payload           bytea NOT NULL,
    status            text NOT NULL DEFAULT 'RECEIVED' CHECK (status IN ('RECEIVED', 'PROCESSED', 'FAILED', 'IGNORED')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error        text CHECK (length(last_error) <= 2000),
    outcome           text CHECK (length(outcome) <= 500),
    received_at       timestamptz NOT NULL DEFAULT now(),
    processed_at      timestamptz
);
CREATE INDEX webhook_events_received_idx ON webhook_events (received_at DESC, id DESC);
CREATE INDEX webhook_events_status_idx ON webhook_events (status, received_at DESC, id DESC);

-- Ordering (WH-4): each object keeps the created time and arrival seq of the last event
-- applied to it; an older event never rolls it back.
ALTER TABLE subscriptions ADD COLUMN provider_event_seq bigint;

ALTER TABLE payments
    ADD COLUMN provider_updated_at timestamptz,
    ADD COLUMN provider_event_seq  bigint,
    ADD COLUMN mismatch            text CHECK (length(mismatch) <= 500),
    ADD COLUMN disputed_at         timestamptz,
    ADD COLUMN dispute_reason      text CHECK (length(dispute_reason) <= 100),
    ADD COLUMN fraud_warning_at    timestamptz;
CREATE INDEX payments_payment_intent_idx ON payments (stripe_payment_intent_id) WHERE stripe_payment_intent_id IS NOT NULL;
CREATE INDEX payments_mismatch_idx ON payments (created_at DESC) WHERE mismatch IS NOT NULL;

-- A shipment is the box for one paid invoice's period, to the address as it was when
-- paid. The unique invoice id makes it exactly one per paid invoice.
CREATE TABLE shipments (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subscription_id   uuid NOT NULL REFERENCES subscriptions (id),
    customer_id       uuid NOT NULL REFERENCES customers (id),
    payment_id        uuid NOT NULL UNIQUE REFERENCES payments (id),
    plan_id           uuid NOT NULL REFERENCES plans (id),
    stripe_invoice_id text NOT NULL UNIQUE,
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL CHECK (period_end >= period_start),
    address           jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SHIPPED', 'CANCELED')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shipments_subscription_idx ON shipments (subscription_id, created_at DESC, id DESC);

-- A notification to a customer (SUB-3), written in the transaction of the change it
-- reports; a queued job sends it. dedupe_key makes one notification per cause.
CREATE TABLE notifications (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    kind            text NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    subscription_id uuid REFERENCES subscriptions (id),
    payment_id      uuid REFERENCES payments (id),
    data            jsonb NOT NULL DEFAULT '{}',
    dedupe_key      text NOT NULL UNIQUE CHECK (length(dedupe_key) BETWEEN 1 AND 300),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX notifications_customer_idx ON notifications (customer_id, created_at DESC);

-- +goose Down
DROP TABLE notifications;
DROP TABLE shipments;
DROP INDEX payments_mismatch_idx;
DROP INDEX payments_payment_intent_idx;
ALTER TABLE payments
    DROP COLUMN fraud_warning_at,
    DROP COLUMN dispute_reason,
    DROP COLUMN disputed_at,
    DROP COLUMN mismatch,
    DROP COLUMN provider_event_seq,
    DROP COLUMN provider_updated_at;
ALTER TABLE subscriptions DROP COLUMN provider_event_seq;
DROP TABLE webhook_events;
