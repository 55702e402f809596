//! The event outbox: events are rows written in the transaction of the change that
//! causes them, so a rolled-back change emits nothing and no event is lost.

use rusqlite::{Connection, params};

use super::StoreError;

pub fn record(
    conn: &Connection,
    event_type: &str,
    org_id: Option<String>,
    data: &serde_json::Value,
    now: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO outbox_events (id, type, org_id, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![uuid::Uuid::now_v7().to_string(), event_type, org_id, data.to_string(), now],
    )?;
    Ok(())
}

/// One outbox row, as fan-out reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub seq: i64,
    /// The event id: the `webhook-id` of every delivery of this event.
    pub id: String,
    pub event_type: String,
    pub org_id: Option<String>,
    /// The event's data as JSON text.
    pub data: String,
    pub created_at: String,
}

/// Up to `limit` events recorded after `seq`, oldest first. SQLite runs one write
/// transaction at a time, so events commit in `seq` order: a cursor that moved past an
/// event can never miss one that commits later with a lower `seq`.
pub fn after(conn: &Connection, seq: i64, limit: u32) -> Result<Vec<OutboxEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, type, org_id, data, created_at FROM outbox_events
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![seq, limit], |row| {
        Ok(OutboxEvent {
            seq: row.get(0)?,
            id: row.get(1)?,
            event_type: row.get(2)?,
            org_id: row.get(3)?,
            data: row.get(4)?,
            created_at: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes up to `limit` outbox events created before `cutoff` (RFC 3339) that fan-out
/// has already read (`seq` at most `fanned_out`): nothing else reads the outbox, and the
/// deliveries made from them carry their own copy of the payload.
pub fn prune_fanned_out(
    conn: &Connection,
    fanned_out: i64,
    cutoff: &str,
    limit: i64,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM outbox_events WHERE seq IN (
                 SELECT seq FROM outbox_events
                  WHERE seq <= ?1 AND created_at < ?2
                  ORDER BY seq LIMIT ?3)",
        )?
        .execute(params![fanned_out, cutoff, limit])?)
}
