//! KV secrets. Every lookup takes the organization and the owner: a secret is its owner's
//! alone; others reach it only through a share.

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;
use super::StoreError;
use crate::ids::{KvEntryId, OrgId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub id: KvEntryId,
    pub org_id: OrgId,
    pub owner_id: UserId,
    pub name: String,
    pub version: i64,
    pub dek_generation: i64,
    pub sealed_value: Vec<u8>,
    pub owner_envelope: Vec<u8>,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "id, org_id, owner_id, name, version, dek_generation, sealed_value, \
                       owner_envelope, created_at, updated_at";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<KvEntry> {
    Ok(KvEntry {
        id: row.get(0)?,
        org_id: row.get(1)?,
        owner_id: row.get(2)?,
        name: row.get(3)?,
        version: row.get(4)?,
        dek_generation: row.get(5)?,
        sealed_value: row.get(6)?,
        owner_envelope: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

pub fn find_by_name(
    conn: &Connection,
    org: OrgId,
    owner: UserId,
    name: &str,
) -> Result<Option<KvEntry>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {COLUMNS} FROM kv_entries WHERE org_id = ?1 AND owner_id = ?2 AND name = ?3"
            ),
            params![org, owner, name],
            from_row,
        )
        .optional()?)
}

/// A secret of the organization by id, whoever owns it (for a share's recipient, whose
/// share names it).
pub fn find_in_org(
    conn: &Connection,
    org: OrgId,
    id: KvEntryId,
) -> Result<Option<KvEntry>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM kv_entries WHERE org_id = ?1 AND id = ?2"),
            params![org, id],
            from_row,
        )
        .optional()?)
}

/// The owner's secret names in the organization, sorted.
pub fn names(conn: &Connection, org: OrgId, owner: UserId) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM kv_entries WHERE org_id = ?1 AND owner_id = ?2 ORDER BY name",
    )?;
    let rows = stmt.query_map(params![org, owner], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert(conn: &Connection, entry: &KvEntry) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO kv_entries (id, org_id, owner_id, name, version, dek_generation,
                                 sealed_value, owner_envelope, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        params![
            entry.id,
            entry.org_id,
            entry.owner_id,
            entry.name,
            entry.version,
            entry.dek_generation,
            entry.sealed_value,
            entry.owner_envelope,
            entry.created_at,
        ],
    )
    .map_err(super::conflict_on_unique)?;
    Ok(())
}

/// Writes a new version (value, and DEK envelope when the DEK changed).
pub fn update(conn: &Connection, entry: &KvEntry) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE kv_entries SET version = ?2, dek_generation = ?3, sealed_value = ?4,
                               owner_envelope = ?5, updated_at = ?6
         WHERE id = ?1",
        params![
            entry.id,
            entry.version,
            entry.dek_generation,
            entry.sealed_value,
            entry.owner_envelope,
            entry.updated_at,
        ],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id: KvEntryId) -> Result<(), StoreError> {
    conn.execute("DELETE FROM kv_entries WHERE id = ?1", [id])?;
    Ok(())
}
