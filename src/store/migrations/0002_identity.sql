-- Accounts, organizations and memberships, sessions with their refresh tokens, the
-- one-time setup token, the audit log and the event outbox.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    email              TEXT NOT NULL,
    -- Lower-cased email: uniqueness and lookups are case-insensitive.
    email_key          TEXT NOT NULL UNIQUE,
    display_name       TEXT NOT NULL,
    -- Argon2id PHC string; NULL until the user sets a password through a link.
    password_hash      TEXT,
    status             TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    is_instance_admin  INTEGER NOT NULL DEFAULT 0 CHECK (is_instance_admin IN (0, 1)),
    avatar_url         TEXT,
    preferences        TEXT NOT NULL DEFAULT '{}',
    default_org_id     TEXT REFERENCES organizations (id) ON DELETE SET NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
) STRICT;

CREATE TABLE memberships (
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
) STRICT;
CREATE INDEX memberships_by_user ON memberships (user_id);

-- A session is one refresh-token family: it starts at login and ends when revoked.
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    revoked_at      TEXT,
    revoked_reason  TEXT
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    -- SHA-256 of the token; the token itself is never stored.
    token_hash  BLOB PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    -- Set when the token is exchanged; presenting it again revokes the session.
    used_at     TEXT
) STRICT;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- While no user exists, the hash of the one-time token that creates the first admin.
CREATE TABLE setup_tokens (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    token_hash  BLOB NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

-- Append-only record of security-relevant actions. The hash chain over these rows is
-- added with the audit API; the rows start here.
CREATE TABLE audit_log (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    at             TEXT NOT NULL,
    actor_user_id  TEXT,
    action         TEXT NOT NULL,
    target_type    TEXT,
    target_id      TEXT,
    org_id         TEXT,
    ip             TEXT,
    user_agent     TEXT,
    request_id     TEXT,
    outcome        TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    details        TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX audit_log_by_org ON audit_log (org_id, seq);
CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Events written in the same transaction as the change that causes them; the webhook
-- dispatcher (a later feature) fans them out.
CREATE TABLE outbox_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    org_id      TEXT,
    data        TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
