//! Users. Emails are unique case-insensitively through `email_key`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::CachedQuery as _;

use super::StoreError;
use crate::ids::{OrgId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub status: UserStatus,
    pub is_instance_admin: bool,
    pub avatar_url: Option<String>,
    pub default_org_id: Option<OrgId>,
    /// A JSON object the client keeps for the user (theme, language, ...).
    pub preferences: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }
}

/// What creating a user needs.
pub struct NewUser<'a> {
    pub id: UserId,
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub is_instance_admin: bool,
    pub default_org_id: Option<OrgId>,
    pub now: &'a str,
}

/// The lookup key for an email address.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

const COLUMNS: &str = "id, email, display_name, status, is_instance_admin, avatar_url, \
                       default_org_id, created_at, preferences";

fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        display_name: row.get(2)?,
        status: match row.get::<_, String>(3)?.as_str() {
            "active" => UserStatus::Active,
            _ => UserStatus::Disabled,
        },
        is_instance_admin: row.get(4)?,
        avatar_url: row.get(5)?,
        default_org_id: row.get(6)?,
        created_at: row.get(7)?,
        preferences: row.get(8)?,
    })
}

/// Inserts a user; `Err(StoreError::Conflict)` if the email is taken.
pub fn insert(conn: &Connection, user: &NewUser<'_>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO users (id, email, email_key, display_name, password_hash, status,
                            is_instance_admin, default_org_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, ?8, ?8)",
        params![
            user.id,
            user.email.trim(),
            email_key(user.email),
            user.display_name,
            user.password_hash,
            user.is_instance_admin,
            user.default_org_id,
            user.now,
        ],
    )
    .map_err(super::conflict_on_unique)?;
    Ok(())
}

pub fn find(conn: &Connection, id: UserId) -> Result<Option<User>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

/// The user with this email and their password hash (absent until a password is set).
pub fn find_with_password(
    conn: &Connection,
    email: &str,
) -> Result<Option<(User, Option<String>)>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS}, password_hash FROM users WHERE email_key = ?1"),
            [email_key(email)],
            |row| Ok((from_row(row)?, row.get(9)?)),
        )
        .optional()?)
}

/// Whether any user exists (start-up asks, to decide on a setup token): one index probe,
/// where `count(*)` read every user.
pub fn any(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn.query_row_cached("SELECT EXISTS (SELECT 1 FROM users)", [], |row| row.get(0))?)
}

/// What a profile update changes; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct ProfileChanges<'a> {
    pub display_name: Option<&'a str>,
    /// `Some(None)` clears the avatar.
    pub avatar_url: Option<Option<&'a str>>,
    pub preferences: Option<&'a str>,
    pub default_org_id: Option<OrgId>,
}

pub fn update_profile(
    conn: &Connection,
    id: UserId,
    changes: &ProfileChanges<'_>,
    now: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE users SET display_name = coalesce(?2, display_name),
                avatar_url = CASE WHEN ?3 THEN ?4 ELSE avatar_url END,
                preferences = coalesce(?5, preferences),
                default_org_id = coalesce(?6, default_org_id),
                updated_at = ?7
         WHERE id = ?1",
        params![
            id,
            changes.display_name,
            changes.avatar_url.is_some(),
            changes.avatar_url.flatten(),
            changes.preferences,
            changes.default_org_id,
            now,
        ],
    )?;
    Ok(())
}

/// Users who are active members of an organization where `caller` is an active member
/// (only `within`, when given), whose email or display name contains `query`
/// (case-insensitively), by display name.
pub fn search_colleagues(
    conn: &Connection,
    caller: UserId,
    within: Option<OrgId>,
    query: &str,
    limit: u32,
) -> Result<Vec<User>, StoreError> {
    let pattern = format!(
        "%{}%",
        query
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users
         WHERE status = 'active'
           AND id IN (SELECT theirs.user_id FROM memberships mine
                      JOIN memberships theirs ON theirs.org_id = mine.org_id
                      JOIN organizations o ON o.id = mine.org_id
                      WHERE mine.user_id = ?1 AND mine.status = 'active'
                        AND theirs.status = 'active' AND o.status = 'active'
                        AND (?4 IS NULL OR mine.org_id = ?4))
           AND (email_key LIKE ?2 ESCAPE '\\' OR lower(display_name) LIKE ?2 ESCAPE '\\')
         ORDER BY lower(display_name), id
         LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![caller, pattern, limit, within], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Makes `org` the user's default organization if they have none.
pub fn adopt_default_org(conn: &Connection, user: UserId, org: OrgId) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE users SET default_org_id = ?2 WHERE id = ?1 AND default_org_id IS NULL",
        params![user, org],
    )?;
    Ok(())
}

/// After the user left `left`: if it was their default organization, their oldest
/// remaining active membership becomes the default, or none.
pub fn repoint_default_org(conn: &Connection, user: UserId, left: OrgId) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE users SET default_org_id =
             (SELECT m.org_id FROM memberships m
              WHERE m.user_id = ?1 AND m.status = 'active' AND m.org_id <> ?2
              ORDER BY m.created_at, m.org_id LIMIT 1)
         WHERE id = ?1 AND default_org_id = ?2",
        params![user, left],
    )?;
    Ok(())
}

/// Where the user's account-level activity (sign-ins, failed sign-ins, refreshes,
/// sessions) is filed: their default organization while they are an active member of it;
/// otherwise none, which is the instance's own audit chain.
pub fn activity_org(conn: &Connection, user: UserId) -> Result<Option<OrgId>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT u.default_org_id FROM users u
             JOIN memberships m ON m.org_id = u.default_org_id AND m.user_id = u.id
             WHERE u.id = ?1 AND m.status = 'active'",
            [user],
            |row| row.get(0),
        )
        .optional()?)
}

/// Replaces the user's password hash (a PHC string). Returns whether the user exists.
pub fn set_password_hash(
    conn: &Connection,
    id: UserId,
    password_hash: &str,
    now: &str,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, password_hash, now],
    )?;
    Ok(changed == 1)
}

pub fn find_by_email(conn: &Connection, email: &str) -> Result<Option<User>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM users WHERE email_key = ?1"),
            [email_key(email)],
            from_row,
        )
        .optional()?)
}

/// The user's password hash, if they have set a password.
pub fn password_hash(conn: &Connection, id: UserId) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT password_hash FROM users WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .optional()?
        .flatten())
}
