//! Users' X-Wing key pairs: the public key, and the private seed only as sealed.

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;
use super::StoreError;
use crate::ids::{OrgId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeys {
    pub user_id: UserId,
    pub public_key: Vec<u8>,
    pub fingerprint: String,
    pub sealed_seed: Vec<u8>,
    pub kek_salt: Vec<u8>,
    /// JSON of `crypto::Argon2Params`.
    pub kek_params: String,
    pub generation: i64,
    pub restored_seed: Option<Vec<u8>>,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "user_id, public_key, fingerprint, sealed_seed, kek_salt, kek_params, \
                       generation, restored_seed, created_at, updated_at";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserKeys> {
    Ok(UserKeys {
        user_id: row.get(0)?,
        public_key: row.get(1)?,
        fingerprint: row.get(2)?,
        sealed_seed: row.get(3)?,
        kek_salt: row.get(4)?,
        kek_params: row.get(5)?,
        generation: row.get(6)?,
        restored_seed: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

pub fn find(conn: &Connection, user: UserId) -> Result<Option<UserKeys>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM user_keys WHERE user_id = ?1"),
            [user],
            from_row,
        )
        .optional()?)
}

/// Stores a new key pair; `Conflict` if the user already has one.
pub fn insert(conn: &Connection, keys: &UserKeys) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO user_keys (user_id, public_key, fingerprint, sealed_seed, kek_salt,
                                kek_params, generation, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7)",
        params![
            keys.user_id,
            keys.public_key,
            keys.fingerprint,
            keys.sealed_seed,
            keys.kek_salt,
            keys.kek_params,
            keys.created_at,
        ],
    )
    .map_err(super::conflict_on_unique)?;
    Ok(())
}

/// Replaces the seal of the seed (a rekey), but only if nobody rekeyed since `generation`
/// was read; clears any restored seed. Returns whether it was replaced.
pub fn reseal(
    conn: &Connection,
    user: UserId,
    generation: i64,
    sealed_seed: &[u8],
    kek_salt: &[u8],
    kek_params: &str,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE user_keys SET sealed_seed = ?3, kek_salt = ?4, kek_params = ?5,
                              generation = generation + 1, restored_seed = NULL, updated_at = ?6
         WHERE user_id = ?1 AND generation = ?2",
        params![user, generation, sealed_seed, kek_salt, kek_params, now],
    )? == 1)
}

/// Keeps a seed handed back through recovery until a rekey opens it.
pub fn set_restored_seed(
    conn: &Connection,
    user: UserId,
    restored: &[u8],
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE user_keys SET restored_seed = ?2, generation = generation + 1, updated_at = ?3
         WHERE user_id = ?1",
        params![user, restored, now],
    )? == 1)
}

/// An active member of an organization as colleagues see them, with their public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colleague {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub role: String,
    pub public_key: Option<Vec<u8>>,
}

const COLLEAGUE_QUERY: &str = "SELECT u.id, u.email, u.display_name, u.avatar_url, m.role, \
                               k.public_key
     FROM memberships m
     JOIN users u ON u.id = m.user_id
     LEFT JOIN user_keys k ON k.user_id = u.id
     WHERE m.org_id = ?1 AND m.status = 'active' AND u.status = 'active'";

fn colleague_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Colleague> {
    Ok(Colleague {
        user_id: row.get(0)?,
        email: row.get(1)?,
        display_name: row.get(2)?,
        avatar_url: row.get(3)?,
        role: row.get(4)?,
        public_key: row.get(5)?,
    })
}

/// The active members of `org`, by name.
pub fn colleagues(conn: &Connection, org: OrgId) -> Result<Vec<Colleague>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{COLLEAGUE_QUERY} ORDER BY u.display_name COLLATE NOCASE, u.id"
    ))?;
    let rows = stmt.query_map([org], colleague_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One active member of `org`; `None` for anyone else.
pub fn colleague(
    conn: &Connection,
    org: OrgId,
    user: UserId,
) -> Result<Option<Colleague>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("{COLLEAGUE_QUERY} AND u.id = ?2"),
            params![org, user],
            colleague_from_row,
        )
        .optional()?)
}
