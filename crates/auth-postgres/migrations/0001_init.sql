-- 0001_init.sql: the first schema of the auth store on PostgreSQL.
--
-- Conventions, shared with auth-sqlite: ids are UUIDs, instants are BIGINT nanoseconds since the Unix
-- epoch (clamped to the i64 range, see src/codec.rs), hashes are 32-byte BYTEA, flags are BOOLEAN.
-- Small integers are spelled INT4, not INTEGER, because CockroachDB reads INTEGER as 64 bits.
-- Nanoseconds rather than TIMESTAMPTZ because TIMESTAMPTZ keeps microseconds only, and the core hands us
-- nanosecond instants that it later compares whole.
-- Nothing secret is stored in the clear: passwords are argon2id PHC strings, codes and tokens are
-- hashes, TOTP secrets, backup-code reveals and SMS texts are sealed by auth-core before they get here.
-- There are deliberately no foreign keys from users, tokens or codes to portals or users: the ports do
-- not demand that the referenced row exists, and the in-memory reference store does not either.
-- The file runs inside the migration transaction, so it holds no BEGIN/COMMIT of its own.

CREATE TABLE portals (
    seq        BIGSERIAL PRIMARY KEY,          -- insertion order ("oldest first")
    id         UUID      NOT NULL UNIQUE,
    name       TEXT      NOT NULL,
    settings   TEXT      NOT NULL,             -- PortalSettings::encode
    created_at BIGINT    NOT NULL
);

-- One row per host so that the primary key makes a host belong to one portal only.
CREATE TABLE portal_hosts (
    host      TEXT    NOT NULL PRIMARY KEY,
    portal_id UUID    NOT NULL REFERENCES portals (id) ON DELETE CASCADE,
    position  INT4    NOT NULL
);
CREATE INDEX portal_hosts_portal ON portal_hosts (portal_id, position);

CREATE TABLE users (
    seq             BIGSERIAL PRIMARY KEY,     -- insertion order ("oldest first")
    id              UUID      NOT NULL UNIQUE,
    portal_id       UUID      NOT NULL,
    email           TEXT      NOT NULL,        -- as entered
    email_lower     TEXT      NOT NULL,        -- User::email_key (Unicode lower case, computed in Rust)
    first_name      TEXT      NOT NULL,
    last_name       TEXT      NOT NULL,
    is_admin        BOOLEAN   NOT NULL,
    disabled        BOOLEAN   NOT NULL,
    password_hash   TEXT      NOT NULL,        -- argon2id PHC string
    phone           TEXT,
    phone_activated BOOLEAN   NOT NULL,
    created_at      BIGINT    NOT NULL,
    UNIQUE (portal_id, email_lower)
);

-- One row per name; a transaction that must not interleave with others about the same thing (one
-- user's SMS codes, one user's backup codes) first upserts its row, which takes the row lock until it
-- ends. Row locks rather than advisory locks, so distributed PostgreSQL-compatible databases keep them.
CREATE TABLE locks (
    name TEXT NOT NULL PRIMARY KEY
);

CREATE TABLE sms_codes (
    id         BIGSERIAL PRIMARY KEY,
    user_id    UUID      NOT NULL,
    phone      TEXT      NOT NULL,
    code_hash  BYTEA     NOT NULL CHECK (octet_length(code_hash) = 32),
    issued_at  BIGINT    NOT NULL,
    expires_at BIGINT    NOT NULL
);
CREATE INDEX sms_codes_user ON sms_codes (user_id, phone, issued_at);

CREATE TABLE totp (
    user_id       UUID    NOT NULL PRIMARY KEY,
    sealed_secret BYTEA   NOT NULL,
    activated     BOOLEAN NOT NULL,
    last_step     BIGINT  CHECK (last_step >= 0)
);

CREATE TABLE backup_codes (
    id        BIGSERIAL PRIMARY KEY,
    user_id   UUID      NOT NULL,
    position  INT4      NOT NULL,              -- issue order
    code_hash BYTEA     NOT NULL CHECK (octet_length(code_hash) = 32),
    used      BOOLEAN   NOT NULL
);
CREATE INDEX backup_codes_user ON backup_codes (user_id, position);

CREATE TABLE backup_reveals (
    user_id UUID  NOT NULL PRIMARY KEY,
    sealed  BYTEA NOT NULL
);

CREATE TABLE tokens (
    hash       BYTEA  NOT NULL PRIMARY KEY CHECK (octet_length(hash) = 32),
    user_id    UUID   NOT NULL,
    portal_id  UUID   NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_portal ON tokens (portal_id);
CREATE INDEX tokens_expires ON tokens (expires_at);

-- One row per throttle key: its block, and (through its row lock) the order in which acquires on the
-- key are decided. Every acquire and record upserts it first, so concurrent ones on one key queue.
CREATE TABLE counter_keys (
    key           TEXT   NOT NULL PRIMARY KEY,
    blocked_until BIGINT                       -- NULL when not blocked
);

-- The id is the throttle slot handed to callers; a sequence never hands one out twice, so a late
-- second release of a slot cannot delete someone else's event.
CREATE TABLE counter_events (
    id  BIGSERIAL PRIMARY KEY,
    key TEXT      NOT NULL,
    at  BIGINT    NOT NULL
);
CREATE INDEX counter_events_key ON counter_events (key, at);

CREATE TABLE audit (
    id         BIGSERIAL PRIMARY KEY,          -- append order
    at         BIGINT    NOT NULL,
    portal_id  UUID      NOT NULL,
    user_id    UUID,
    login      TEXT,
    action     INT4      NOT NULL,             -- the upstream MessageAction code
    ip         TEXT      NOT NULL,
    user_agent TEXT,
    reason     TEXT
);
CREATE INDEX audit_portal ON audit (portal_id, id);
CREATE INDEX audit_user ON audit (user_id, id);

-- Message ids are shown to operators and must not be reused.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    portal_id       UUID      NOT NULL,
    to_phone        TEXT      NOT NULL,
    sealed_text     BYTEA     NOT NULL,
    created_at      BIGINT    NOT NULL,
    attempts        INT4      NOT NULL CHECK (attempts >= 0),
    next_attempt_at BIGINT    NOT NULL,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;
