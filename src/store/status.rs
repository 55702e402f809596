//! The figures of the instance admin's status page (`GET /admin/status`) that live in the
//! database.

use rusqlite::Connection;

use super::CachedQuery as _;
use super::StoreError;

/// Counts over the whole instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCounts {
    pub schema_version: i64,
    pub organizations: i64,
    pub users: i64,
    /// Webhook deliveries waiting for an attempt.
    pub webhook_pending: i64,
    /// Of those, the ones due at `now` (unix milliseconds, as `next_attempt_at`) or before.
    pub webhook_due: i64,
    /// Creation time of the oldest pending delivery.
    pub webhook_oldest_pending: Option<String>,
}

pub fn counts(conn: &Connection, now: i64) -> Result<StatusCounts, StoreError> {
    let schema_version = super::schema_version(conn)?;
    let organizations =
        conn.query_row_cached("SELECT COUNT(*) FROM organizations", [], |r| r.get(0))?;
    let users = conn.query_row_cached("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
    // Only pending rows: the partial index `webhook_deliveries_due` holds exactly those.
    let (webhook_pending, webhook_due, webhook_oldest_pending) = conn.query_row_cached(
        "SELECT COUNT(*), COALESCE(SUM(next_attempt_at <= ?1), 0), MIN(created_at)
         FROM webhook_deliveries WHERE status = 'pending'",
        [now],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(StatusCounts {
        schema_version,
        organizations,
        users,
        webhook_pending,
        webhook_due,
        webhook_oldest_pending,
    })
}
