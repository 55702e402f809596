//! Custom roles of one organization. Every query takes the organization: a role id from
//! another organization finds nothing.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::CachedQuery as _;

use super::StoreError;
use crate::ids::{OrgId, RoleId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: RoleId,
    pub org_id: OrgId,
    pub name: String,
    pub description: String,
    /// Permission keys, as stored.
    pub permissions: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "id, org_id, name, description, permissions, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Role> {
    let permissions: String = row.get(4)?;
    Ok(Role {
        id: row.get(0)?,
        org_id: row.get(1)?,
        name: row.get(2)?,
        description: row.get(3)?,
        permissions: serde_json::from_str(&permissions).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Inserts a role; `Err(StoreError::Conflict)` if the organization has one of that name.
pub fn insert(conn: &Connection, role: &Role) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO roles (id, org_id, name, name_key, description, permissions, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            role.id,
            role.org_id,
            role.name,
            name_key(&role.name),
            role.description,
            serde_json::to_string(&role.permissions).expect("strings serialize"),
            role.created_at,
        ],
    )
    .map_err(super::conflict_on_unique)?;
    Ok(())
}

pub fn find_for_org(conn: &Connection, org: OrgId, id: RoleId) -> Result<Option<Role>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM roles WHERE org_id = ?1 AND id = ?2"),
            params![org, id],
            from_row,
        )
        .optional()?)
}

pub fn list_for_org(conn: &Connection, org: OrgId) -> Result<Vec<Role>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM roles WHERE org_id = ?1 ORDER BY name_key, id"
    ))?;
    let rows = stmt.query_map([org], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces name, description and permissions; `Err(StoreError::Conflict)` on a name clash.
pub fn update(conn: &Connection, role: &Role) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE roles SET name = ?3, name_key = ?4, description = ?5, permissions = ?6, updated_at = ?7
         WHERE org_id = ?1 AND id = ?2",
        params![
            role.org_id,
            role.id,
            role.name,
            name_key(&role.name),
            role.description,
            serde_json::to_string(&role.permissions).expect("strings serialize"),
            role.updated_at,
        ],
    )
    .map_err(super::conflict_on_unique)?;
    Ok(())
}

pub fn delete_for_org(conn: &Connection, org: OrgId, id: RoleId) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM roles WHERE org_id = ?1 AND id = ?2",
        params![org, id],
    )? == 1)
}
