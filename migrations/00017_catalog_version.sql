-- +goose Up
-- The catalog's version: one counter that every statement writing products or plans
-- moves on, in that statement's transaction. A process holding plans in memory
-- (package catalog) reads it in the same snapshot as what it serves, and uses its
-- copy only when the versions match, so no replica shows a plan older than the
-- database it reads. A bump takes the clock's microseconds when they are ahead, so
-- a database put back (a restore) and written to again never reaches a version a
-- process held before with other rows.
CREATE TABLE catalog_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL
);
INSERT INTO catalog_version (one, version) VALUES (true, 1);

-- +goose StatementBegin
-- It runs as its owner (the schema's): the server's role writes products and plans
-- but may not write the version itself (database.GrantRuntime), so it can neither
-- rewind it nor delete its row.
CREATE FUNCTION catalog_version_bump() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE catalog_version
        SET version = greatest(version + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER products_catalog_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_version_bump();
CREATE TRIGGER plans_catalog_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plans
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_version_bump();

-- +goose Down
DROP TRIGGER plans_catalog_version ON plans;
DROP TRIGGER products_catalog_version ON products;
DROP FUNCTION catalog_version_bump();
DROP TABLE catalog_version;
