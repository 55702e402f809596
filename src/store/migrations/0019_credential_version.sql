-- One number that moves with every committed change to the rows that decide who a
-- credential belongs to and what it may do. In-process caches of credential checks
-- (service::auth_cache) trust an entry only while this number is the one they read before
-- the check. Triggers, not application code, move it: a change made by any connection of
-- any process (`sealbox admin`, the sqlite3 shell) is seen as well, in the same
-- transaction as the change itself.
CREATE TABLE credential_version (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    n   INTEGER NOT NULL
) STRICT;
INSERT INTO credential_version (id, n) VALUES (1, 0);

-- Columns left out on purpose: a session's last_seen_at, ip and user_agent (refreshed on
-- every token refresh) and a key's use_count and last use (checked on every use anyway)
-- change nothing a cached check holds. A new session or key cannot make a cached check of
-- another one wrong, so their inserts move nothing either.

CREATE TRIGGER sessions_update_moves_credential_version AFTER UPDATE OF user_id, revoked_at, revoked_reason ON sessions
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER sessions_delete_moves_credential_version AFTER DELETE ON sessions
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER api_keys_update_moves_credential_version AFTER UPDATE OF org_id, user_id, name, key_prefix, key_hash, scopes, ip_allowlist, max_uses, expires_at, revoked_at, rotated_to ON api_keys
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER api_keys_delete_moves_credential_version AFTER DELETE ON api_keys
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER users_insert_moves_credential_version AFTER INSERT ON users
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER users_update_moves_credential_version AFTER UPDATE ON users
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER users_delete_moves_credential_version AFTER DELETE ON users
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER memberships_insert_moves_credential_version AFTER INSERT ON memberships
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER memberships_update_moves_credential_version AFTER UPDATE ON memberships
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER memberships_delete_moves_credential_version AFTER DELETE ON memberships
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER organizations_insert_moves_credential_version AFTER INSERT ON organizations
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER organizations_update_moves_credential_version AFTER UPDATE ON organizations
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER organizations_delete_moves_credential_version AFTER DELETE ON organizations
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER roles_insert_moves_credential_version AFTER INSERT ON roles
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER roles_update_moves_credential_version AFTER UPDATE ON roles
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER roles_delete_moves_credential_version AFTER DELETE ON roles
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;
