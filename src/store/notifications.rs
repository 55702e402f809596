//! In-app notifications: messages for one user in one organization, such as "your
//! webhook was disabled". Every query takes the organization and the user.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::CachedQuery as _;
use super::StoreError;
use crate::ids::{NotificationId, OrgId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: NotificationId,
    pub org_id: OrgId,
    pub user_id: UserId,
    /// What it is about, such as `webhook.disabled`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// A JSON object (text) with the ids of the subject.
    pub data: String,
    pub read_at: Option<String>,
    pub created_at: String,
}

const COLUMNS: &str = "id, org_id, user_id, kind, title, body, data, read_at, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Notification> {
    Ok(Notification {
        id: row.get(0)?,
        org_id: row.get(1)?,
        user_id: row.get(2)?,
        kind: row.get(3)?,
        title: row.get(4)?,
        body: row.get(5)?,
        data: row.get(6)?,
        read_at: row.get(7)?,
        created_at: row.get(8)?,
    })
}

pub fn insert(conn: &Connection, n: &Notification) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO notifications (id, org_id, user_id, kind, title, body, data, read_at,
                                    created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        n.id,
        n.org_id,
        n.user_id,
        n.kind,
        n.title,
        n.body,
        n.data,
        n.read_at,
        n.created_at,
    ])?;
    Ok(())
}

/// Which page of a user's notifications, newest first, to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Start,
    /// Notifications older than this one.
    Before(NotificationId),
    /// Notifications newer than this one (still listed newest first).
    After(NotificationId),
}

/// Up to `limit` of the user's notifications in `org`, newest first (ids are UUIDv7),
/// optionally only the unread ones.
pub fn list(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    unread_only: bool,
    cursor: Cursor,
    limit: u32,
) -> Result<Vec<Notification>, StoreError> {
    let (before, after) = match cursor {
        Cursor::Start => (None, None),
        Cursor::Before(id) => (Some(id), None),
        Cursor::After(id) => (None, Some(id)),
    };
    let order = if after.is_some() { "ASC" } else { "DESC" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM notifications
         WHERE org_id = ?1 AND user_id = ?2
           AND (?3 = 0 OR read_at IS NULL)
           AND (?4 IS NULL OR id < ?4)
           AND (?5 IS NULL OR id > ?5)
         ORDER BY id {order} LIMIT ?6"
    ))?;
    let rows = stmt.query_map(
        params![org, user, unread_only, before, after, limit],
        from_row,
    )?;
    let mut items: Vec<Notification> = rows.collect::<Result<_, _>>()?;
    if after.is_some() {
        items.reverse();
    }
    Ok(items)
}

/// Whether the user has this notification in `org` (for checking a cursor).
pub fn exists(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    id: NotificationId,
) -> Result<bool, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT 1 FROM notifications WHERE org_id = ?1 AND user_id = ?2 AND id = ?3",
            params![org, user, id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Marks these of the user's notifications in `org` read (ids of other users' or already
/// read ones change nothing). Returns how many changed.
pub fn mark_read(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    ids: &[NotificationId],
    now: &str,
) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE notifications SET read_at = ?4
         WHERE org_id = ?1 AND user_id = ?2 AND id = ?3 AND read_at IS NULL",
    )?;
    let mut changed = 0;
    for id in ids {
        changed += stmt.execute(params![org, user, id, now])?;
    }
    Ok(changed)
}

/// Marks every unread notification of the user in `org` read. Returns how many changed.
pub fn mark_all_read(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    now: &str,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE notifications SET read_at = ?3
             WHERE org_id = ?1 AND user_id = ?2 AND read_at IS NULL",
        )?
        .execute(params![org, user, now])?)
}
