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
