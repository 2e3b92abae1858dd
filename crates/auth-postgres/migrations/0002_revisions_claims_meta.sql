-- 0002_revisions_claims_meta.sql: revisions that end tokens, outbox claims, and deployment-wide values.
--
-- Runs inside the migration transaction together with its schema_version row, so a database is
-- either wholly at version 1 or wholly at version 2. ADD COLUMN with a constant default only records
-- the default in the catalogue (PostgreSQL 11 and later), so no table is rewritten; the CHECKs are
-- validated against the existing rows, which all hold the default.

-- The revision of a user or a portal: bumped by every change that ends their tokens, in the same
-- transaction, and compared by the token insert under a row lock, so a login that read the row before
-- such a change gets no token that survives it. Existing rows start at 0, like new ones.
ALTER TABLE users ADD COLUMN revision BIGINT NOT NULL DEFAULT 0 CHECK (revision >= 0);
ALTER TABLE portals ADD COLUMN revision BIGINT NOT NULL DEFAULT 0 CHECK (revision >= 0);

-- The claimant of the message's current lease (a random number chosen per claim round); NULL until a
-- worker first claims it. A worker's renewal and its result are written only while the row still
-- carries its claim, so a worker whose lease ran out cannot overwrite the one that took over.
ALTER TABLE outbox ADD COLUMN claim BIGINT;

-- Small named values the whole deployment must agree on (such as the check value of the server key).
-- The value is whatever the first writer stored; it is not secret.
CREATE TABLE meta (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);
