//! Messages, their per-device envelopes and their reactions. A message is found through
//! its chat, and its envelopes are read one device at a time: a caller only ever gets the
//! envelope of the device it acts as.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::ids::{ChatId, DeviceId, MessageId, OrgId, UserId};
use crate::store::CachedQuery as _;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub chat_id: ChatId,
    pub sender_user_id: UserId,
    pub sender_device_id: DeviceId,
    /// `None` once deleted (a tombstone).
    pub content_type: Option<String>,
    /// Base64 as sent; `None` once deleted.
    pub ciphertext: Option<String>,
    pub created_at: String,
    pub edited_at: Option<String>,
    pub deleted_at: Option<String>,
    pub expires_at: Option<String>,
}

const COLUMNS: &str = "x.id, x.chat_id, x.sender_user_id, x.sender_device_id, x.content_type, \
     x.ciphertext, x.created_at, x.edited_at, x.deleted_at, x.expires_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: row.get(0)?,
        chat_id: row.get(1)?,
        sender_user_id: row.get(2)?,
        sender_device_id: row.get(3)?,
        content_type: row.get(4)?,
        ciphertext: row.get(5)?,
        created_at: row.get(6)?,
        edited_at: row.get(7)?,
        deleted_at: row.get(8)?,
        expires_at: row.get(9)?,
    })
}

pub fn insert(conn: &Connection, m: &Message) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO messages (id, chat_id, sender_user_id, sender_device_id, content_type,
             ciphertext, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        m.id,
        m.chat_id,
        m.sender_user_id,
        m.sender_device_id,
        m.content_type,
        m.ciphertext,
        m.created_at,
        m.expires_at
    ])?;
    Ok(())
}

pub fn insert_envelopes(
    conn: &Connection,
    message: MessageId,
    envelopes: &[(DeviceId, String)],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO message_envelopes (message_id, device_id, header) VALUES (?1, ?2, ?3)",
    )?;
    for (device, header) in envelopes {
        stmt.execute(params![message, device, header])?;
    }
    Ok(())
}

pub fn delete_envelopes(conn: &Connection, message: MessageId) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM message_envelopes WHERE message_id = ?1")?
        .execute(params![message])?;
    Ok(())
}

/// The message `id` of a chat in `org` (expired messages are gone; tombstones are found).
pub fn find_in_org(
    conn: &Connection,
    org: OrgId,
    id: MessageId,
) -> Result<Option<Message>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {COLUMNS} FROM messages x JOIN chats c ON c.id = x.chat_id
                 WHERE c.org_id = ?1 AND x.id = ?2"
            ),
            params![org, id],
            from_row,
        )
        .optional()?)
}

/// The envelope header of `device` for this message, if the message carries one.
pub fn envelope_for(
    conn: &Connection,
    message: MessageId,
    device: DeviceId,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT header FROM message_envelopes WHERE message_id = ?1 AND device_id = ?2",
            params![message, device],
            |row| row.get(0),
        )
        .optional()?)
}

/// A page of the chat's messages as `device` sees them, newest first, each with that
/// device's envelope: the messages sealed to it, and the tombstones of messages sent
/// after `visible_from` (when the device and its user could first have received them).
pub fn list_for_device(
    conn: &Connection,
    chat: ChatId,
    device: DeviceId,
    visible_from: &str,
    before: Option<MessageId>,
    limit: u32,
    now: &str,
) -> Result<Vec<(Message, Option<String>)>, StoreError> {
    // A message past its `expiresAt` is hidden even before the sweeper deletes it.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, e.header FROM messages x
         LEFT JOIN message_envelopes e ON e.message_id = x.id AND e.device_id = ?2
         WHERE x.chat_id = ?1 AND (?4 IS NULL OR x.id < ?4)
           AND (x.expires_at IS NULL OR x.expires_at > ?6)
           AND (e.header IS NOT NULL OR (x.deleted_at IS NOT NULL AND x.created_at >= ?3))
         ORDER BY x.id DESC LIMIT ?5"
    ))?;
    let rows = stmt.query_map(
        params![chat, device, visible_from, before, limit, now],
        |row| Ok((from_row(row)?, row.get(10)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether the message is in the chat (a `before` cursor check).
pub fn in_chat(conn: &Connection, chat: ChatId, id: MessageId) -> Result<bool, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT 1 FROM messages WHERE chat_id = ?1 AND id = ?2",
            params![chat, id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn replace_content(
    conn: &Connection,
    id: MessageId,
    content_type: &str,
    ciphertext: &str,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE messages SET content_type = ?2, ciphertext = ?3, edited_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, content_type, ciphertext, now])?;
    Ok(())
}

/// Turns the message into a tombstone: ciphertext, content type, envelopes, reactions and
/// attachments (so the files it named are no longer downloadable through it) gone,
/// `deleted_at` set.
pub fn tombstone(conn: &Connection, id: MessageId, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE messages SET content_type = NULL, ciphertext = NULL, deleted_at = ?2,
             expires_at = NULL
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    delete_envelopes(conn, id)?;
    conn.prepare_cached("DELETE FROM message_reactions WHERE message_id = ?1")?
        .execute(params![id])?;
    super::attachments::delete_for_message(conn, id)?;
    Ok(())
}

/// Up to `limit` messages whose `expires_at` is at or before `now`, with their chat's
/// organization.
pub fn expired(
    conn: &Connection,
    now: &str,
    limit: u32,
) -> Result<Vec<(Message, OrgId)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, c.org_id FROM messages x JOIN chats c ON c.id = x.chat_id
         WHERE x.expires_at IS NOT NULL AND x.expires_at <= ?1
         ORDER BY x.expires_at LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now, limit], |row| {
        Ok((from_row(row)?, row.get(10)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes the message row; envelopes, reactions and attachments go with it (cascade).
pub fn delete(conn: &Connection, id: MessageId) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

/// The user's reaction on the message, if any.
pub fn reaction_of(
    conn: &Connection,
    message: MessageId,
    user: UserId,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT emoji FROM message_reactions WHERE message_id = ?1 AND user_id = ?2",
            params![message, user],
            |row| row.get(0),
        )
        .optional()?)
}

pub fn set_reaction(
    conn: &Connection,
    message: MessageId,
    user: UserId,
    emoji: &str,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO message_reactions (message_id, user_id, emoji, created_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (message_id, user_id) DO UPDATE SET emoji = ?3, created_at = ?4",
    )?
    .execute(params![message, user, emoji, now])?;
    Ok(())
}

pub fn remove_reaction(
    conn: &Connection,
    message: MessageId,
    user: UserId,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM message_reactions WHERE message_id = ?1 AND user_id = ?2")?
        .execute(params![message, user])?;
    Ok(())
}

/// The message's reactions: each emoji with its count and whether `user` chose it, most
/// frequent first.
pub fn reactions(
    conn: &Connection,
    message: MessageId,
    user: UserId,
) -> Result<Vec<(String, i64, bool)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT emoji, COUNT(*), MAX(user_id = ?2) FROM message_reactions
         WHERE message_id = ?1 GROUP BY emoji ORDER BY COUNT(*) DESC, emoji",
    )?;
    let rows = stmt.query_map(params![message, user], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? != 0))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
