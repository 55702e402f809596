//! Teams and departments: named groups of an organization's members. Both kinds share one
//! table and these queries; every query takes the organization and the kind.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::CachedQuery as _;

use super::StoreError;
use crate::ids::{GroupId, OrgId, UserId};

/// Which kind of group: the two differ only in name and route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Team,
    Department,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Team => "team",
            GroupKind::Department => "department",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub org_id: OrgId,
    pub name: String,
    pub description: String,
    pub member_ids: Vec<UserId>,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "id, org_id, name, description, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        id: row.get(0)?,
        org_id: row.get(1)?,
        name: row.get(2)?,
        description: row.get(3)?,
        member_ids: Vec::new(),
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Inserts a group and its members; `Err(StoreError::Conflict)` on a name clash.
pub fn insert(conn: &Connection, kind: GroupKind, group: &Group) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO member_groups (id, org_id, kind, name, name_key, description, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            group.id,
            group.org_id,
            kind.as_str(),
            group.name,
            name_key(&group.name),
            group.description,
            group.created_at,
        ],
    )
    .map_err(super::conflict_on_unique)?;
    replace_members(conn, group, &group.created_at)
}

/// Replaces name, description and members; `Err(StoreError::Conflict)` on a name clash.
pub fn update(conn: &Connection, group: &Group) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE member_groups SET name = ?3, name_key = ?4, description = ?5, updated_at = ?6
         WHERE org_id = ?1 AND id = ?2",
        params![
            group.org_id,
            group.id,
            group.name,
            name_key(&group.name),
            group.description,
            group.updated_at,
        ],
    )
    .map_err(super::conflict_on_unique)?;
    replace_members(conn, group, &group.updated_at)
}

fn replace_members(conn: &Connection, group: &Group, now: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM member_group_members WHERE group_id = ?1 AND user_id NOT IN (SELECT value FROM json_each(?2))",
        params![group.id, serde_json::to_string(&group.member_ids).expect("ids serialize")],
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO member_group_members (group_id, org_id, user_id, added_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for user in &group.member_ids {
        insert.execute(params![group.id, group.org_id, user, now])?;
    }
    Ok(())
}

fn load_members(conn: &Connection, group: &mut Group) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM member_group_members WHERE group_id = ?1 ORDER BY added_at, user_id",
    )?;
    group.member_ids = stmt
        .query_map([group.id], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(())
}

pub fn find_for_org(
    conn: &Connection,
    org: OrgId,
    kind: GroupKind,
    id: GroupId,
) -> Result<Option<Group>, StoreError> {
    let group = conn
        .query_row_cached(
            &format!(
                "SELECT {COLUMNS} FROM member_groups WHERE org_id = ?1 AND kind = ?2 AND id = ?3"
            ),
            params![org, kind.as_str(), id],
            from_row,
        )
        .optional()?;
    let Some(mut group) = group else {
        return Ok(None);
    };
    load_members(conn, &mut group)?;
    Ok(Some(group))
}

pub fn list_for_org(
    conn: &Connection,
    org: OrgId,
    kind: GroupKind,
) -> Result<Vec<Group>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM member_groups WHERE org_id = ?1 AND kind = ?2 ORDER BY name_key, id"
    ))?;
    let mut groups: Vec<Group> = stmt
        .query_map(params![org, kind.as_str()], from_row)?
        .collect::<Result<_, _>>()?;
    for group in &mut groups {
        load_members(conn, group)?;
    }
    Ok(groups)
}

pub fn delete_for_org(
    conn: &Connection,
    org: OrgId,
    kind: GroupKind,
    id: GroupId,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM member_groups WHERE org_id = ?1 AND kind = ?2 AND id = ?3",
        params![org, kind.as_str(), id],
    )? == 1)
}
