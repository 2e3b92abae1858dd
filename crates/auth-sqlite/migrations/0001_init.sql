-- 0001_init.sql: the first schema of the auth store.
--
-- Conventions: ids are 16-byte UUID BLOBs, instants are INTEGER nanoseconds since the Unix epoch
-- (clamped to the i64 range, see src/codec.rs), hashes are 32-byte BLOBs, flags are 0/1 INTEGERs.
-- Nothing secret is stored in the clear: passwords are argon2id PHC strings, codes and tokens are
-- hashes, TOTP secrets, backup-code reveals and SMS texts are sealed by auth-core before they get here.
-- There are deliberately no foreign keys from users, tokens or codes to portals or users: the ports do
-- not demand that the referenced row exists, and the in-memory reference store does not either.

CREATE TABLE portals (
    seq        INTEGER PRIMARY KEY,            -- insertion order ("oldest first")
    id         BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    name       TEXT    NOT NULL,
    settings   TEXT    NOT NULL,               -- PortalSettings::encode
    created_at INTEGER NOT NULL
);

-- One row per host so that UNIQUE(host) makes a host belong to one portal only.
CREATE TABLE portal_hosts (
    host     TEXT    NOT NULL PRIMARY KEY,
    portal   BLOB    NOT NULL REFERENCES portals (id) ON DELETE CASCADE,
    position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX portal_hosts_portal ON portal_hosts (portal, position);

CREATE TABLE users (
    seq             INTEGER PRIMARY KEY,       -- insertion order ("oldest first")
    id              BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    portal          BLOB    NOT NULL CHECK (length(portal) = 16),
    email           TEXT    NOT NULL,          -- as entered
    email_lower     TEXT    NOT NULL,          -- User::email_key (Unicode lower case, computed in Rust)
    first_name      TEXT    NOT NULL,
    last_name       TEXT    NOT NULL,
    is_admin        INTEGER NOT NULL,
    disabled        INTEGER NOT NULL,
    password_hash   TEXT    NOT NULL,          -- argon2id PHC string
    phone           TEXT,
    phone_activated INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (portal, email_lower)
);

CREATE TABLE sms_codes (
    id         INTEGER PRIMARY KEY,
    user       BLOB    NOT NULL,
    phone      TEXT    NOT NULL,
    code_hash  BLOB    NOT NULL CHECK (length(code_hash) = 32),
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sms_codes_user ON sms_codes (user, phone, issued_at);

CREATE TABLE totp (
    user          BLOB    NOT NULL PRIMARY KEY,
    sealed_secret BLOB    NOT NULL,
    activated     INTEGER NOT NULL,
    last_step     INTEGER
) WITHOUT ROWID;

CREATE TABLE backup_codes (
    id        INTEGER PRIMARY KEY,
    user      BLOB    NOT NULL,
    position  INTEGER NOT NULL,                -- issue order
    code_hash BLOB    NOT NULL CHECK (length(code_hash) = 32),
    used      INTEGER NOT NULL
);
CREATE INDEX backup_codes_user ON backup_codes (user, position);

CREATE TABLE backup_reveals (
    user   BLOB NOT NULL PRIMARY KEY,
    sealed BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE tokens (
    hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    user       BLOB    NOT NULL,
    portal     BLOB    NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tokens_user ON tokens (user);
CREATE INDEX tokens_portal ON tokens (portal);
CREATE INDEX tokens_expires ON tokens (expires_at);

-- AUTOINCREMENT: the id is the throttle slot handed to callers, and a released slot must never be
-- reused, or a late second release of it would delete someone else's event.
CREATE TABLE counter_events (
    id  INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT    NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX counter_events_key ON counter_events (key, at);

CREATE TABLE counter_blocks (
    key   TEXT    NOT NULL PRIMARY KEY,
    until INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,            -- append order
    at         INTEGER NOT NULL,
    portal     BLOB    NOT NULL,
    user       BLOB,
    login      TEXT,
    action     INTEGER NOT NULL,               -- the upstream MessageAction code
    ip         TEXT    NOT NULL,
    user_agent TEXT,
    reason     TEXT
);
CREATE INDEX audit_portal ON audit (portal, id);
CREATE INDEX audit_user ON audit (user, id);

-- AUTOINCREMENT: message ids are shown to operators and must not be reused.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    portal          BLOB    NOT NULL,
    to_phone        TEXT    NOT NULL,
    sealed_text     BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;
