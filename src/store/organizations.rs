//! Organizations (tenants) and their memberships.

use rusqlite::{Connection, params};

use super::StoreError;
use crate::ids::{OrgId, UserId};

/// An organization as one of its members sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub org_id: OrgId,
    pub org_name: String,
    pub org_status: String,
    pub role: String,
    pub status: String,
}

pub fn insert(conn: &Connection, id: OrgId, name: &str, now: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO organizations (id, name, status, created_at, updated_at)
         VALUES (?1, ?2, 'active', ?3, ?3)",
        params![id, name, now],
    )?;
    Ok(())
}

pub fn add_member(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    role: &str,
    now: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO memberships (org_id, user_id, role, status, created_at)
         VALUES (?1, ?2, ?3, 'active', ?4)",
        params![org, user, role, now],
    )
    .map_err(super::conflict_on_unique)?;
    Ok(())
}

/// The organizations `user` belongs to, oldest membership first.
pub fn memberships_of(conn: &Connection, user: UserId) -> Result<Vec<Membership>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT o.id, o.name, o.status, m.role, m.status
         FROM memberships m JOIN organizations o ON o.id = m.org_id
         WHERE m.user_id = ?1
         ORDER BY m.created_at, o.id",
    )?;
    let rows = stmt.query_map([user], |row| {
        Ok(Membership {
            org_id: row.get(0)?,
            org_name: row.get(1)?,
            org_status: row.get(2)?,
            role: row.get(3)?,
            status: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
