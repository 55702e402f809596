//! Sessions (refresh-token families) and their refresh tokens. Every query takes the
//! owning user or a token hash; there is no unscoped lookup by session id.

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;

use super::StoreError;
use crate::ids::{SessionId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: String,
    pub last_seen_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A presented refresh token and the state of its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenState {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub expires_at: String,
    pub used: bool,
    pub session_revoked: bool,
}

pub struct NewSession<'a> {
    pub id: SessionId,
    pub user_id: UserId,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub now: &'a str,
}

pub fn insert(conn: &Connection, session: &NewSession<'_>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sessions (id, user_id, created_at, last_seen_at, ip, user_agent)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
        params![
            session.id,
            session.user_id,
            session.now,
            session.ip,
            session.user_agent
        ],
    )?;
    Ok(())
}

pub fn insert_refresh_token(
    conn: &Connection,
    hash: &[u8; 32],
    session: SessionId,
    now: &str,
    expires_at: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![&hash[..], session, now, expires_at],
    )?;
    Ok(())
}

pub fn find_refresh_token(
    conn: &Connection,
    hash: &[u8; 32],
) -> Result<Option<RefreshTokenState>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT s.id, s.user_id, t.expires_at, t.used_at IS NOT NULL, s.revoked_at IS NOT NULL
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
             WHERE t.token_hash = ?1",
            [&hash[..]],
            |row| {
                Ok(RefreshTokenState {
                    session_id: row.get(0)?,
                    user_id: row.get(1)?,
                    expires_at: row.get(2)?,
                    used: row.get(3)?,
                    session_revoked: row.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Marks a refresh token used. False if it was already used: under concurrency exactly
/// one exchange of a token wins, and the loser is treated as a replay.
pub fn mark_refresh_token_used(
    conn: &Connection,
    hash: &[u8; 32],
    now: &str,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL",
        params![&hash[..], now],
    )?;
    Ok(changed == 1)
}

pub fn touch(
    conn: &Connection,
    session: SessionId,
    now: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE sessions SET last_seen_at = ?2, ip = coalesce(?3, ip), user_agent = coalesce(?4, user_agent)
         WHERE id = ?1",
        params![session, now, ip, user_agent],
    )?;
    Ok(())
}

/// Revokes `user`'s session `session`. False if no such active session of theirs exists.
pub fn revoke_for_user(
    conn: &Connection,
    user: UserId,
    session: SessionId,
    reason: &str,
    now: &str,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE sessions SET revoked_at = ?3, revoked_reason = ?4
         WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        params![session, user, now, reason],
    )?;
    Ok(changed == 1)
}

/// Revokes every active session of `user` except `keep` (the caller's own, when a user
/// changes their password while signed in). Returns the revoked sessions' ids.
pub fn revoke_all_for_user(
    conn: &Connection,
    user: UserId,
    keep: Option<SessionId>,
    reason: &str,
    now: &str,
) -> Result<Vec<SessionId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE sessions SET revoked_at = ?3, revoked_reason = ?4
         WHERE user_id = ?1 AND revoked_at IS NULL AND id IS NOT ?2
         RETURNING id",
    )?;
    let ids = stmt.query_map(params![user, keep, now, reason], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// `user`'s sessions that are not revoked, most recently used first.
pub fn list_active_for_user(conn: &Connection, user: UserId) -> Result<Vec<Session>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, created_at, last_seen_at, ip, user_agent FROM sessions
         WHERE user_id = ?1 AND revoked_at IS NULL
         ORDER BY last_seen_at DESC, id DESC",
    )?;
    let rows = stmt.query_map([user], |row| {
        Ok(Session {
            id: row.get(0)?,
            user_id: row.get(1)?,
            created_at: row.get(2)?,
            last_seen_at: row.get(3)?,
            ip: row.get(4)?,
            user_agent: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether an access token for (`user`, `session`) may still act: the session is not
/// revoked and the user is active. Returns the user's instance-admin flag when so.
pub fn active_principal(
    conn: &Connection,
    user: UserId,
    session: SessionId,
) -> Result<Option<bool>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT u.is_instance_admin FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND u.status = 'active'",
            params![session, user],
            |row| row.get(0),
        )
        .optional()?)
}
