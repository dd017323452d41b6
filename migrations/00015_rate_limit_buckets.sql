-- +goose Up
-- Allowances that must hold across API replicas (package ratelimit): one token
-- bucket per caller and scope (mutations, payment-provider operations), shared by
-- every process on this database. The key is a hash of scope and caller, so no
-- identifier is stored. A bucket idle long enough to have refilled is the same as
-- none and is purged.
CREATE TABLE rate_limit_buckets (
    key        bytea PRIMARY KEY CHECK (octet_length(key) = 16),
    tokens     double precision NOT NULL,
    rate       double precision NOT NULL CHECK (rate > 0), -- tokens per second
    burst      double precision NOT NULL CHECK (burst >= 1),
    updated_at timestamptz NOT NULL
);
-- Counters, not records: not written to the WAL (cheaper per mutation), emptied
-- after a crash of the database (every caller starts with a full allowance) and
-- absent on standbys (a promoted standby starts empty too).
ALTER TABLE rate_limit_buckets SET UNLOGGED;

-- +goose Down
DROP TABLE rate_limit_buckets;
