-- +goose Up
-- Who a stored provider event is about (DAT-3): the identifiers its object names at
-- known places (data.object's own id, customer, subscription, invoice,
-- payment_intent, charge, and our customer id in metadata or client_reference_id),
-- one row each. A customer's export and erasure find their events here, by exact
-- value, instead of opening every stored payload. Stripe ids and our ids are no
-- personal data, so they are stored plain.
--
-- The route does not write here: the event worker indexes an event in the
-- transaction that applies it, and export and erasure index whatever is still
-- waiting first (package eventindex).
CREATE TABLE webhook_event_subjects (
    kind     text NOT NULL CHECK (kind IN ('customer', 'stripe_customer', 'subscription', 'invoice', 'payment_intent', 'charge')),
    value    text NOT NULL CHECK (length(value) BETWEEN 1 AND 255),
    event_id uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    PRIMARY KEY (kind, value, event_id)
);
-- An event's own subjects (the charges a customer's invoice names, say).
CREATE INDEX webhook_event_subjects_event_idx ON webhook_event_subjects (event_id);

-- NULL until the event's subjects are written. Nullable without a default, so adding
-- it rewrites nothing and the route's INSERT is unchanged.
ALTER TABLE webhook_events ADD COLUMN subjects_indexed_at timestamptz;
-- Events not indexed and no longer RECEIVED: FAILED ones and those stored before
-- this migration. The route inserts RECEIVED rows, which this partial index never
-- holds, so it costs the route nothing; RECEIVED rows are found by
-- webhook_events_status_idx.
CREATE INDEX webhook_events_unindexed_idx ON webhook_events (id)
    WHERE subjects_indexed_at IS NULL AND status <> 'RECEIVED';

-- +goose Down
DROP INDEX webhook_events_unindexed_idx;
ALTER TABLE webhook_events DROP COLUMN subjects_indexed_at;
DROP TABLE webhook_event_subjects;
