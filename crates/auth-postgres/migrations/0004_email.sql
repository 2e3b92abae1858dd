-- 0004_email.sql: the outbox's e-mail channel and password-reset keys (spec §14).
--
-- Applied under the migration advisory lock in one transaction with the version row. ADD COLUMN with
-- a constant default does not rewrite the table (PostgreSQL 11+): every message already queued is an
-- SMS, as it was.

-- What a message travels by; each channel's worker claims only its own, so the due index leads with it.
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms', 'email'));
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (channel, next_attempt_at) WHERE sent_at IS NULL;

-- An outstanding reset key, under the keyed hash of the key (never the key). `take_reset_key` is one
-- DELETE ... RETURNING: of concurrent takes, the first deletes the row and the others, waiting on its
-- row lock, find it gone (READ COMMITTED re-checks), so a key is used once.
CREATE TABLE reset_keys (
    hash       BYTEA  NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    user_id    UUID   NOT NULL,
    portal_id  UUID   NOT NULL,
    revision   BIGINT NOT NULL CHECK (revision >= 0),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX reset_keys_expiry ON reset_keys (expires_at);
