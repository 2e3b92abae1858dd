-- 0003_social.sql: account links of social login, and what exchanged OAuth codes proved.
--
-- Runs inside the migration transaction together with its schema_version row, so a database is
-- either wholly at version 2 or wholly at version 3. It only creates tables and indexes, so no
-- existing row is touched.
--
-- Provider names and subjects are compared exactly: a database's default collation is deterministic,
-- and under a deterministic collation two texts are equal only when their bytes are, so "G-1" and
-- "g-1" are different subjects, as the port demands.

-- An account link: the identity (provider, subject) at a social provider is this user of this portal.
--
-- The two UNIQUE constraints are the port's two rules: an identity is linked to one user at most, and
-- a user has one link per provider at most. `insert_link` is one INSERT ... ON CONFLICT DO NOTHING
-- without a conflict target, which makes every unique index of the table an arbiter: an insert that
-- meets a row another transaction is inserting under either key waits for that transaction, and when
-- it commits, skips its own row instead of failing with a unique violation. So of concurrent inserts,
-- on any number of nodes, exactly one stores its row, and the others change nothing and are told so.
-- The constraints are not DEFERRABLE, because ON CONFLICT cannot use a deferrable one as an arbiter.
--
-- The constraints' own indexes serve the lookups, so there are no others: (portal_id, provider,
-- subject) answers `link_by_subject`, and the second one lists `user_id` first (a column order that
-- changes nothing about what is unique), so it answers `links_of` (by user) and `delete_link` (by
-- user and provider) as well.
--
-- `user_id` names the users row by its id, but deliberately without a foreign key, and so does
-- `portal_id`. Whether the user exists is the core's check before it links; the ports do not demand
-- the referenced row, the in-memory reference store keeps links of user ids it has never seen, and the
-- conformance suite stores such links, so a foreign key would make this store refuse what the
-- reference accepts. No port deletes users or portals either, so no link can be left behind by one.
CREATE TABLE account_links (
    seq        BIGSERIAL PRIMARY KEY,          -- insertion order ("oldest first")
    portal_id  UUID      NOT NULL,
    provider   TEXT      NOT NULL,             -- the provider's configured name, lower-case
    subject    TEXT      NOT NULL,             -- the provider's stable id of the account, exact
    user_id    UUID      NOT NULL,
    created_at BIGINT    NOT NULL,
    UNIQUE (portal_id, provider, subject),
    UNIQUE (user_id, provider, portal_id)
);

-- What an exchanged codeOAuth proved, for the few minutes in which step 2 of a login may send the
-- same code again. The key is a keyed hash of the code; the code itself is never stored. The first
-- value stored under a hash stays (`remember_code` is INSERT ... ON CONFLICT (code_hash) DO NOTHING).
-- The e-mail is NULL when the provider gave none.
CREATE TABLE remembered_codes (
    code_hash      BYTEA   NOT NULL PRIMARY KEY CHECK (octet_length(code_hash) = 32),
    provider       TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    email          TEXT,
    email_verified BOOLEAN NOT NULL,
    expires_at     BIGINT  NOT NULL
);
-- `purge_codes` deletes by expiry.
CREATE INDEX remembered_codes_expires ON remembered_codes (expires_at);
