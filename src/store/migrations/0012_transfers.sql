-- Transfers (SPEC §6): a named bundle of files sent to org users, email addresses or
-- anyone holding the link, with an expiry, a download limit and an optional password.

-- `mode` is `server` (sealbox encrypts the files under the transfer's DEK) or `e2e` (the
-- client uploads SBX1 ciphertext and encrypted names; the key never reaches the server).
-- `master_sealed_dek`: the DEK sealed by the master key. Kept for a server-mode transfer
-- without a password; with a password it is kept only while the transfer is pending
-- (uploads need it) and dropped at finalize, leaving `password_sealed_key`: the DEK
-- (server mode) or a random check value (e2e) sealed by an Argon2id KEK of the password.
-- `downloads` is counted with one conditional UPDATE, so `max_downloads` is exact.
CREATE TABLE transfers (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    sender_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    sealed_message      TEXT,
    mode                TEXT NOT NULL CHECK (mode IN ('server', 'e2e')),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'expired', 'revoked')),
    expires_at          TEXT NOT NULL,
    max_downloads       INTEGER,
    downloads           INTEGER NOT NULL DEFAULT 0,
    upload_token_hash   BLOB UNIQUE,
    master_sealed_dek   TEXT,
    password_salt       BLOB,
    password_params     TEXT,
    password_sealed_key TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
) STRICT;
CREATE INDEX transfers_by_org ON transfers (org_id, id);
CREATE INDEX transfers_by_expiry ON transfers (status, expires_at);

-- The files of a transfer. `file_id` names an upload while it runs and the file once the
-- transfer is finalized (they share the id), so there is no foreign key to `files`.
CREATE TABLE transfer_files (
    file_id     TEXT PRIMARY KEY,
    transfer_id TEXT NOT NULL REFERENCES transfers (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX transfer_files_by_transfer ON transfer_files (transfer_id);

-- Who a transfer is for: an email address or a user of the organization.
CREATE TABLE transfer_recipients (
    transfer_id TEXT NOT NULL REFERENCES transfers (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    email       TEXT,
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (transfer_id, position),
    CHECK ((email IS NULL) <> (user_id IS NULL))
) STRICT;

-- Download sessions: one per download token (from unlock) that has started a counted
-- download. The first file response from byte 0 under a token counts the transfer's
-- download once and records the session; later files of the same download (and
-- re-fetches) under that token are not counted again, and keep working after the limit
-- was reached. Rows outlive their token by nothing: the sweeper drops them once the
-- token has expired.
CREATE TABLE transfer_download_sessions (
    transfer_id TEXT NOT NULL REFERENCES transfers (id) ON DELETE CASCADE,
    session     BLOB NOT NULL,
    counted_at  TEXT NOT NULL,
    PRIMARY KEY (transfer_id, session)
) STRICT, WITHOUT ROWID;
CREATE INDEX transfer_download_sessions_by_age ON transfer_download_sessions (counted_at);
