//! Invitations into an organization: single-use tokens, stored hashed, bound to an email
//! address and a role.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::CachedQuery as _;

use super::StoreError;
use super::users::email_key;
use crate::ids::{InviteId, OrgId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: InviteId,
    pub org_id: OrgId,
    pub email: String,
    pub role: String,
    pub invited_by: Option<UserId>,
    pub created_at: String,
    pub expires_at: String,
    pub accepted_at: Option<String>,
    pub revoked_at: Option<String>,
}

const COLUMNS: &str =
    "id, org_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Invite> {
    Ok(Invite {
        id: row.get(0)?,
        org_id: row.get(1)?,
        email: row.get(2)?,
        role: row.get(3)?,
        invited_by: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
        accepted_at: row.get(7)?,
        revoked_at: row.get(8)?,
    })
}

pub fn insert(conn: &Connection, invite: &Invite, token_hash: &[u8; 32]) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO invites (id, org_id, email, email_key, role, token_hash, invited_by,
                              created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            invite.id,
            invite.org_id,
            invite.email,
            email_key(&invite.email),
            invite.role,
            token_hash.as_slice(),
            invite.invited_by,
            invite.created_at,
            invite.expires_at,
        ],
    )?;
    Ok(())
}

/// The invite whose token hashes to `token_hash`, in whatever state it is.
pub fn find_by_token(
    conn: &Connection,
    token_hash: &[u8; 32],
) -> Result<Option<Invite>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM invites WHERE token_hash = ?1"),
            [token_hash.as_slice()],
            from_row,
        )
        .optional()?)
}

/// Marks an open invite accepted by `user`. False if it was accepted or revoked meanwhile.
pub fn mark_accepted(
    conn: &Connection,
    id: InviteId,
    user: UserId,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE invites SET accepted_at = ?2, accepted_user_id = ?3
         WHERE id = ?1 AND accepted_at IS NULL AND revoked_at IS NULL",
        params![id, now, user],
    )? == 1)
}

/// The invites of `org` that are neither accepted nor revoked, newest first.
pub fn list_open_for_org(
    conn: &Connection,
    org: OrgId,
    now: &str,
) -> Result<Vec<Invite>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM invites
         WHERE org_id = ?1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?2
         ORDER BY created_at DESC, id DESC"
    ))?;
    let rows = stmt.query_map(params![org, now], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes an open invite of `org`. False if there is none with that id.
pub fn revoke_for_org(
    conn: &Connection,
    org: OrgId,
    id: InviteId,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE invites SET revoked_at = ?3
         WHERE org_id = ?1 AND id = ?2 AND accepted_at IS NULL AND revoked_at IS NULL",
        params![org, id, now],
    )? == 1)
}
