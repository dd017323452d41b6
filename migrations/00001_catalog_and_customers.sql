-- +goose Up
-- Catalog: a product is a box (Mild, Hot, ...); a plan is one recurring price of it.
CREATE TABLE products (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description       text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    stripe_product_id text UNIQUE,
    active            boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Money is an integer amount in minor units with an upper-case ISO 4217 code.
CREATE TABLE plans (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id       uuid NOT NULL REFERENCES products (id),
    billing_interval text NOT NULL CHECK (billing_interval IN ('MONTH', 'QUARTER', 'YEAR')),
    amount           bigint NOT NULL CHECK (amount > 0),
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    trial_days       integer NOT NULL DEFAULT 0 CHECK (trial_days BETWEEN 0 AND 730),
    stripe_price_id  text UNIQUE,
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plans_product_id_idx ON plans (product_id);

-- A customer is an identity at an issuer; (issuer, subject) never changes for a person.
CREATE TABLE customers (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    issuer             text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 2048),
    subject            text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    email              text NOT NULL DEFAULT '' CHECK (length(email) <= 320),
    name               text CHECK (length(name) <= 200),
    stripe_customer_id text UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_identity_key UNIQUE (issuer, subject)
);

-- +goose Down
DROP TABLE customers;
DROP TABLE plans;
DROP TABLE products;
