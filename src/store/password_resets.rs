//! Password-reset tokens: single-use, expiring, stored only as the SHA-256 of the token
//! (`auth::opaque`), so the database never holds a usable link.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::CachedQuery as _;

use super::StoreError;
use crate::ids::UserId;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Replace a forgotten password (forgot-password, or a link an admin issued).
    Reset,
    /// Choose the first password of an account created without one.
    Set,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Reset => "reset",
            Purpose::Set => "set",
        }
    }
}

/// A token that may be redeemed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redeemable {
    pub user_id: UserId,
    pub purpose: Purpose,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Redeemable> {
    Ok(Redeemable {
        user_id: row.get(0)?,
        purpose: match row.get::<_, String>(1)?.as_str() {
            "set" => Purpose::Set,
            _ => Purpose::Reset,
        },
    })
}

/// Stores a new token for `user`, and drops the user's tokens that can no longer be
/// redeemed (used or expired) so the table does not grow with every request.
pub fn insert(
    conn: &Connection,
    token_hash: &[u8; 32],
    user: UserId,
    purpose: Purpose,
    now: &str,
    expires_at: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM password_reset_tokens
         WHERE user_id = ?1 AND (used_at IS NOT NULL OR expires_at <= ?2)",
        params![user, now],
    )?;
    conn.execute(
        "INSERT INTO password_reset_tokens (token_hash, user_id, purpose, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![&token_hash[..], user, purpose.as_str(), now, expires_at],
    )?;
    Ok(())
}

/// The token, if it is unused, unexpired and its user is active; does not consume it.
pub fn find_valid(
    conn: &Connection,
    token_hash: &[u8; 32],
    now: &str,
) -> Result<Option<Redeemable>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT t.user_id, t.purpose FROM password_reset_tokens t
             JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ?1 AND t.used_at IS NULL AND t.expires_at > ?2
               AND u.status = 'active'",
            params![&token_hash[..], now],
            from_row,
        )
        .optional()?)
}

/// Consumes the token if it is still valid (see [`find_valid`]), in one statement, so two
/// concurrent redemptions cannot both succeed.
pub fn take_valid(
    conn: &Connection,
    token_hash: &[u8; 32],
    now: &str,
) -> Result<Option<Redeemable>, StoreError> {
    Ok(conn
        .query_row_cached(
            "UPDATE password_reset_tokens SET used_at = ?2
             WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
               AND user_id IN (SELECT id FROM users WHERE status = 'active')
             RETURNING user_id, purpose",
            params![&token_hash[..], now],
            from_row,
        )
        .optional()?)
}

/// Marks every unused token of `user` as used: once the password has changed, older
/// links must not change it again. Returns how many were still outstanding.
pub fn invalidate_for_user(
    conn: &Connection,
    user: UserId,
    now: &str,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE password_reset_tokens SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL",
        params![user, now],
    )?)
}
