//! Stored files and the uploads that create them. Lookups take the organization and the
//! owner; an upload is also found by the hash of its capability token.

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;
use super::StoreError;
use crate::ids::{FileId, OrgId, UserId};

/// How a file's bytes were encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// sealbox encrypted them (SBX1) under the file's DEK.
    Server,
    /// The client encrypted them; sealbox stores them untouched.
    Client,
}

impl Encryption {
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::Server => "server",
            Encryption::Client => "client",
        }
    }

    fn parse(text: &str) -> rusqlite::Result<Self> {
        match text {
            "server" => Ok(Encryption::Server),
            "client" => Ok(Encryption::Client),
            other => Err(rusqlite::Error::InvalidColumnType(
                0,
                format!("encryption {other}"),
                rusqlite::types::Type::Text,
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub id: FileId,
    pub org_id: OrgId,
    pub owner_id: UserId,
    pub encryption: Encryption,
    pub sealed_name: Option<Vec<u8>>,
    pub client_name: Option<String>,
    pub content_type: String,
    pub size: i64,
    pub stored_size: i64,
    pub blake3: String,
    pub owner_envelope: Option<Vec<u8>>,
    pub dek_generation: i64,
    pub blob_key: String,
    pub created_at: String,
    pub updated_at: String,
}

const FILE_COLUMNS: &str = "id, org_id, owner_id, encryption, sealed_name, client_name, \
                            content_type, size, stored_size, blake3, owner_envelope, \
                            dek_generation, blob_key, created_at, updated_at";

fn file_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<File> {
    Ok(File {
        id: row.get(0)?,
        org_id: row.get(1)?,
        owner_id: row.get(2)?,
        encryption: Encryption::parse(&row.get::<_, String>(3)?)?,
        sealed_name: row.get(4)?,
        client_name: row.get(5)?,
        content_type: row.get(6)?,
        size: row.get(7)?,
        stored_size: row.get(8)?,
        blake3: row.get(9)?,
        owner_envelope: row.get(10)?,
        dek_generation: row.get(11)?,
        blob_key: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
    })
}

pub fn insert(conn: &Connection, file: &File) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO files (id, org_id, owner_id, encryption, sealed_name, client_name,
                            content_type, size, stored_size, blake3, owner_envelope,
                            dek_generation, blob_key, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
        params![
            file.id,
            file.org_id,
            file.owner_id,
            file.encryption.as_str(),
            file.sealed_name,
            file.client_name,
            file.content_type,
            file.size,
            file.stored_size,
            file.blake3,
            file.owner_envelope,
            file.dek_generation,
            file.blob_key,
            file.created_at,
        ],
    )
    .map_err(super::conflict_on_unique)?;
    Ok(())
}

/// A transfer's files are the transfer's, not their sender's: the files API does not see
/// them (they are read, counted and deleted through the transfer).
const NOT_IN_TRANSFER: &str =
    "NOT EXISTS (SELECT 1 FROM transfer_files t WHERE t.file_id = files.id)";

/// The owner's file.
pub fn find_for_owner(
    conn: &Connection,
    org: OrgId,
    owner: UserId,
    id: FileId,
) -> Result<Option<File>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {FILE_COLUMNS} FROM files WHERE org_id = ?1 AND owner_id = ?2 AND id = ?3
                   AND {NOT_IN_TRANSFER}"
            ),
            params![org, owner, id],
            file_from_row,
        )
        .optional()?)
}

/// A file by id alone: for a download capability, which is its own authorization.
pub fn find_by_id(conn: &Connection, id: FileId) -> Result<Option<File>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1"),
            [id],
            file_from_row,
        )
        .optional()?)
}

/// The owner's files, newest first.
pub fn list_for_owner(
    conn: &Connection,
    org: OrgId,
    owner: UserId,
) -> Result<Vec<File>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE org_id = ?1 AND owner_id = ?2
           AND {NOT_IN_TRANSFER}
         ORDER BY created_at DESC, id DESC"
    ))?;
    let rows = stmt.query_map(params![org, owner], file_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Bytes the organization stores, for its quota (files and uploads in progress, which
/// count at their declared size).
pub fn org_usage(conn: &Connection, org: OrgId) -> Result<i64, StoreError> {
    Ok(conn.query_row_cached(
        "SELECT COALESCE((SELECT SUM(size) FROM files WHERE org_id = ?1), 0)
              + COALESCE((SELECT SUM(declared_size) FROM uploads WHERE org_id = ?1), 0)",
        [org],
        |row| row.get(0),
    )?)
}

pub fn delete(conn: &Connection, id: FileId) -> Result<(), StoreError> {
    conn.execute("DELETE FROM files WHERE id = ?1", [id])?;
    Ok(())
}

/// What a file row says its blob holds, for `doctor --scrub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub file_id: FileId,
    pub blob_key: String,
    pub stored_size: i64,
    /// BLAKE3 of the stored bytes, hex.
    pub blake3: String,
}

/// Every file's blob with its size and hash, for `doctor --scrub`.
pub fn all_blobs(conn: &Connection) -> Result<Vec<StoredBlob>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT id, blob_key, stored_size, blake3 FROM files ORDER BY id")?;
    let rows = stmt.query_map([], |row| {
        Ok(StoredBlob {
            file_id: row.get(0)?,
            blob_key: row.get(1)?,
            stored_size: row.get(2)?,
            blake3: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The id of every upload, expired or not (its bytes stay until the sweeper removes it),
/// for `doctor --scrub`.
pub fn all_upload_ids(conn: &Connection) -> Result<Vec<FileId>, StoreError> {
    let mut stmt = conn.prepare("SELECT id FROM uploads ORDER BY id")?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: FileId,
    pub org_id: OrgId,
    pub owner_id: UserId,
    pub encryption: Encryption,
    pub sealed_name: Option<Vec<u8>>,
    pub client_name: Option<String>,
    pub content_type: String,
    pub declared_size: i64,
    pub received: i64,
    pub sbx1_header: Option<Vec<u8>>,
    pub master_sealed_dek: Option<String>,
    pub owner_envelope: Option<Vec<u8>>,
    pub metadata: Option<String>,
    pub complete: bool,
    pub expires_at: String,
    pub created_at: String,
}

const UPLOAD_COLUMNS: &str = "id, org_id, owner_id, encryption, sealed_name, client_name, \
                              content_type, declared_size, received, sbx1_header, \
                              master_sealed_dek, owner_envelope, metadata, complete, \
                              expires_at, created_at";

fn upload_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Upload> {
    Ok(Upload {
        id: row.get(0)?,
        org_id: row.get(1)?,
        owner_id: row.get(2)?,
        encryption: Encryption::parse(&row.get::<_, String>(3)?)?,
        sealed_name: row.get(4)?,
        client_name: row.get(5)?,
        content_type: row.get(6)?,
        declared_size: row.get(7)?,
        received: row.get(8)?,
        sbx1_header: row.get(9)?,
        master_sealed_dek: row.get(10)?,
        owner_envelope: row.get(11)?,
        metadata: row.get(12)?,
        complete: row.get(13)?,
        expires_at: row.get(14)?,
        created_at: row.get(15)?,
    })
}

pub fn insert_upload(
    conn: &Connection,
    upload: &Upload,
    token_hash: &[u8; 32],
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO uploads (id, token_hash, org_id, owner_id, encryption, sealed_name,
                              client_name, content_type, declared_size, sbx1_header,
                              master_sealed_dek, owner_envelope, metadata, expires_at,
                              created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
        params![
            upload.id,
            token_hash.as_slice(),
            upload.org_id,
            upload.owner_id,
            upload.encryption.as_str(),
            upload.sealed_name,
            upload.client_name,
            upload.content_type,
            upload.declared_size,
            upload.sbx1_header,
            upload.master_sealed_dek,
            upload.owner_envelope,
            upload.metadata,
            upload.expires_at,
            upload.created_at,
        ],
    )?;
    Ok(())
}

/// The unexpired upload a capability token opens.
pub fn find_upload_by_token(
    conn: &Connection,
    token_hash: &[u8; 32],
    now: &str,
) -> Result<Option<Upload>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE token_hash = ?1 AND expires_at > ?2"
            ),
            params![token_hash.as_slice(), now],
            upload_from_row,
        )
        .optional()?)
}

/// An upload by id alone: for a transfer's finalize, which checked the transfer lists it.
pub fn find_upload(conn: &Connection, id: FileId) -> Result<Option<Upload>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1"),
            [id],
            upload_from_row,
        )
        .optional()?)
}

/// The owner's unexpired upload of file `id`.
pub fn find_upload_for_owner(
    conn: &Connection,
    org: OrgId,
    owner: UserId,
    id: FileId,
    now: &str,
) -> Result<Option<Upload>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {UPLOAD_COLUMNS} FROM uploads
                 WHERE org_id = ?1 AND owner_id = ?2 AND id = ?3 AND expires_at > ?4
                   AND NOT EXISTS (SELECT 1 FROM transfer_files t WHERE t.file_id = uploads.id)"
            ),
            params![org, owner, id, now],
            upload_from_row,
        )
        .optional()?)
}

/// Records bytes durably written, if the upload is still at `from` (a concurrent writer
/// loses). Returns whether it moved.
pub fn advance_upload(
    conn: &Connection,
    id: FileId,
    from: i64,
    to: i64,
    complete: bool,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE uploads SET received = ?3, complete = ?4, updated_at = ?5
         WHERE id = ?1 AND received = ?2 AND complete = 0",
        params![id, from, to, complete, now],
    )? == 1)
}

/// Starts an upload over from byte 0 (with a new SBX1 header when it has one), if it is
/// still at `from`.
pub fn restart_upload(
    conn: &Connection,
    id: FileId,
    from: i64,
    header: Option<&[u8]>,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE uploads SET received = 0, sbx1_header = COALESCE(?3, sbx1_header), updated_at = ?4
         WHERE id = ?1 AND received = ?2 AND complete = 0",
        params![id, from, header, now],
    )? == 1)
}

pub fn delete_upload(conn: &Connection, id: FileId) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM uploads WHERE id = ?1", [id])? == 1)
}

/// Uploads past their expiry, for the sweeper.
pub fn expired_uploads(conn: &Connection, now: &str) -> Result<Vec<FileId>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM uploads WHERE expires_at <= ?1")?;
    let rows = stmt.query_map([now], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
