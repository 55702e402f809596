-- Public transfer links carry a random secret (`/t/{id}#s=<secret>`, sent back as the
-- `X-Transfer-Secret` header): the UUIDv7 id alone is guessable. `link_secret_hash` is
-- the SHA-256 of the secret as sent (unpadded base64url), checked in constant time;
-- `sealed_link_secret` is the secret sealed by the master key, so the server can show the
-- sender the link, mail it and put it in notifications. Transfers created before this
-- migration have neither and keep working without a secret.
ALTER TABLE transfers ADD COLUMN link_secret_hash BLOB;
ALTER TABLE transfers ADD COLUMN sealed_link_secret TEXT;

-- Download tokens (file download links and transfer download tokens): the token is
-- `0x02 || id || secret`; the server keeps only what the secret derives (`verifier`, and
-- the key the token grants sealed under a key derived from the secret), never the
-- secret, and deletes the row once the token has expired. `user_id`: for a file link,
-- the user it was issued to (owner or share recipient), whose standing is checked on
-- every use. `counted_at`: when a file link's first download was recorded (one audit row
-- and one event per link, however many requests).
CREATE TABLE download_tokens (
    id           BLOB PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('file', 'transfer')),
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    file_id      TEXT REFERENCES files (id) ON DELETE CASCADE,
    transfer_id  TEXT REFERENCES transfers (id) ON DELETE CASCADE,
    verifier     BLOB NOT NULL,
    sealed_key   BLOB,
    expires_at   TEXT NOT NULL,
    counted_at   TEXT,
    created_at   TEXT NOT NULL,
    CHECK ((kind = 'file') = (file_id IS NOT NULL AND user_id IS NOT NULL)),
    CHECK ((kind = 'transfer') = (transfer_id IS NOT NULL))
) STRICT, WITHOUT ROWID;
CREATE INDEX download_tokens_by_expiry ON download_tokens (expires_at);
