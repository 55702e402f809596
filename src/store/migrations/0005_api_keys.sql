-- API keys: one user's credential in one organization, limited by scopes. Only the
-- SHA-256 of the key is stored; `key_prefix` (its first 12 characters) identifies it.
CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    key_prefix     TEXT NOT NULL,
    key_hash       BLOB NOT NULL UNIQUE,
    -- JSON array of scope keys.
    scopes         TEXT NOT NULL,
    -- JSON array of CIDRs; empty: any address.
    ip_allowlist   TEXT NOT NULL DEFAULT '[]',
    max_uses       INTEGER CHECK (max_uses IS NULL OR max_uses >= 1),
    use_count      INTEGER NOT NULL DEFAULT 0,
    expires_at     TEXT,
    last_used_at   TEXT,
    last_used_ip   TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    revoked_at     TEXT,
    -- Set on the old key by a rotation: the key that replaced it.
    rotated_to     TEXT REFERENCES api_keys (id) ON DELETE SET NULL
) STRICT;
CREATE INDEX api_keys_by_owner ON api_keys (org_id, user_id, created_at);
