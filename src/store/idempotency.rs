//! Idempotency keys: a claim on (principal, key) while the first request runs, then its
//! sealed response until the key expires.

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;

use super::{StoreError, conflict_on_unique};

/// What a request carrying an idempotency key finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: this request runs and its response will be stored.
    Claimed,
    /// The first request with this key is still running.
    InFlight,
    /// The key was used for a different request (method, path or body).
    Mismatch,
    /// The first request finished: replay its response.
    Done { status: u16, response: String },
}

/// Claims `key` for `principal`, or says why it cannot. Call in an IMMEDIATE transaction.
pub fn claim(
    conn: &Connection,
    principal: &str,
    key: &str,
    fingerprint: &[u8; 32],
    now: &str,
    expires_at: &str,
) -> Result<Claim, StoreError> {
    let existing = conn
        .query_row_cached(
            "SELECT fingerprint, state = 'done', status, response FROM idempotency_keys
             WHERE principal = ?1 AND key = ?2 AND expires_at > ?3",
            params![principal, key, now],
            |row| {
                let stored: Vec<u8> = row.get(0)?;
                let done: bool = row.get(1)?;
                let finished: Option<(u16, String)> = match (done, row.get(2)?, row.get(3)?) {
                    (true, Some(status), Some(response)) => Some((status, response)),
                    _ => None,
                };
                Ok((stored, finished))
            },
        )
        .optional()?;
    match existing {
        Some((stored, _)) if stored != fingerprint => Ok(Claim::Mismatch),
        Some((_, Some((status, response)))) => Ok(Claim::Done { status, response }),
        Some((_, None)) => Ok(Claim::InFlight),
        None => {
            // An expired row the sweep has not reached yet is replaced.
            conn.execute(
                "DELETE FROM idempotency_keys WHERE principal = ?1 AND key = ?2",
                params![principal, key],
            )?;
            conn.execute(
                "INSERT INTO idempotency_keys
                     (principal, key, fingerprint, state, created_at, expires_at)
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
                params![principal, key, fingerprint.as_slice(), now, expires_at],
            )
            .map_err(conflict_on_unique)?;
            Ok(Claim::Claimed)
        }
    }
}

/// Stores the response of the request that claimed `key`.
pub fn complete(
    conn: &Connection,
    principal: &str,
    key: &str,
    status: u16,
    response: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE idempotency_keys SET state = 'done', status = ?3, response = ?4
         WHERE principal = ?1 AND key = ?2 AND state = 'running'",
        params![principal, key, status, response],
    )?;
    Ok(())
}

/// Frees `key` after a request that must not be replayed (a server error): a retry runs
/// again.
pub fn release(conn: &Connection, principal: &str, key: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM idempotency_keys WHERE principal = ?1 AND key = ?2 AND state = 'running'",
        params![principal, key],
    )?;
    Ok(())
}

/// Removes expired keys, and (`at_start`) claims left running by a process that stopped:
/// nothing can finish them now. Returns how many rows were removed.
pub fn sweep(conn: &Connection, now: &str, at_start: bool) -> Result<usize, StoreError> {
    let mut removed = conn.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?1", [now])?;
    if at_start {
        removed += conn.execute("DELETE FROM idempotency_keys WHERE state = 'running'", [])?;
    }
    Ok(removed)
}
