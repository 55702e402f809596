-- Messaging, continued (issue 19): files referenced from messages, and one-time pre-keys
-- that remember being claimed. See docs/messaging.md.

-- The files a message names in `attachments`: client-encrypted files its sender could
-- read when sending. A participant who can see the message may download each through
-- the files routes while the message lives: a tombstone deletes these rows, an expired
-- (deleted) message or a deleted file takes them with it.
CREATE TABLE message_attachments (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    file_id    TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    PRIMARY KEY (message_id, file_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX message_attachments_by_file ON message_attachments (file_id, message_id);

-- A claimed one-time pre-key now keeps its row (`claimed_at` set, public key dropped), so
-- a top-up can refuse a key id the device has used before: a sender may still hold a
-- claimed key, and two keys under one id would make the device open the wrong one.
ALTER TABLE device_prekeys ADD COLUMN claimed_at TEXT;
CREATE INDEX device_prekeys_unclaimed ON device_prekeys (device_id, key_id)
    WHERE claimed_at IS NULL;
