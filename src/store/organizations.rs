//! Organizations (tenants) and their memberships.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::CachedQuery as _;

use super::StoreError;
use crate::ids::{OrgId, UserId};

/// An organization's own record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub slug: String,
    /// `active` or `suspended`.
    pub status: String,
    /// While suspended: who suspended it, `owner` or `instance_admin`.
    pub suspended_by: Option<String>,
    /// A JSON object of settings and branding.
    pub settings: String,
    pub created_at: String,
    pub updated_at: String,
}

/// An organization as one of its members sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub org_id: OrgId,
    pub org_name: String,
    pub org_status: String,
    pub role: String,
    pub status: String,
}

/// A member of an organization with the user's public profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub role: String,
    /// The membership's status: `active` or `disabled`.
    pub status: String,
    pub joined_at: String,
}

/// A membership as the access check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAccess {
    pub role: String,
    pub membership_status: String,
    pub org_status: String,
}

const ORG_COLUMNS: &str = "id, name, slug, status, settings, created_at, updated_at, suspended_by";

fn org_from_row(row: &Row<'_>) -> rusqlite::Result<Organization> {
    Ok(Organization {
        id: row.get(0)?,
        name: row.get(1)?,
        slug: row.get(2)?,
        status: row.get(3)?,
        settings: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        suspended_by: row.get(7)?,
    })
}

/// Inserts an organization; `Err(StoreError::Conflict)` if the slug is taken.
pub fn insert(
    conn: &Connection,
    id: OrgId,
    name: &str,
    slug: &str,
    now: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO organizations (id, name, slug, status, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'active', ?4, ?4)",
        params![id, name, slug, now],
    )
    .map_err(super::conflict_on_unique)?;
    Ok(())
}

pub fn slug_taken(conn: &Connection, slug: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT 1 FROM organizations WHERE slug = ?1",
            [slug],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn find(conn: &Connection, id: OrgId) -> Result<Option<Organization>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?1"),
            [id],
            org_from_row,
        )
        .optional()?)
}

/// The organization with this slug (identity providers name the one new accounts join).
pub fn find_by_slug(conn: &Connection, slug: &str) -> Result<Option<Organization>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {ORG_COLUMNS} FROM organizations WHERE slug = ?1"),
            [slug],
            org_from_row,
        )
        .optional()?)
}

/// Every organization of the instance, oldest first (instance admins only).
pub fn list_all(conn: &Connection) -> Result<Vec<(Organization, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ORG_COLUMNS},
                (SELECT count(*) FROM memberships m WHERE m.org_id = o.id AND m.status = 'active')
         FROM organizations o ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([], |row| Ok((org_from_row(row)?, row.get(8)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What a PATCH of an organization changes; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct OrgChanges<'a> {
    pub name: Option<&'a str>,
    pub slug: Option<&'a str>,
    pub settings: Option<&'a str>,
}

pub fn update(
    conn: &Connection,
    id: OrgId,
    changes: &OrgChanges<'_>,
    now: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE organizations SET name = coalesce(?2, name), slug = coalesce(?3, slug),
                settings = coalesce(?4, settings), updated_at = ?5
         WHERE id = ?1",
        params![id, changes.name, changes.slug, changes.settings, now],
    )
    .map_err(super::conflict_on_unique)?;
    Ok(())
}

/// Suspends the organization, recording who did (`owner` or `instance_admin`), or with
/// `None` makes it active again; false if it already had that status (then nothing
/// changes, so a second suspension does not change who made the first).
pub fn set_suspended_by(
    conn: &Connection,
    id: OrgId,
    suspended_by: Option<&str>,
    now: &str,
) -> Result<bool, StoreError> {
    let status = if suspended_by.is_some() {
        "suspended"
    } else {
        "active"
    };
    Ok(conn.execute(
        "UPDATE organizations SET status = ?2, suspended_by = ?3, updated_at = ?4
         WHERE id = ?1 AND status <> ?2",
        params![id, status, suspended_by, now],
    )? == 1)
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

/// `user`'s membership of `org` with the organization's status, whatever either status is.
pub fn member_access(
    conn: &Connection,
    org: OrgId,
    user: UserId,
) -> Result<Option<MemberAccess>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT m.role, m.status, o.status
             FROM memberships m JOIN organizations o ON o.id = m.org_id
             WHERE m.org_id = ?1 AND m.user_id = ?2",
            params![org, user],
            |row| {
                Ok(MemberAccess {
                    role: row.get(0)?,
                    membership_status: row.get(1)?,
                    org_status: row.get(2)?,
                })
            },
        )
        .optional()?)
}

/// The organizations `user` belongs to, oldest membership first.
pub fn memberships_of(conn: &Connection, user: UserId) -> Result<Vec<Membership>, StoreError> {
    let mut stmt = conn.prepare_cached(
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

const MEMBER_COLUMNS: &str =
    "u.id, u.email, u.display_name, u.avatar_url, m.role, m.status, m.created_at";

fn member_from_row(row: &Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        user_id: row.get(0)?,
        email: row.get(1)?,
        display_name: row.get(2)?,
        avatar_url: row.get(3)?,
        role: row.get(4)?,
        status: row.get(5)?,
        joined_at: row.get(6)?,
    })
}

/// The members of `org`, in the order they joined.
pub fn members(conn: &Connection, org: OrgId) -> Result<Vec<Member>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MEMBER_COLUMNS} FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = ?1 ORDER BY m.created_at, u.id"
    ))?;
    let rows = stmt.query_map([org], member_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn find_member(
    conn: &Connection,
    org: OrgId,
    user: UserId,
) -> Result<Option<Member>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {MEMBER_COLUMNS} FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.org_id = ?1 AND m.user_id = ?2"
            ),
            params![org, user],
            member_from_row,
        )
        .optional()?)
}

pub fn set_member(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    role: &str,
    status: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE memberships SET role = ?3, status = ?4 WHERE org_id = ?1 AND user_id = ?2",
        params![org, user, role, status],
    )?;
    Ok(())
}

pub fn remove_member(conn: &Connection, org: OrgId, user: UserId) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM memberships WHERE org_id = ?1 AND user_id = ?2",
        params![org, user],
    )? == 1)
}

/// Active members of `org` holding the owner role.
pub fn count_active_owners(conn: &Connection, org: OrgId) -> Result<i64, StoreError> {
    Ok(conn.query_row_cached(
        "SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = ?1 AND m.role = 'owner' AND m.status = 'active' AND u.status = 'active'",
        [org],
        |row| row.get(0),
    )?)
}

/// Members of `org` holding the custom role `role`.
pub fn count_with_role(conn: &Connection, org: OrgId, role: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row_cached(
        "SELECT count(*) FROM memberships WHERE org_id = ?1 AND role = ?2",
        params![org, role],
        |row| row.get(0),
    )?)
}

/// The active members (with active accounts) of `org` whose role is `owner` or `admin`:
/// who is told about problems with the organization's integrations.
pub fn admin_ids(conn: &Connection, org: OrgId) -> Result<Vec<UserId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.user_id FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = ?1 AND m.status = 'active' AND u.status = 'active'
           AND m.role IN ('owner', 'admin')
         ORDER BY m.user_id",
    )?;
    let rows = stmt.query_map([org], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
