-- 0003_social.sql: account links of social login, and what exchanged OAuth codes proved.
--
-- Applied to version-2 files in the same IMMEDIATE transaction as the version number, so a file is
-- either wholly at version 2 or wholly at version 3. It only creates tables and indexes, so no
-- existing row is touched.
--
-- Provider names and subjects are TEXT with SQLite's default BINARY collation, so they are compared
-- exactly, byte for byte: "G-1" and "g-1" are different subjects, as the port demands.

-- An account link: the identity (provider, subject) at a social provider is this user of this portal.
--
-- The two UNIQUE constraints are the port's two rules: an identity is linked to one user at most, and
-- a user has one link per provider at most. `insert_link` is one INSERT ... ON CONFLICT DO NOTHING
-- without a conflict target, which skips the row when either constraint is taken; SQLite runs the
-- statement under its write lock, so of concurrent inserts, in any number of processes, one stores
-- the row and every other one changes nothing and is told so.
--
-- The constraints' own indexes serve the lookups, so there are no others: (portal, provider, subject)
-- answers `link_by_subject`, and the second one lists `user` first (a column order that changes
-- nothing about what is unique), so it answers `links_of` (by user) and `delete_link` (by user and
-- provider) as well.
--
-- `user` names the users row by its id, but deliberately without a foreign key, and so does
-- `portal`. Whether the user exists is the core's check before it links; the ports do not demand the
-- referenced row, the in-memory reference store keeps links of user ids it has never seen, and the
-- conformance suite stores such links, so a foreign key would make this store refuse what the
-- reference accepts. No port deletes users or portals either, so no link can be left behind by one.
CREATE TABLE account_links (
    seq        INTEGER PRIMARY KEY,            -- insertion order ("oldest first")
    portal     BLOB    NOT NULL CHECK (length(portal) = 16),
    provider   TEXT    NOT NULL,               -- the provider's configured name, lower-case
    subject    TEXT    NOT NULL,               -- the provider's stable id of the account, exact
    user       BLOB    NOT NULL CHECK (length(user) = 16),
    created_at INTEGER NOT NULL,
    UNIQUE (portal, provider, subject),
    UNIQUE (user, provider, portal)
);

-- What an exchanged codeOAuth proved, for the few minutes in which step 2 of a login may send the
-- same code again. The key is a keyed hash of the code; the code itself is never stored. The first
-- value stored under a hash stays (`remember_code` is INSERT ... ON CONFLICT (code_hash) DO NOTHING).
-- The e-mail is NULL when the provider gave none.
CREATE TABLE remembered_codes (
    code_hash      BLOB    NOT NULL PRIMARY KEY CHECK (length(code_hash) = 32),
    provider       TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    email          TEXT,
    email_verified INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
) WITHOUT ROWID;
-- `purge_codes` deletes by expiry.
CREATE INDEX remembered_codes_expires ON remembered_codes (expires_at);
