//! Recovery material an owner left with a trustee: two shares opaque to the server. Every
//! lookup takes the organization and both the owner and the trustee (or one of them for
//! a list), so one user never reaches another pair's material.

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;
use super::StoreError;
use crate::ids::{OrgId, UserId};

/// One owner's recovery material held by one trustee.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryShare {
    pub owner_id: UserId,
    pub trustee_id: UserId,
    pub org_id: OrgId,
    /// Ciphertext made by the owner's client; the server never opens it.
    pub ecc_share: Vec<u8>,
    pub kyber_share: Vec<u8>,
    pub xor_applied: bool,
    pub xor_salt_hint: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl std::fmt::Debug for RecoveryShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryShare")
            .field("owner_id", &self.owner_id)
            .field("trustee_id", &self.trustee_id)
            .field("org_id", &self.org_id)
            .field("shares", &"[redacted]")
            .field("xor_applied", &self.xor_applied)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// A recovery share with the display name of the other party (the trustee for owners,
/// the owner for trustees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryShareWithName {
    pub share: RecoveryShare,
    pub name: String,
}

const COLUMNS: &str = "r.owner_id, r.trustee_id, r.org_id, r.ecc_share, r.kyber_share, \
                       r.xor_applied, r.xor_salt_hint, r.created_at, r.updated_at";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RecoveryShare> {
    Ok(RecoveryShare {
        owner_id: row.get(0)?,
        trustee_id: row.get(1)?,
        org_id: row.get(2)?,
        ecc_share: row.get(3)?,
        kyber_share: row.get(4)?,
        xor_applied: row.get(5)?,
        xor_salt_hint: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

fn with_name(row: &rusqlite::Row<'_>) -> rusqlite::Result<RecoveryShareWithName> {
    Ok(RecoveryShareWithName {
        share: from_row(row)?,
        name: row.get(9)?,
    })
}

/// The material `owner` left with `trustee` in the organization.
pub fn find(
    conn: &Connection,
    org: OrgId,
    owner: UserId,
    trustee: UserId,
) -> Result<Option<RecoveryShare>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {COLUMNS} FROM recovery_trustees r
                 WHERE r.org_id = ?1 AND r.owner_id = ?2 AND r.trustee_id = ?3"
            ),
            params![org, owner, trustee],
            from_row,
        )
        .optional()?)
}

/// Stores new material; `Conflict` if the pair already has some (in any organization).
pub fn insert(conn: &Connection, share: &RecoveryShare) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO recovery_trustees (owner_id, trustee_id, org_id, ecc_share, kyber_share,
                                        xor_applied, xor_salt_hint, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        share.owner_id,
        share.trustee_id,
        share.org_id,
        share.ecc_share,
        share.kyber_share,
        share.xor_applied,
        share.xor_salt_hint,
        share.created_at,
    ])
    .map_err(super::conflict_on_unique)?;
    Ok(())
}

/// Replaces the material of the pair in the organization; returns whether it existed.
pub fn update(conn: &Connection, share: &RecoveryShare) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE recovery_trustees SET ecc_share = ?4, kyber_share = ?5, xor_applied = ?6,
                                          xor_salt_hint = ?7, updated_at = ?8
             WHERE org_id = ?1 AND owner_id = ?2 AND trustee_id = ?3",
        )?
        .execute(params![
            share.org_id,
            share.owner_id,
            share.trustee_id,
            share.ecc_share,
            share.kyber_share,
            share.xor_applied,
            share.xor_salt_hint,
            share.updated_at,
        ])?
        == 1)
}

/// Deletes the pair's material in the organization; returns whether it existed.
pub fn delete(
    conn: &Connection,
    org: OrgId,
    owner: UserId,
    trustee: UserId,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM recovery_trustees WHERE org_id = ?1 AND owner_id = ?2 AND trustee_id = ?3",
        )?
        .execute(params![org, owner, trustee])?
        == 1)
}

/// The trustees `owner` chose in the organization, oldest first, with their names.
pub fn trustees_of(
    conn: &Connection,
    org: OrgId,
    owner: UserId,
) -> Result<Vec<RecoveryShareWithName>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, u.display_name FROM recovery_trustees r
         JOIN users u ON u.id = r.trustee_id
         WHERE r.org_id = ?1 AND r.owner_id = ?2
         ORDER BY r.created_at, r.trustee_id"
    ))?;
    let rows = stmt.query_map(params![org, owner], with_name)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The owners whose material `trustee` holds in the organization, most recently updated
/// first, with their names.
pub fn held_by(
    conn: &Connection,
    org: OrgId,
    trustee: UserId,
) -> Result<Vec<RecoveryShareWithName>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, u.display_name FROM recovery_trustees r
         JOIN users u ON u.id = r.owner_id
         WHERE r.org_id = ?1 AND r.trustee_id = ?2
         ORDER BY r.updated_at DESC, r.owner_id"
    ))?;
    let rows = stmt.query_map(params![org, trustee], with_name)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
