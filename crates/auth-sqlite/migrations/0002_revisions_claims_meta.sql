-- 0002_revisions_claims_meta.sql: revisions that end tokens, outbox claims, and deployment-wide values.
--
-- Applied to version-1 files in the same IMMEDIATE transaction as the version number, so a file is
-- either wholly at version 1 or wholly at version 2. Every added column has a constant default, which
-- SQLite's ADD COLUMN records in the schema without rewriting the table; existing rows read it back.

-- The revision of a user or a portal: bumped in the same transaction as every change that ends their
-- tokens, and compared by the token insert, so a login that read the row before such a change gets no
-- token that survives it. Existing rows start at 0, like new ones.
ALTER TABLE users ADD COLUMN revision INTEGER NOT NULL DEFAULT 0 CHECK (revision >= 0);
ALTER TABLE portals ADD COLUMN revision INTEGER NOT NULL DEFAULT 0 CHECK (revision >= 0);

-- The claimant of the message's current lease (a random number chosen per claim round); NULL until a
-- worker first claims it. A worker's renewal and its result are written only while the row still
-- carries its claim, so a worker whose lease ran out cannot overwrite the one that took over.
ALTER TABLE outbox ADD COLUMN claim INTEGER;

-- Small named values the whole deployment must agree on (such as the check value of the server key).
-- The value is whatever the first writer stored; it is not secret.
CREATE TABLE meta (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
