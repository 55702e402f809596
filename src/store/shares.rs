//! Read-only shares of KV secrets and files with one recipient of the same organization.
//! A share is active until revoked (by the owner, or removed by the recipient) and, when
//! it has an expiry, until then. Owner-side lookups take the object; recipient-side ones
//! take the recipient and the organization.

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;
use super::StoreError;
use crate::ids::{OrgId, ShareId, UserId};

/// What kind of object a share opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Kv,
    File,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Kv => "kv",
            ObjectKind::File => "file",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub id: ShareId,
    pub object_id: String,
    pub org_id: OrgId,
    pub owner_id: UserId,
    pub recipient_id: UserId,
    pub permission: String,
    pub envelope: Vec<u8>,
    pub dek_generation: i64,
    pub sealed_alias: Option<Vec<u8>>,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: Option<String>,
    pub first_access_at: Option<String>,
    pub last_access_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A share with the display name of the other party (recipient for owners, owner for
/// recipients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareWithName {
    pub share: Share,
    pub name: String,
}

const COLUMNS: &str = "s.id, s.object_id, s.org_id, s.owner_id, s.recipient_id, s.permission, \
                       s.envelope, s.dek_generation, s.sealed_alias, s.created_at, \
                       s.updated_at, s.expires_at, s.first_access_at, s.last_access_at, \
                       s.revoked_at";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Share> {
    Ok(Share {
        id: row.get(0)?,
        object_id: row.get(1)?,
        org_id: row.get(2)?,
        owner_id: row.get(3)?,
        recipient_id: row.get(4)?,
        permission: row.get(5)?,
        envelope: row.get(6)?,
        dek_generation: row.get(7)?,
        sealed_alias: row.get(8)?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
        expires_at: row.get(11)?,
        first_access_at: row.get(12)?,
        last_access_at: row.get(13)?,
        revoked_at: row.get(14)?,
    })
}

fn with_name(row: &rusqlite::Row<'_>) -> rusqlite::Result<ShareWithName> {
    Ok(ShareWithName {
        share: from_row(row)?,
        name: row.get(15)?,
    })
}

/// Stores a new share; `Conflict` if the recipient already has an unrevoked one.
pub fn insert(conn: &Connection, kind: ObjectKind, share: &Share) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO shares (id, object_kind, object_id, org_id, owner_id, recipient_id,
                             permission, envelope, dek_generation, sealed_alias, created_at,
                             updated_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
        params![
            share.id,
            kind.as_str(),
            share.object_id,
            share.org_id,
            share.owner_id,
            share.recipient_id,
            share.permission,
            share.envelope,
            share.dek_generation,
            share.sealed_alias,
            share.created_at,
            share.expires_at,
        ],
    )
    .map_err(super::conflict_on_unique)?;
    Ok(())
}

/// The recipient's unrevoked share of an object, expired or not.
pub fn unrevoked_for(
    conn: &Connection,
    kind: ObjectKind,
    object_id: &str,
    recipient: UserId,
) -> Result<Option<Share>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {COLUMNS} FROM shares s
                 WHERE s.object_kind = ?1 AND s.object_id = ?2 AND s.recipient_id = ?3
                   AND s.revoked_at IS NULL"
            ),
            params![kind.as_str(), object_id, recipient],
            from_row,
        )
        .optional()?)
}

/// The active shares of one object, oldest first, with each recipient's name.
pub fn active_for_object(
    conn: &Connection,
    kind: ObjectKind,
    object_id: &str,
    now: &str,
) -> Result<Vec<ShareWithName>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, u.display_name FROM shares s JOIN users u ON u.id = s.recipient_id
         WHERE s.object_kind = ?1 AND s.object_id = ?2 AND s.revoked_at IS NULL
           AND (s.expires_at IS NULL OR s.expires_at > ?3)
         ORDER BY s.created_at, s.id"
    ))?;
    let rows = stmt.query_map(params![kind.as_str(), object_id, now], with_name)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The active shares of `kind` made to `recipient` in the organization, newest first,
/// with each owner's name.
pub fn active_for_recipient(
    conn: &Connection,
    kind: ObjectKind,
    org: OrgId,
    recipient: UserId,
    now: &str,
) -> Result<Vec<ShareWithName>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, u.display_name FROM shares s JOIN users u ON u.id = s.owner_id
         WHERE s.object_kind = ?1 AND s.org_id = ?2 AND s.recipient_id = ?3
           AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > ?4)
         ORDER BY s.updated_at DESC, s.id"
    ))?;
    let rows = stmt.query_map(params![kind.as_str(), org, recipient, now], with_name)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One active share made to `recipient` in the organization.
pub fn find_active_for_recipient(
    conn: &Connection,
    kind: ObjectKind,
    org: OrgId,
    recipient: UserId,
    id: ShareId,
    now: &str,
) -> Result<Option<Share>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {COLUMNS} FROM shares s
                 WHERE s.object_kind = ?1 AND s.org_id = ?2 AND s.recipient_id = ?3
                   AND s.id = ?4 AND s.revoked_at IS NULL
                   AND (s.expires_at IS NULL OR s.expires_at > ?5)"
            ),
            params![kind.as_str(), org, recipient, id, now],
            from_row,
        )
        .optional()?)
}

/// Ends a share (owner revocation, recipient removal, or replacing an expired one).
pub fn revoke(conn: &Connection, id: ShareId, now: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE shares SET revoked_at = ?2, updated_at = ?2
         WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )? == 1)
}

/// Records a successful read by the recipient.
pub fn record_access(conn: &Connection, id: ShareId, now: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE shares SET first_access_at = COALESCE(first_access_at, ?2), last_access_at = ?2
         WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}
