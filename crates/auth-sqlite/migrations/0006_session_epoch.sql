-- 0006_session_epoch.sql: the count of changes that can make a cached session lookup wrong
-- (`session_cache.rs` in the adapter keeps one cache per process; issue 18).
--
-- Every row change that can alter what `session_by_token_hash` answers bumps `session_epoch.n`,
-- whoever makes it, through these triggers: a user's row updated or deleted, a token deleted, or a
-- token's identifying columns changed (its last-used time is not one: that is bookkeeping). The
-- store's own write transactions compare `n` before and after their work; when it moved, they tell
-- every process's cache before they commit (see `session_cache.rs`). A deleted portal deletes its
-- tokens by cascade, which fires the token trigger too.

CREATE TABLE session_epoch (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    n    INTEGER NOT NULL
);
INSERT INTO session_epoch (id, n) VALUES (1, 0);

CREATE TRIGGER session_epoch_user_update AFTER UPDATE ON users
BEGIN UPDATE session_epoch SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER session_epoch_user_delete AFTER DELETE ON users
BEGIN UPDATE session_epoch SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER session_epoch_token_delete AFTER DELETE ON tokens
BEGIN UPDATE session_epoch SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER session_epoch_token_update
AFTER UPDATE OF hash, user, portal, issued_at, expires_at, id ON tokens
BEGIN UPDATE session_epoch SET n = n + 1 WHERE id = 1; END;
