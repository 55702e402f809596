//! The one-time setup token that creates the first instance admin.

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;

use super::StoreError;
use crate::auth::opaque;

/// Stores the hash of a new setup token, replacing any earlier one.
pub fn replace_token(conn: &Connection, hash: &[u8; 32], now: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO setup_tokens (singleton, token_hash, created_at) VALUES (1, ?1, ?2)
         ON CONFLICT (singleton) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at",
        params![&hash[..], now],
    )?;
    Ok(())
}

/// Whether `hash` is the current setup token's (compared in constant time).
pub fn token_matches(conn: &Connection, hash: &[u8; 32]) -> Result<bool, StoreError> {
    let stored: Option<Vec<u8>> = conn
        .query_row_cached(
            "SELECT token_hash FROM setup_tokens WHERE singleton = 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(stored.is_some_and(|stored| opaque::hashes_equal(&stored, hash)))
}

/// Consumes the setup token if `hash` matches it.
pub fn take_token(conn: &Connection, hash: &[u8; 32]) -> Result<bool, StoreError> {
    if !token_matches(conn, hash)? {
        return Ok(false);
    }
    conn.execute("DELETE FROM setup_tokens", [])?;
    Ok(true)
}

pub fn delete_token(conn: &Connection) -> Result<(), StoreError> {
    conn.execute("DELETE FROM setup_tokens", [])?;
    Ok(())
}
