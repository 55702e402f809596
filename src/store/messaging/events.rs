//! The per-device event log of the real-time stream. Each device numbers its events
//! 1, 2, 3, ... (`devices.event_seq`), in the transaction that writes them; SQLite runs
//! one write transaction at a time, so a reader that has seen `seq` n has seen every event
//! up to n, and resuming after n loses and repeats nothing.

use rusqlite::{Connection, params};

use crate::ids::DeviceId;
use crate::store::CachedQuery as _;
use crate::store::StoreError;

/// One stored event: ids and small metadata, never ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    pub seq: i64,
    pub event_type: String,
    /// A JSON object (text).
    pub data: String,
    pub created_at: String,
}

/// Appends one event to each device's log; returns nothing but fails if a device is gone.
pub fn append(
    conn: &Connection,
    devices: &[DeviceId],
    event_type: &str,
    data: &serde_json::Value,
    now: &str,
) -> Result<(), StoreError> {
    let data = data.to_string();
    let mut bump = conn.prepare_cached(
        "UPDATE devices SET event_seq = event_seq + 1 WHERE id = ?1 RETURNING event_seq",
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO device_events (device_id, seq, type, data, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for device in devices {
        let seq: Option<i64> = bump
            .query_row(params![device], |row| row.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })?;
        if let Some(seq) = seq {
            insert.execute(params![device, seq, event_type, data, now])?;
        }
    }
    Ok(())
}

/// Up to `limit` events of the device after `seq`, oldest first.
pub fn after(
    conn: &Connection,
    device: DeviceId,
    seq: i64,
    limit: u32,
) -> Result<Vec<DeviceEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, type, data, created_at FROM device_events
         WHERE device_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![device, seq, limit], |row| {
        Ok(DeviceEvent {
            seq: row.get(0)?,
            event_type: row.get(1)?,
            data: row.get(2)?,
            created_at: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The device's newest sequence number (where a stream without `Last-Event-ID` starts).
pub fn last_seq(conn: &Connection, device: DeviceId) -> Result<Option<i64>, StoreError> {
    use rusqlite::OptionalExtension as _;
    Ok(conn
        .query_row_cached(
            "SELECT event_seq FROM devices WHERE id = ?1",
            params![device],
            |row| row.get(0),
        )
        .optional()?)
}

/// Deletes events older than `cutoff` (RFC 3339): a device that stayed away longer
/// resumes from what is left and reads older messages through the list.
pub fn prune(conn: &Connection, cutoff: &str, limit: u32) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM device_events WHERE (device_id, seq) IN (
                 SELECT device_id, seq FROM device_events WHERE created_at < ?1 LIMIT ?2)",
        )?
        .execute(params![cutoff, limit])?)
}
