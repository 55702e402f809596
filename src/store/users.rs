//! Users. Emails are unique case-insensitively through `email_key`.

use rusqlite::{Connection, OptionalExtension, Row, params};

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

const COLUMNS: &str =
    "id, email, display_name, status, is_instance_admin, avatar_url, default_org_id, created_at";

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
        .query_row(
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
        .query_row(
            &format!("SELECT {COLUMNS}, password_hash FROM users WHERE email_key = ?1"),
            [email_key(email)],
            |row| Ok((from_row(row)?, row.get(8)?)),
        )
        .optional()?)
}

pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))?)
}
