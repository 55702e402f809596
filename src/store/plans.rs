//! Organizations' assigned plans and the daily counters of their quotas (migration 0020).
//! The plans themselves are configuration; `service::plans` resolves them.

use rusqlite::{Connection, OptionalExtension, params};

use super::{CachedQuery, StoreError};
use crate::ids::{OrgId, UserId};

/// An organization's assignment, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub org_id: OrgId,
    pub plan_id: String,
    /// RFC 3339; after it the default plan applies.
    pub ends_at: Option<String>,
    pub set_by: Option<UserId>,
    /// Who made it: `admin_api`, `cli`, or a processor's name.
    pub set_via: String,
    pub set_at: String,
}

/// The organization's assignment, if it ever had one.
pub fn find(conn: &Connection, org: OrgId) -> Result<Option<Assignment>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT org_id, plan_id, ends_at, set_by, set_via, set_at
               FROM org_plans WHERE org_id = ?1",
            [org],
            |row| {
                Ok(Assignment {
                    org_id: row.get(0)?,
                    plan_id: row.get(1)?,
                    ends_at: row.get(2)?,
                    set_by: row.get(3)?,
                    set_via: row.get(4)?,
                    set_at: row.get(5)?,
                })
            },
        )
        .optional()?)
}

/// Replaces the organization's assignment.
pub fn put(conn: &Connection, assignment: &Assignment) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO org_plans (org_id, plan_id, ends_at, set_by, set_via, set_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (org_id) DO UPDATE SET plan_id = excluded.plan_id,
             ends_at = excluded.ends_at, set_by = excluded.set_by,
             set_via = excluded.set_via, set_at = excluded.set_at",
    )?
    .execute(params![
        assignment.org_id,
        assignment.plan_id,
        assignment.ends_at,
        assignment.set_by,
        assignment.set_via,
        assignment.set_at,
    ])?;
    Ok(())
}

/// Adds one to `subject`'s `counter` of `day` unless it has reached `limit`. Returns the
/// count after the call: `limit` or less when counted, `None` when refused (nothing
/// changed). One statement, so concurrent writers cannot both take the last unit.
pub fn take(
    conn: &Connection,
    subject: &str,
    counter: &str,
    day: &str,
    limit: u64,
) -> Result<Option<u64>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let n: Option<i64> = conn
        .query_row_cached(
            "INSERT INTO plan_usage (subject, counter, day, n) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (subject, counter, day) DO UPDATE SET n = n + 1 WHERE n < ?4
             RETURNING n",
            params![subject, counter, day, limit],
            |row| row.get(0),
        )
        .optional()?;
    // Callers never count against 0 (no limit), so the first unit always fits.
    Ok(n.filter(|n| *n <= limit).map(|n| n as u64))
}

/// Adds `units` to `subject`'s `counter` of `day`, with no limit: the units were
/// already taken against it in memory (`service::plans::usage`).
pub fn add(
    conn: &Connection,
    subject: &str,
    counter: &str,
    day: &str,
    units: u64,
) -> Result<(), StoreError> {
    let units = i64::try_from(units).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO plan_usage (subject, counter, day, n) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (subject, counter, day) DO UPDATE SET n = n + excluded.n",
    )?
    .execute(params![subject, counter, day, units])?;
    Ok(())
}

/// `subject`'s `counter` of `day`; 0 when nothing was counted.
pub fn used(conn: &Connection, subject: &str, counter: &str, day: &str) -> Result<u64, StoreError> {
    let n: Option<i64> = conn
        .query_row_cached(
            "SELECT n FROM plan_usage WHERE subject = ?1 AND counter = ?2 AND day = ?3",
            params![subject, counter, day],
            |row| row.get(0),
        )
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// Forgets counters of days before `day`: they are never read again.
pub fn forget_before(conn: &Connection, day: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM plan_usage WHERE day < ?1")?
        .execute([day])?)
}

/// The organization's active members, for the plan's members limit.
pub fn active_members(conn: &Connection, org: OrgId) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row_cached(
        "SELECT count(*) FROM memberships WHERE org_id = ?1 AND status = 'active'",
        [org],
        |row| row.get(0),
    )?;
    Ok(n as u64)
}
