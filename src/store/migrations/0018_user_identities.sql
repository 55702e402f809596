-- Sign-in with identity providers (docs/sso.md): which account at which provider is
-- linked to which local user. The provider's `sub` (GitHub: the numeric user id) is the
-- identity; the e-mail address is what it said at the last sign-in, for display. An
-- unlinked row stays as a tombstone: that provider account no longer signs in, and is
-- not linked again by its e-mail address, until the user links it from the account page.
CREATE TABLE user_identities (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_login_at TEXT,
    unlinked_at TEXT,
    UNIQUE (provider, subject)
);

CREATE INDEX user_identities_by_user ON user_identities (user_id, created_at);
