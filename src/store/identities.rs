//! Links between local users and accounts at identity providers (`user_identities`).
//! A link is found by its provider and subject; an unlinked one stays as a tombstone.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::CachedQuery as _;
use super::StoreError;
use crate::ids::{IdentityId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: IdentityId,
    pub user_id: UserId,
    pub provider: String,
    pub subject: String,
    pub email: String,
    pub created_at: String,
    pub last_login_at: Option<String>,
    /// Set once the user (or an admin) removed the link.
    pub unlinked_at: Option<String>,
}

const COLUMNS: &str =
    "id, user_id, provider, subject, email, created_at, last_login_at, unlinked_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Identity> {
    Ok(Identity {
        id: row.get(0)?,
        user_id: row.get(1)?,
        provider: row.get(2)?,
        subject: row.get(3)?,
        email: row.get(4)?,
        created_at: row.get(5)?,
        last_login_at: row.get(6)?,
        unlinked_at: row.get(7)?,
    })
}

/// The link of `subject` at `provider`, live or a tombstone.
pub fn find_by_subject(
    conn: &Connection,
    provider: &str,
    subject: &str,
) -> Result<Option<Identity>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM user_identities WHERE provider = ?1 AND subject = ?2"),
            params![provider, subject],
            from_row,
        )
        .optional()?)
}

/// Links `subject` at `provider` to `user`: a new row, or a tombstone of the same
/// subject brought back (for this user, whoever it belonged to before). `None` when the
/// subject is already linked, to this user or another.
pub fn link(
    conn: &Connection,
    id: IdentityId,
    user: UserId,
    provider: &str,
    subject: &str,
    email: &str,
    now: &str,
) -> Result<Option<IdentityId>, StoreError> {
    Ok(conn
        .query_row(
        "INSERT INTO user_identities (id, user_id, provider, subject, email, created_at, last_login_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (provider, subject) DO UPDATE
            SET user_id = excluded.user_id, email = excluded.email,
                created_at = excluded.created_at, last_login_at = excluded.last_login_at,
                unlinked_at = NULL
            WHERE user_identities.unlinked_at IS NOT NULL
         RETURNING id",
        params![id, user, provider, subject, email, now],
        |row| row.get(0),
    )
    .optional()?)
}

/// Records a sign-in through a live link.
pub fn touch(conn: &Connection, id: IdentityId, email: &str, now: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE user_identities SET last_login_at = ?2, email = ?3 WHERE id = ?1",
        params![id, now, email],
    )?;
    Ok(())
}

/// The user's live links, oldest first.
pub fn list_for_user(conn: &Connection, user: UserId) -> Result<Vec<Identity>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM user_identities
         WHERE user_id = ?1 AND unlinked_at IS NULL ORDER BY created_at, id"
    ))?;
    let rows = statement.query_map([user], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes the user's live link `id` (keeping its tombstone); the link, if there was one.
pub fn unlink(
    conn: &Connection,
    user: UserId,
    id: IdentityId,
    now: &str,
) -> Result<Option<Identity>, StoreError> {
    Ok(conn
        .query_row(
            &format!(
                "UPDATE user_identities SET unlinked_at = ?3
                 WHERE id = ?1 AND user_id = ?2 AND unlinked_at IS NULL
                 RETURNING {COLUMNS}"
            ),
            params![id, user, now],
            from_row,
        )
        .optional()?)
}
