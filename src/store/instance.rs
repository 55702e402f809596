//! The `instance` row: this installation's id and creation time.

use rusqlite::Connection;

use super::CachedQuery as _;

use super::StoreError;

/// The identity of this installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Random id generated when the database was created.
    pub id: String,
    /// RFC 3339 UTC creation time.
    pub created_at: String,
}

pub fn get(conn: &Connection) -> Result<Instance, StoreError> {
    Ok(conn.query_row_cached(
        "SELECT id, created_at FROM instance WHERE singleton = 1",
        [],
        |row| {
            Ok(Instance {
                id: row.get(0)?,
                created_at: row.get(1)?,
            })
        },
    )?)
}
