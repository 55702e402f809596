-- The secrets vault (SPEC §5, §6): each user's X-Wing key pair, KV secrets and their
-- read-only shares, and recovery material held by trustees.

-- One key pair per user. The private seed is stored only sealed under a KEK derived from
-- the user secret (Argon2id with the salt and parameters stored here); `generation`
-- grows at every rekey so unlocked copies cached in memory are dropped.
CREATE TABLE user_keys (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    public_key     BLOB NOT NULL,
    fingerprint    TEXT NOT NULL,
    sealed_seed    BLOB NOT NULL,
    kek_salt       BLOB NOT NULL,
    kek_params     TEXT NOT NULL,
    generation     INTEGER NOT NULL DEFAULT 1,
    -- A seed handed back through recovery, sealed under a recovery secret; the next
    -- rekey that opens it with X-User-Secret (and finds it matches the public key)
    -- makes it the seed. The previous seal stays until then.
    restored_seed  BLOB,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;

-- A KV secret: its value sealed under its own DEK, and the DEK sealed to the owner.
-- `dek_generation` changes when an overwrite without the owner's secret picks a new DEK
-- (shares made under an older DEK can then no longer be read).
CREATE TABLE kv_entries (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    owner_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    dek_generation  INTEGER NOT NULL,
    sealed_value    BLOB NOT NULL,
    owner_envelope  BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (org_id, owner_id, name)
) STRICT;

-- Read-only shares of an object with one recipient of the same organization: the
-- object's DEK sealed to the recipient, and an alias sealed under the DEK.
CREATE TABLE shares (
    id               TEXT PRIMARY KEY,
    object_kind      TEXT NOT NULL CHECK (object_kind IN ('kv', 'file')),
    object_id        TEXT NOT NULL,
    org_id           TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    owner_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    recipient_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permission       TEXT NOT NULL CHECK (permission = 'read'),
    envelope         BLOB NOT NULL,
    dek_generation   INTEGER NOT NULL,
    sealed_alias     BLOB,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    expires_at       TEXT,
    first_access_at  TEXT,
    last_access_at   TEXT,
    revoked_at       TEXT
) STRICT;
CREATE UNIQUE INDEX shares_one_active
    ON shares (object_kind, object_id, recipient_id) WHERE revoked_at IS NULL;
CREATE INDEX shares_by_recipient ON shares (recipient_id, revoked_at);
CREATE TRIGGER kv_entry_deleted_drops_shares AFTER DELETE ON kv_entries
BEGIN
    DELETE FROM shares WHERE object_kind = 'kv' AND object_id = OLD.id;
END;

-- Recovery: material an owner left with a trustee, opaque to the server.
CREATE TABLE recovery_trustees (
    owner_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    trustee_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    ecc_share           BLOB NOT NULL,
    kyber_share         BLOB NOT NULL,
    xor_applied         INTEGER NOT NULL,
    xor_salt_hint       TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (owner_id, trustee_id)
) STRICT;
CREATE INDEX recovery_by_trustee ON recovery_trustees (trustee_id);
