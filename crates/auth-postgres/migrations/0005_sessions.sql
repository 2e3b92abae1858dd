-- 0005_sessions.sql: what the sessions list shows of a token (spec §13), and the indexes that the
-- outbox retention and the audit export read by.
--
-- Runs inside the migration transaction together with its schema_version row, so a database is
-- either wholly before or wholly after it. ADD COLUMN with a constant default only records the
-- default in the catalogue; the UPDATE then gives every existing token its real values. The three
-- indexes are built inside that transaction, which holds off writes to their tables while it runs:
-- a start-up cost paid once, in seconds even for millions of audit events.

-- The token's public id: what the sessions list calls a token and what `logout/{id}` takes. New
-- tokens get a random id below 2^53 from the core, never derived from the token. Tokens issued
-- before this migration are numbered 1, 2, … in issue order, which cannot collide with each other;
-- a later random id that meets one of them is refused by the unique index and drawn again.
ALTER TABLE tokens ADD COLUMN id BIGINT NOT NULL DEFAULT 0;

-- When the token was last presented, written in coalesced batches (never by the request itself);
-- an existing token was last known to be used when it was issued.
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;

-- The client address (text, as the audit trail keeps it) and the truncated User-Agent of the login
-- that issued the token; unknown (NULL) for tokens issued before this migration.
ALTER TABLE tokens ADD COLUMN client_ip TEXT;
ALTER TABLE tokens ADD COLUMN user_agent TEXT;

UPDATE tokens SET id = numbered.n, last_used_at = tokens.issued_at
FROM (SELECT hash, row_number() OVER (ORDER BY issued_at, hash) AS n FROM tokens) AS numbered
WHERE numbered.hash = tokens.hash;

-- One id, one token, on every node: the insert of a token whose id is taken fails with a unique
-- violation (answered as Conflict), and `logout/{id}` finds at most one row.
CREATE UNIQUE INDEX tokens_id ON tokens (id);

-- The audit export reads a time range oldest first, in pages keyed by (at, id): this index serves
-- both the range and the order, so each page is one short index scan however large the trail.
CREATE INDEX audit_at ON audit (at, id);

-- The outbox retention deletes old finished messages oldest first by creation time.
CREATE INDEX outbox_created ON outbox (created_at);
