-- +goose Up
-- Reconciliation with Stripe (OPS-5): one row per reconciled source, holding the
-- watermark of the last successful run. The next run lists what Stripe changed since
-- then (minus an overlap), so a failed run is simply done again.
CREATE TABLE reconciliation_state (
    name          text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 50),
    watermark     timestamptz NOT NULL,
    last_run_at   timestamptz NOT NULL,
    last_findings integer NOT NULL DEFAULT 0 CHECK (last_findings >= 0)
);

-- +goose Down
DROP TABLE reconciliation_state;
