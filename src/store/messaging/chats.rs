//! Chats and their members. A chat belongs to one organization; every finder takes it.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::ids::{ChatId, OrgId, UserId};
use crate::store::CachedQuery as _;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub id: ChatId,
    pub org_id: OrgId,
    /// `direct` or `group`.
    pub kind: String,
    pub name: Option<String>,
    pub direct_key: Option<String>,
    pub created_by: UserId,
    pub created_at: String,
    pub last_message_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: UserId,
    pub display_name: String,
    /// `owner` or `member`.
    pub role: String,
    pub joined_at: String,
    pub last_read_at: Option<String>,
}

/// A chat as one member sees it in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    pub chat: Chat,
    pub unread: i64,
}

const COLUMNS: &str =
    "c.id, c.org_id, c.kind, c.name, c.direct_key, c.created_by, c.created_at, c.last_message_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Chat> {
    Ok(Chat {
        id: row.get(0)?,
        org_id: row.get(1)?,
        kind: row.get(2)?,
        name: row.get(3)?,
        direct_key: row.get(4)?,
        created_by: row.get(5)?,
        created_at: row.get(6)?,
        last_message_at: row.get(7)?,
    })
}

pub fn insert(conn: &Connection, c: &Chat) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO chats (id, org_id, kind, name, direct_key, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        c.id,
        c.org_id,
        c.kind,
        c.name,
        c.direct_key,
        c.created_by,
        c.created_at
    ])
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict
        }
        other => other.into(),
    })?;
    Ok(())
}

/// The chat `id` of `org` if `user` is one of its members: no other finder exists, so a
/// non-member cannot tell a chat from a missing one.
pub fn find_for_member(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    id: ChatId,
) -> Result<Option<Chat>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {COLUMNS} FROM chats c
                 JOIN chat_members m ON m.chat_id = c.id AND m.user_id = ?2
                 WHERE c.org_id = ?1 AND c.id = ?3"
            ),
            params![org, user, id],
            from_row,
        )
        .optional()?)
}

/// The one-to-one chat with this key in `org`, if one exists.
pub fn find_direct(
    conn: &Connection,
    org: OrgId,
    direct_key: &str,
) -> Result<Option<Chat>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM chats c WHERE c.org_id = ?1 AND c.direct_key = ?2"),
            params![org, direct_key],
            from_row,
        )
        .optional()?)
}

/// The chats `user` is a member of in `org`, most recently active first, with how many
/// messages from others arrived since the member last read the chat.
pub fn list_for_member(
    conn: &Connection,
    org: OrgId,
    user: UserId,
) -> Result<Vec<ChatSummary>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS},
            (SELECT COUNT(*) FROM messages x
              WHERE x.chat_id = c.id AND x.sender_user_id != ?2 AND x.deleted_at IS NULL
                AND x.created_at >= m.joined_at
                AND (m.last_read_at IS NULL OR x.created_at > m.last_read_at))
         FROM chats c JOIN chat_members m ON m.chat_id = c.id AND m.user_id = ?2
         WHERE c.org_id = ?1
         ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.id DESC"
    ))?;
    let rows = stmt.query_map(params![org, user], |row| {
        Ok(ChatSummary {
            chat: from_row(row)?,
            unread: row.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn add_member(
    conn: &Connection,
    chat: ChatId,
    user: UserId,
    role: &str,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO chat_members (chat_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (chat_id, user_id) DO NOTHING",
        )?
        .execute(params![chat, user, role, now])?
        > 0)
}

pub fn remove_member(conn: &Connection, chat: ChatId, user: UserId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM chat_members WHERE chat_id = ?1 AND user_id = ?2")?
        .execute(params![chat, user])?
        > 0)
}

/// The chat's members with their display names, in the order they joined.
pub fn members(conn: &Connection, chat: ChatId) -> Result<Vec<Member>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.user_id, u.display_name, m.role, m.joined_at, m.last_read_at
         FROM chat_members m JOIN users u ON u.id = m.user_id
         WHERE m.chat_id = ?1 ORDER BY m.joined_at, m.user_id",
    )?;
    let rows = stmt.query_map(params![chat], |row| {
        Ok(Member {
            user_id: row.get(0)?,
            display_name: row.get(1)?,
            role: row.get(2)?,
            joined_at: row.get(3)?,
            last_read_at: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The member's row, if `user` is in the chat.
pub fn member(conn: &Connection, chat: ChatId, user: UserId) -> Result<Option<Member>, StoreError> {
    Ok(members(conn, chat)?.into_iter().find(|m| m.user_id == user))
}

/// Every user who shares at least one chat of `org` with `user` (not `user`).
pub fn co_members(conn: &Connection, org: OrgId, user: UserId) -> Result<Vec<UserId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT o.user_id FROM chat_members mine
         JOIN chats c ON c.id = mine.chat_id AND c.org_id = ?1
         JOIN chat_members o ON o.chat_id = mine.chat_id AND o.user_id != ?2
         WHERE mine.user_id = ?2",
    )?;
    let rows = stmt.query_map(params![org, user], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn set_last_message(conn: &Connection, chat: ChatId, at: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE chats SET last_message_at = ?2 WHERE id = ?1")?
        .execute(params![chat, at])?;
    Ok(())
}

pub fn mark_read(
    conn: &Connection,
    chat: ChatId,
    user: UserId,
    at: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE chat_members SET last_read_at = ?3 WHERE chat_id = ?1 AND user_id = ?2",
    )?
    .execute(params![chat, user, at])?;
    Ok(())
}

/// Whether `user` already has an unread message notification for this chat (so a busy
/// chat leaves one notification, not one per message).
pub fn has_unread_notification(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    kind: &str,
    chat: ChatId,
) -> Result<bool, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT 1 FROM notifications
             WHERE org_id = ?1 AND user_id = ?2 AND kind = ?3 AND read_at IS NULL
               AND json_extract(data, '$.chatId') = ?4
             LIMIT 1",
            params![org, user, kind, chat],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
