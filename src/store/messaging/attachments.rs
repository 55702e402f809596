//! The files a message names (`attachments`), and the one question the files routes ask
//! of them: may this user download this file because a message they can see names it?

use rusqlite::{Connection, OptionalExtension, params};

use crate::ids::{FileId, MessageId, OrgId, UserId};
use crate::store::CachedQuery as _;
use crate::store::StoreError;

/// Records the message's attachments, in the order the sender listed them.
pub fn insert(conn: &Connection, message: MessageId, files: &[FileId]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO message_attachments (message_id, file_id, position) VALUES (?1, ?2, ?3)",
    )?;
    for (position, file) in files.iter().enumerate() {
        stmt.execute(params![message, file, position as i64])?;
    }
    Ok(())
}

/// Drops the message's attachments (an edit that replaces them, a tombstone).
pub fn delete_for_message(conn: &Connection, message: MessageId) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM message_attachments WHERE message_id = ?1")?
        .execute(params![message])?;
    Ok(())
}

/// The message's attachments, in the sender's order.
pub fn of_message(conn: &Connection, message: MessageId) -> Result<Vec<FileId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT file_id FROM message_attachments WHERE message_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map(params![message], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `user` is a participant of a chat of `org` holding a live message (not a
/// tombstone, not past its `expiresAt`) that names `file` and was sent since the user
/// joined that chat: the messages the user can see (docs/messaging.md).
pub fn visible_to(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    file: FileId,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT 1 FROM message_attachments a
             JOIN messages m ON m.id = a.message_id
             JOIN chats c ON c.id = m.chat_id AND c.org_id = ?1
             JOIN chat_members p ON p.chat_id = c.id AND p.user_id = ?2
             WHERE a.file_id = ?3 AND m.deleted_at IS NULL
               AND (m.expires_at IS NULL OR m.expires_at > ?4)
               AND m.created_at >= p.joined_at
             LIMIT 1",
            params![org, user, file, now],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
