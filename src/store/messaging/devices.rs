//! Devices: public key bundles of one user in one organization, and their one-time
//! pre-keys (each handed out once; a claimed key keeps its row, without its public key,
//! so its id is never accepted again for that device).

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::ids::{DeviceId, OrgId, UserId};
use crate::store::CachedQuery as _;
use crate::store::StoreError;

/// A registered device. Key material is base64 text, stored as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: DeviceId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub name: String,
    pub identity_key_alg: String,
    pub identity_key: String,
    pub signed_prekey_id: i64,
    pub signed_prekey_alg: String,
    pub signed_prekey: String,
    pub signed_prekey_signature: String,
    pub created_at: String,
    pub last_seen_at: Option<String>,
}

/// One one-time pre-key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKey {
    pub key_id: i64,
    pub alg: String,
    pub public_key: String,
}

const COLUMNS: &str = "id, org_id, user_id, name, identity_key_alg, identity_key, \
     signed_prekey_id, signed_prekey_alg, signed_prekey, signed_prekey_signature, created_at, \
     last_seen_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: row.get(0)?,
        org_id: row.get(1)?,
        user_id: row.get(2)?,
        name: row.get(3)?,
        identity_key_alg: row.get(4)?,
        identity_key: row.get(5)?,
        signed_prekey_id: row.get(6)?,
        signed_prekey_alg: row.get(7)?,
        signed_prekey: row.get(8)?,
        signed_prekey_signature: row.get(9)?,
        created_at: row.get(10)?,
        last_seen_at: row.get(11)?,
    })
}

pub fn insert(conn: &Connection, d: &Device) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO devices (id, org_id, user_id, name, identity_key_alg, identity_key,
             signed_prekey_id, signed_prekey_alg, signed_prekey, signed_prekey_signature,
             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        d.id,
        d.org_id,
        d.user_id,
        d.name,
        d.identity_key_alg,
        d.identity_key,
        d.signed_prekey_id,
        d.signed_prekey_alg,
        d.signed_prekey,
        d.signed_prekey_signature,
        d.created_at,
    ])?;
    Ok(())
}

pub fn insert_prekeys(
    conn: &Connection,
    device: DeviceId,
    keys: &[PreKey],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO device_prekeys (device_id, key_id, alg, public_key) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for k in keys {
        stmt.execute(params![device, k.key_id, k.alg, k.public_key])?;
    }
    Ok(())
}

/// The user's devices in `org`, oldest first.
pub fn list_for_user(
    conn: &Connection,
    org: OrgId,
    user: UserId,
) -> Result<Vec<Device>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM devices WHERE org_id = ?1 AND user_id = ?2 ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![org, user], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many devices the user has in `org`.
pub fn count_for_user(conn: &Connection, org: OrgId, user: UserId) -> Result<i64, StoreError> {
    Ok(conn.query_row_cached(
        "SELECT COUNT(*) FROM devices WHERE org_id = ?1 AND user_id = ?2",
        params![org, user],
        |row| row.get(0),
    )?)
}

/// The user's device `id` in `org`, if it exists (the `X-Device-Id` check).
pub fn find_for_user(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    id: DeviceId,
) -> Result<Option<Device>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {COLUMNS} FROM devices WHERE org_id = ?1 AND user_id = ?2 AND id = ?3"
            ),
            params![org, user, id],
            from_row,
        )
        .optional()?)
}

/// Whether device `id` of `user` in `org` exists (the stream's check on every read).
pub fn exists(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    id: DeviceId,
) -> Result<bool, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT 1 FROM devices WHERE org_id = ?1 AND user_id = ?2 AND id = ?3",
            params![org, user, id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Deletes the device; its pre-keys, envelopes and pending events go with it (cascade).
pub fn delete(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    id: DeviceId,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM devices WHERE org_id = ?1 AND user_id = ?2 AND id = ?3")?
        .execute(params![org, user, id])?
        > 0)
}

/// How many one-time pre-keys the device has left (not yet claimed).
pub fn prekeys_left(conn: &Connection, device: DeviceId) -> Result<i64, StoreError> {
    Ok(conn.query_row_cached(
        "SELECT COUNT(*) FROM device_prekeys WHERE device_id = ?1 AND claimed_at IS NULL",
        params![device],
        |row| row.get(0),
    )?)
}

/// Which of `key_ids` the device has ever held, claimed or not, in ascending order.
pub fn known_prekey_ids(
    conn: &Connection,
    device: DeviceId,
    key_ids: &[i64],
) -> Result<Vec<i64>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT 1 FROM device_prekeys WHERE device_id = ?1 AND key_id = ?2")?;
    let mut known = Vec::new();
    for id in key_ids {
        if stmt.exists(params![device, id])? {
            known.push(*id);
        }
    }
    known.sort_unstable();
    Ok(known)
}

/// Takes the device's oldest unclaimed one-time pre-key: read, then marked claimed (its
/// public key dropped) in the caller's write transaction. SQLite runs one write
/// transaction at a time, so two callers can never receive the same key.
pub fn claim_prekey(
    conn: &Connection,
    device: DeviceId,
    now: &str,
) -> Result<Option<PreKey>, StoreError> {
    let key = conn
        .query_row_cached(
            "SELECT key_id, alg, public_key FROM device_prekeys
             WHERE device_id = ?1 AND claimed_at IS NULL ORDER BY key_id LIMIT 1",
            params![device],
            |row| {
                Ok(PreKey {
                    key_id: row.get(0)?,
                    alg: row.get(1)?,
                    public_key: row.get(2)?,
                })
            },
        )
        .optional()?;
    if let Some(key) = &key {
        conn.prepare_cached(
            "UPDATE device_prekeys SET claimed_at = ?3, public_key = ''
             WHERE device_id = ?1 AND key_id = ?2",
        )?
        .execute(params![device, key.key_id, now])?;
    }
    Ok(key)
}

/// Records that the device made a call (at most one write per call).
pub fn touch(conn: &Connection, id: DeviceId, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE devices SET last_seen_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// The devices of these users in `org` (ids and owners), by id.
pub fn ids_of_users(
    conn: &Connection,
    org: OrgId,
    users: &[UserId],
) -> Result<Vec<(DeviceId, UserId)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id FROM devices WHERE org_id = ?1 AND user_id = ?2 ORDER BY id",
    )?;
    let mut out = Vec::new();
    for user in users {
        let rows = stmt.query_map(params![org, user], |row| Ok((row.get(0)?, row.get(1)?)))?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}
