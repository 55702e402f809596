-- Idempotency keys (SPEC §3): the first response to a POST or PATCH sent with an
-- `Idempotency-Key`, replayed to retries for 24 hours. `principal` is `user:<id>` or
-- `api_key:<id>`; `fingerprint` the SHA-256 of the request's method, path, organization
-- header and body. The stored response is sealed with the instance master key: it may
-- carry a secret shown once (a new API key).
CREATE TABLE idempotency_keys (
    principal     TEXT NOT NULL,
    key           TEXT NOT NULL,
    fingerprint   BLOB NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('running', 'done')),
    status        INTEGER,
    response      TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    PRIMARY KEY (principal, key)
) STRICT;
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
