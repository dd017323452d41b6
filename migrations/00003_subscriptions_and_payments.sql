-- +goose Up
-- A subscription mirrors one Stripe subscription; its status only ever comes from Stripe.
CREATE TABLE subscriptions (
    id                     uuid PRIMARY KEY,
    customer_id            uuid NOT NULL REFERENCES customers (id),
    plan_id                uuid NOT NULL REFERENCES plans (id),
    status                 text NOT NULL CHECK (status IN ('INCOMPLETE', 'INCOMPLETE_EXPIRED', 'TRIALING', 'ACTIVE',
                                                           'PAST_DUE', 'UNPAID', 'PAUSED', 'CANCELED')),
    stripe_subscription_id text UNIQUE,
    stripe_item_id         text,
    current_period_start   timestamptz,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    paused_until           timestamptz,
    shipping_address       jsonb NOT NULL,
    provider_updated_at    timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_customer_id_idx ON subscriptions (customer_id, created_at DESC);
CREATE INDEX subscriptions_status_idx ON subscriptions (status, created_at DESC);

-- A payment is one invoice of a subscription; webhooks fill it.
CREATE TABLE payments (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subscription_id          uuid NOT NULL REFERENCES subscriptions (id),
    customer_id              uuid NOT NULL REFERENCES customers (id),
    amount                   bigint NOT NULL CHECK (amount >= 0),
    currency                 text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount_refunded          bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount),
    status                   text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'REFUNDED', 'PARTIALLY_REFUNDED')),
    stripe_invoice_id        text NOT NULL UNIQUE,
    stripe_payment_intent_id text,
    invoice_url              text,
    paid_at                  timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_subscription_id_idx ON payments (subscription_id, created_at DESC, id DESC);

-- +goose Down
DROP TABLE payments;
DROP TABLE subscriptions;
