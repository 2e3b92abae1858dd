-- 0004_email.sql: the outbox's e-mail channel and password-reset keys (spec §14).
--
-- Applied to version-3 files in the same IMMEDIATE transaction as the version number, so a file is
-- either wholly at version 3 or wholly at version 4. The added column has a constant default, which
-- SQLite's ADD COLUMN records in the schema without rewriting the table: every message already queued
-- is an SMS, as it was.

-- What a message travels by ('sms' or 'email'); each channel's worker claims only its own, so the
-- due index leads with it.
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms', 'email'));
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (channel, next_attempt_at) WHERE sent_at IS NULL;

-- An outstanding reset key, under the keyed hash of the key (never the key): a stolen file gives
-- no working link. `take_reset_key` is one DELETE ... RETURNING, so of concurrent takes one gets the
-- row (single use). `expires_at` is indexed for housekeeping's purge.
CREATE TABLE reset_keys (
    hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    user_id    BLOB    NOT NULL CHECK (length(user_id) = 16),
    portal     BLOB    NOT NULL CHECK (length(portal) = 16),
    revision   INTEGER NOT NULL CHECK (revision >= 0),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX reset_keys_expiry ON reset_keys (expires_at);
