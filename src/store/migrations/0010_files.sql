-- Encrypted files (SPEC §5, §6) and the uploads that create them.

-- A stored file. `encryption` is `server` (sealbox encrypted the bytes as SBX1 under the
-- file's DEK, which is sealed to the owner; the name is sealed under the DEK too) or
-- `client` (the client uploaded bytes it had already encrypted; the server stores them
-- untouched and cannot read them; `client_name` is what the client sent as the name).
CREATE TABLE files (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    owner_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    encryption      TEXT NOT NULL CHECK (encryption IN ('server', 'client')),
    sealed_name     BLOB,
    client_name     TEXT,
    content_type    TEXT NOT NULL,
    -- Bytes of the file as its owner sees them (plaintext for `server`).
    size            INTEGER NOT NULL,
    -- Bytes stored, and their BLAKE3 (hex), for `doctor --scrub`.
    stored_size     INTEGER NOT NULL,
    blake3          TEXT NOT NULL,
    owner_envelope  BLOB,
    dek_generation  INTEGER NOT NULL DEFAULT 1,
    blob_key        TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;
CREATE INDEX files_by_owner ON files (org_id, owner_id, created_at);

-- An upload in progress. `token_hash` is the SHA-256 of the capability in the upload
-- URL. `received` counts the bytes durably written: for `server`, whole sealed segments
-- only (plaintext of a partial segment is never written), so a resumed upload continues
-- from there. While the upload runs, the DEK is sealed by the master key so the server
-- can keep encrypting after a restart; it is dropped when the file is finalized.
CREATE TABLE uploads (
    id                  TEXT PRIMARY KEY,
    token_hash          BLOB NOT NULL UNIQUE,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    owner_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    encryption          TEXT NOT NULL CHECK (encryption IN ('server', 'client')),
    sealed_name         BLOB,
    client_name         TEXT,
    content_type        TEXT NOT NULL,
    declared_size       INTEGER NOT NULL,
    received            INTEGER NOT NULL DEFAULT 0,
    sbx1_header         BLOB,
    master_sealed_dek   TEXT,
    owner_envelope      BLOB,
    -- tus Upload-Metadata as sent, for HEAD.
    metadata            TEXT,
    complete            INTEGER NOT NULL DEFAULT 0,
    expires_at          TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
) STRICT;
CREATE INDEX uploads_by_expiry ON uploads (expires_at);
CREATE TRIGGER file_deleted_drops_shares AFTER DELETE ON files
BEGIN
    DELETE FROM shares WHERE object_kind = 'file' AND object_id = OLD.id;
END;
