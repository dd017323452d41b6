-- +goose Up
-- Personal data encrypted at rest (DAT-1): e-mail, name and addresses, and the raw
-- webhook payloads (which hold names, e-mails and addresses), are sealed by the
-- application (package sealing) and stored as bytes only it can open. customers.
-- email_hash is the keyed blind index that finds a customer by e-mail.
--
-- Existing plaintext cannot be encrypted here (the database never sees the keys), and
-- there is no production data yet: the migration refuses to run over personal data
-- rather than leave plaintext behind or throw it away. Recreate a development
-- database (make run does) to apply it.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM customers) OR EXISTS (SELECT 1 FROM webhook_events) THEN
        RAISE EXCEPTION '00007_encryption: the database holds plaintext personal data; it cannot be encrypted by SQL. Recreate the development database and migrate again.';
    END IF;
END;
$$;
-- +goose StatementEnd

ALTER TABLE customers
    DROP CONSTRAINT customers_email_check,
    DROP CONSTRAINT customers_name_check,
    ALTER COLUMN email DROP DEFAULT,
    ALTER COLUMN email DROP NOT NULL,
    ALTER COLUMN email TYPE bytea USING convert_to(email, 'UTF8'),
    ALTER COLUMN name TYPE bytea USING convert_to(name, 'UTF8'),
    ADD COLUMN email_hash bytea CHECK (octet_length(email_hash) = 32);
-- Not unique: two identities (issuers) may share an address.
CREATE INDEX customers_email_hash_idx ON customers (email_hash) WHERE email_hash IS NOT NULL;

ALTER TABLE subscriptions
    ALTER COLUMN shipping_address TYPE bytea USING convert_to(shipping_address::text, 'UTF8');
ALTER TABLE shipments
    ALTER COLUMN address TYPE bytea USING convert_to(address::text, 'UTF8');

COMMENT ON COLUMN customers.email IS 'sealed (package sealing): AEAD bound to customers.email and the row id; NULL when none or erased';
COMMENT ON COLUMN customers.name IS 'sealed (package sealing): AEAD bound to customers.name and the row id';
COMMENT ON COLUMN customers.email_hash IS 'keyed blind index: HMAC-SHA256 of the lower-cased e-mail';
COMMENT ON COLUMN subscriptions.shipping_address IS 'sealed (package sealing): JSON address';
COMMENT ON COLUMN shipments.address IS 'sealed (package sealing): JSON address';
COMMENT ON COLUMN webhook_events.payload IS 'sealed (package sealing): the event body as Stripe signed it';

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM customers) OR EXISTS (SELECT 1 FROM webhook_events) THEN
        RAISE EXCEPTION '00007_encryption down: sealed data cannot be decrypted by SQL; recreate the database instead.';
    END IF;
END;
$$;
-- +goose StatementEnd
COMMENT ON COLUMN webhook_events.payload IS NULL;
ALTER TABLE shipments ALTER COLUMN address TYPE jsonb USING convert_from(address, 'UTF8')::jsonb;
ALTER TABLE subscriptions ALTER COLUMN shipping_address TYPE jsonb USING convert_from(shipping_address, 'UTF8')::jsonb;
DROP INDEX customers_email_hash_idx;
ALTER TABLE customers
    DROP COLUMN email_hash,
    ALTER COLUMN name TYPE text USING convert_from(name, 'UTF8'),
    ALTER COLUMN email TYPE text USING convert_from(email, 'UTF8'),
    ALTER COLUMN email SET DEFAULT '',
    ALTER COLUMN email SET NOT NULL,
    ADD CONSTRAINT customers_email_check CHECK (length(email) <= 320),
    ADD CONSTRAINT customers_name_check CHECK (length(name) <= 200);
