//! Download tokens: file download links and transfer download tokens. A row holds what a
//! token's secret derives (its verifier, the key it grants sealed under a key derived from
//! the secret), never the secret; rows go once the token has expired. Found by the
//! token's random id, which is its own capability (with the secret that must verify).

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;
use super::StoreError;
use crate::ids::{FileId, OrgId, TransferId, UserId};

/// What a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Downloading one file, for one user (its owner, or a share's recipient).
    File { file: FileId, user: UserId },
    /// One download session of a transfer.
    Transfer(TransferId),
}

/// A stored token. `Debug` leaves out the verifier and the sealed key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub id: [u8; 16],
    pub org_id: OrgId,
    pub grant: Grant,
    pub verifier: Vec<u8>,
    pub sealed_key: Option<Vec<u8>>,
    pub expires_at: String,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("org_id", &self.org_id)
            .field("grant", &self.grant)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

pub fn insert(conn: &Connection, token: &StoredToken, now: &str) -> Result<(), StoreError> {
    let (kind, file, user, transfer) = match token.grant {
        Grant::File { file, user } => ("file", Some(file), Some(user), None),
        Grant::Transfer(transfer) => ("transfer", None, None, Some(transfer)),
    };
    conn.execute(
        "INSERT INTO download_tokens (id, kind, org_id, user_id, file_id, transfer_id,
                                      verifier, sealed_key, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            &token.id[..],
            kind,
            token.org_id,
            user,
            file,
            transfer,
            token.verifier,
            token.sealed_key,
            token.expires_at,
            now
        ],
    )?;
    Ok(())
}

/// The unexpired token with this id.
pub fn find_live(
    conn: &Connection,
    id: &[u8; 16],
    now: &str,
) -> Result<Option<StoredToken>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT kind, org_id, user_id, file_id, transfer_id, verifier, sealed_key, expires_at
             FROM download_tokens WHERE id = ?1 AND expires_at > ?2",
            params![&id[..], now],
            |row| {
                let kind: String = row.get(0)?;
                let grant = match kind.as_str() {
                    "file" => Grant::File {
                        user: row.get(2)?,
                        file: row.get(3)?,
                    },
                    "transfer" => Grant::Transfer(row.get(4)?),
                    other => {
                        return Err(rusqlite::Error::InvalidColumnType(
                            0,
                            format!("kind {other}"),
                            rusqlite::types::Type::Text,
                        ));
                    }
                };
                Ok(StoredToken {
                    id: *id,
                    org_id: row.get(1)?,
                    grant,
                    verifier: row.get(5)?,
                    sealed_key: row.get(6)?,
                    expires_at: row.get(7)?,
                })
            },
        )
        .optional()?)
}

/// Marks a file link's first download as recorded. False if it already was.
pub fn mark_counted(conn: &Connection, id: &[u8; 16], now: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE download_tokens SET counted_at = ?2 WHERE id = ?1 AND counted_at IS NULL",
        params![&id[..], now],
    )? == 1)
}

/// Deletes the tokens that expired by `now`: with their rows go the only copies of the
/// keys they granted.
pub fn delete_expired(conn: &Connection, now: &str) -> Result<usize, StoreError> {
    Ok(conn.execute("DELETE FROM download_tokens WHERE expires_at <= ?1", [now])?)
}

/// Deletes a transfer's tokens (it ended: revoked or expired).
pub fn delete_for_transfer(conn: &Connection, transfer: TransferId) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM download_tokens WHERE transfer_id = ?1",
        [transfer],
    )?;
    Ok(())
}

/// What renewing a transfer's download token writes: the same id (the download session),
/// a new verifier and sealed key (the new secret's), a new expiry.
pub struct Renewal<'a> {
    pub id: &'a [u8; 16],
    pub transfer: TransferId,
    /// The verifier of the token being renewed: the update happens only while it is still
    /// the row's, so of two renewals of one token exactly one wins.
    pub old_verifier: &'a [u8],
    pub verifier: &'a [u8],
    pub sealed_key: Option<&'a [u8]>,
    pub expires_at: &'a str,
    /// Only a token first issued after this may be renewed (a session's longest life).
    pub issued_after: &'a str,
}

/// Renews a live transfer token in place. False when the row is no longer the presented
/// token's (renewed by another request, expired, deleted) or the session is too old.
pub fn renew(conn: &Connection, renewal: &Renewal<'_>, now: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE download_tokens SET verifier = ?1, sealed_key = ?2, expires_at = ?3
         WHERE id = ?4 AND kind = 'transfer' AND transfer_id = ?5 AND verifier = ?6
           AND expires_at > ?7 AND created_at > ?8",
        params![
            renewal.verifier,
            renewal.sealed_key,
            renewal.expires_at,
            &renewal.id[..],
            renewal.transfer,
            renewal.old_verifier,
            now,
            renewal.issued_after
        ],
    )? == 1)
}
