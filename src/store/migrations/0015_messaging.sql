-- Messaging (issue 19, the communication reference's Devices, Chats and Messages): the
-- server stores public key bundles, ciphertext and per-device envelopes verbatim; it
-- never holds a key that opens them. See docs/messaging.md.

-- A device of a user in one organization: its public key bundle (base64 as sent, with
-- algorithm labels). `event_seq` is the last sequence number handed to one of its stream
-- events (device_events), incremented in the transaction that writes the event.
-- Removing a device deletes its row: its envelopes, pre-keys and pending events go with it.
CREATE TABLE devices (
    id                      TEXT PRIMARY KEY,
    org_id                  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id                 TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL,
    identity_key_alg        TEXT NOT NULL,
    identity_key            TEXT NOT NULL,
    signed_prekey_id        INTEGER NOT NULL,
    signed_prekey_alg       TEXT NOT NULL,
    signed_prekey           TEXT NOT NULL,
    signed_prekey_signature TEXT NOT NULL,
    event_seq               INTEGER NOT NULL DEFAULT 0,
    created_at              TEXT NOT NULL,
    last_seen_at            TEXT
) STRICT;
CREATE INDEX devices_by_user ON devices (org_id, user_id, id);

-- One-time pre-keys: each is handed out once (claimed with one DELETE ... RETURNING).
CREATE TABLE device_prekeys (
    device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    key_id     INTEGER NOT NULL,
    alg        TEXT NOT NULL,
    public_key TEXT NOT NULL,
    PRIMARY KEY (device_id, key_id)
) STRICT, WITHOUT ROWID;

-- A chat: one-to-one (`direct`, `direct_key` = the two user ids in order, unique per
-- organization) or a `group` with a name.
CREATE TABLE chats (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    name            TEXT,
    direct_key      TEXT,
    created_by      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      TEXT NOT NULL,
    last_message_at TEXT,
    UNIQUE (org_id, direct_key)
) STRICT;
CREATE INDEX chats_by_org ON chats (org_id, id);

-- Participants. `last_read_at`: when the member last read the newest page (unread count).
CREATE TABLE chat_members (
    chat_id      TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at    TEXT NOT NULL,
    last_read_at TEXT,
    PRIMARY KEY (chat_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX chat_members_by_user ON chat_members (user_id, chat_id);

-- Messages. A deleted one is a tombstone: `deleted_at` set, ciphertext and content type
-- gone, its envelopes and reactions deleted. An expired one is deleted outright.
CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    chat_id          TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    sender_user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sender_device_id TEXT NOT NULL,
    content_type     TEXT,
    ciphertext       TEXT,
    created_at       TEXT NOT NULL,
    edited_at        TEXT,
    deleted_at       TEXT,
    expires_at       TEXT
) STRICT;
CREATE INDEX messages_by_chat ON messages (chat_id, id);
CREATE INDEX messages_by_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;

-- One envelope (the message key sealed to one device) per recipient device.
CREATE TABLE message_envelopes (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    header     TEXT NOT NULL,
    PRIMARY KEY (message_id, device_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX message_envelopes_by_device ON message_envelopes (device_id, message_id);

-- One reaction per user and message: an opaque short string.
CREATE TABLE message_reactions (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (message_id, user_id)
) STRICT, WITHOUT ROWID;

-- The per-device event log the real-time stream reads: ids only, never ciphertext (the
-- stream reads the message's current state when it sends the event). `seq` grows by one
-- per event of a device, in commit order, so `Last-Event-ID` resumes with no gap and no
-- duplicate.
CREATE TABLE device_events (
    device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    type       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (device_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX device_events_by_time ON device_events (created_at);
