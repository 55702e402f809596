//! API keys. Lookups for management take the organization and the owner; the lookup for
//! authentication takes the key's hash, the only form of the key that is stored.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::CachedQuery as _;

use super::StoreError;
use crate::ids::{ApiKeyId, OrgId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub name: String,
    pub key_prefix: String,
    pub scopes: Vec<String>,
    pub ip_allowlist: Vec<String>,
    pub max_uses: Option<i64>,
    pub use_count: i64,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub revoked_at: Option<String>,
    pub rotated_to: Option<ApiKeyId>,
}

const COLUMNS: &str = "id, org_id, user_id, name, key_prefix, scopes, ip_allowlist, max_uses, \
                       use_count, expires_at, last_used_at, last_used_ip, created_at, \
                       updated_at, revoked_at, rotated_to";

fn json_list(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<String>> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        org_id: row.get(1)?,
        user_id: row.get(2)?,
        name: row.get(3)?,
        key_prefix: row.get(4)?,
        scopes: json_list(row, 5)?,
        ip_allowlist: json_list(row, 6)?,
        max_uses: row.get(7)?,
        use_count: row.get(8)?,
        expires_at: row.get(9)?,
        last_used_at: row.get(10)?,
        last_used_ip: row.get(11)?,
        created_at: row.get(12)?,
        updated_at: row.get(13)?,
        revoked_at: row.get(14)?,
        rotated_to: row.get(15)?,
    })
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).expect("strings serialize")
}

pub fn insert(conn: &Connection, key: &ApiKey, key_hash: &[u8; 32]) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO api_keys (id, org_id, user_id, name, key_prefix, key_hash, scopes,
                               ip_allowlist, max_uses, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
        params![
            key.id,
            key.org_id,
            key.user_id,
            key.name,
            key.key_prefix,
            key_hash.as_slice(),
            to_json(&key.scopes),
            to_json(&key.ip_allowlist),
            key.max_uses,
            key.expires_at,
            key.created_at,
        ],
    )?;
    Ok(())
}

/// The key with this hash, in whatever state; authentication judges the state.
pub fn find_by_hash(conn: &Connection, key_hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = ?1"),
            [key_hash.as_slice()],
            from_row,
        )
        .optional()?)
}

pub fn find_for_owner(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    id: ApiKeyId,
) -> Result<Option<ApiKey>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {COLUMNS} FROM api_keys WHERE org_id = ?1 AND user_id = ?2 AND id = ?3"
            ),
            params![org, user, id],
            from_row,
        )
        .optional()?)
}

/// A key of any member of `org`, in whatever state.
pub fn find_for_org(
    conn: &Connection,
    org: OrgId,
    id: ApiKeyId,
) -> Result<Option<ApiKey>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE org_id = ?1 AND id = ?2"),
            params![org, id],
            from_row,
        )
        .optional()?)
}

/// Revokes every key `user` holds in `org` that is not revoked yet, and returns them as
/// they were before.
pub fn revoke_all_for_member(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    now: &str,
) -> Result<Vec<ApiKey>, StoreError> {
    let keys = list_for_owner(conn, org, user)?;
    conn.execute(
        "UPDATE api_keys SET revoked_at = ?3, updated_at = ?3
         WHERE org_id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        params![org, user, now],
    )?;
    Ok(keys)
}

/// The owner's keys in the organization that are not revoked, newest first.
pub fn list_for_owner(
    conn: &Connection,
    org: OrgId,
    user: UserId,
) -> Result<Vec<ApiKey>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys
         WHERE org_id = ?1 AND user_id = ?2 AND revoked_at IS NULL
         ORDER BY created_at DESC, id DESC"
    ))?;
    let rows = stmt.query_map(params![org, user], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces the mutable settings of a key.
pub fn update(conn: &Connection, key: &ApiKey) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE api_keys SET name = ?2, scopes = ?3, ip_allowlist = ?4, max_uses = ?5,
                expires_at = ?6, updated_at = ?7
         WHERE id = ?1",
        params![
            key.id,
            key.name,
            to_json(&key.scopes),
            to_json(&key.ip_allowlist),
            key.max_uses,
            key.expires_at,
            key.updated_at,
        ],
    )?;
    Ok(())
}

/// Whether the key may still act at `now` (RFC 3339, the stored format): not revoked, not
/// expired, and its owner's account active. For responses that outlive the check made
/// when they began (the message stream).
pub fn usable(conn: &Connection, id: ApiKeyId, now: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT 1 FROM api_keys k JOIN users u ON u.id = k.user_id
             WHERE k.id = ?1 AND k.revoked_at IS NULL
               AND (k.expires_at IS NULL OR k.expires_at > ?2) AND u.status = 'active'",
            params![id, now],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn revoke(conn: &Connection, id: ApiKeyId, now: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE api_keys SET revoked_at = ?2, updated_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )? == 1)
}

/// Marks `old` as replaced by `new`, valid until `until` at the latest.
pub fn mark_rotated(
    conn: &Connection,
    old: ApiKeyId,
    new: ApiKeyId,
    until: &str,
    now: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE api_keys SET rotated_to = ?2,
                expires_at = CASE WHEN expires_at IS NULL OR expires_at > ?3 THEN ?3 ELSE expires_at END,
                updated_at = ?4
         WHERE id = ?1",
        params![old, new, until, now],
    )?;
    Ok(())
}

/// Counts one use of a key with a use limit. False once the limit is reached; exact under
/// concurrency because SQLite serializes the writes.
pub fn take_use(conn: &Connection, id: ApiKeyId) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE api_keys SET use_count = use_count + 1
         WHERE id = ?1 AND revoked_at IS NULL AND max_uses IS NOT NULL AND use_count < max_uses",
        [id],
    )? == 1)
}

/// Records when and from where keys were last used; called in batches.
pub fn record_last_use(
    conn: &Connection,
    id: ApiKeyId,
    at: &str,
    ip: Option<&str>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE api_keys SET last_used_at = ?2, last_used_ip = ?3
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
        params![id, at, ip],
    )?;
    Ok(())
}
