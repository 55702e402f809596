-- Single-use links that let a user choose a new password: 'reset' (forgot-password, or a
-- link an admin issues; 1 h) and 'set' (a new account's first password; 72 h).
CREATE TABLE password_reset_tokens (
    -- SHA-256 of the token; the token itself is only ever in the link.
    token_hash  BLOB PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('reset', 'set')),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    -- Set when the token is redeemed, or when a password change makes it pointless.
    used_at     TEXT
) STRICT;
CREATE INDEX password_reset_tokens_by_user ON password_reset_tokens (user_id);
