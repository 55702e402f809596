//! Transfers, their files and recipients. Every finder for the sender's side takes the
//! organization; the public side finds a transfer by its id (the link) or by the hash of
//! its upload token, both capabilities of their own.

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;
use super::StoreError;
use crate::ids::{FileId, OrgId, TransferId, UserId};

/// Who encrypts a transfer's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// sealbox encrypts them under the transfer's DEK.
    Server,
    /// The client encrypts them; the key travels only in the link's fragment.
    E2e,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Server => "server",
            Mode::E2e => "e2e",
        }
    }
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created; files are being uploaded.
    Pending,
    /// Finalized: link holders may download.
    Ready,
    /// Past its expiry; its bytes are deleted.
    Expired,
    /// Revoked by its sender; its bytes are deleted.
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Ready => "ready",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Status::Pending),
            "ready" => Some(Status::Ready),
            "expired" => Some(Status::Expired),
            "revoked" => Some(Status::Revoked),
            _ => None,
        }
    }
}

fn bad_column(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Text)
}

/// The password gate of a transfer: an Argon2id salt and parameters, and a key (the DEK
/// in server mode, a random check value in e2e mode) sealed by the KEK they derive.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordGate {
    pub salt: Vec<u8>,
    pub params: String,
    pub sealed_key: String,
}

impl std::fmt::Debug for PasswordGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordGate([redacted])")
    }
}

/// A stored transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: TransferId,
    pub org_id: OrgId,
    pub sender_id: UserId,
    pub name: String,
    pub sealed_message: Option<String>,
    pub mode: Mode,
    pub status: Status,
    pub expires_at: String,
    pub max_downloads: Option<i64>,
    pub downloads: i64,
    pub master_sealed_dek: Option<String>,
    pub password: Option<PasswordGate>,
    pub created_at: String,
    pub updated_at: String,
    /// SHA-256 of the link secret (`#s=`, sent as `X-Transfer-Secret`); `None` for a
    /// transfer created before link secrets, whose bare link keeps working.
    pub link_secret_hash: Option<Vec<u8>>,
    /// The link secret sealed by the master key, to show the sender the link and mail it.
    pub sealed_link_secret: Option<String>,
}

/// One recipient: an email address or a user of the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Email(String),
    User(UserId),
}

const COLUMNS: &str = "id, org_id, sender_id, name, sealed_message, mode, status, expires_at, \
                       max_downloads, downloads, master_sealed_dek, password_salt, \
                       password_params, password_sealed_key, created_at, updated_at, \
                       link_secret_hash, sealed_link_secret";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Transfer> {
    let mode = match row.get::<_, String>(5)?.as_str() {
        "server" => Mode::Server,
        "e2e" => Mode::E2e,
        other => return Err(bad_column(&format!("mode {other}"))),
    };
    let status: String = row.get(6)?;
    let status = Status::parse(&status).ok_or_else(|| bad_column(&format!("status {status}")))?;
    let salt: Option<Vec<u8>> = row.get(11)?;
    let params: Option<String> = row.get(12)?;
    let sealed_key: Option<String> = row.get(13)?;
    let password = match (salt, params, sealed_key) {
        (Some(salt), Some(params), Some(sealed_key)) => Some(PasswordGate {
            salt,
            params,
            sealed_key,
        }),
        _ => None,
    };
    Ok(Transfer {
        id: row.get(0)?,
        org_id: row.get(1)?,
        sender_id: row.get(2)?,
        name: row.get(3)?,
        sealed_message: row.get(4)?,
        mode,
        status,
        expires_at: row.get(7)?,
        max_downloads: row.get(8)?,
        downloads: row.get(9)?,
        master_sealed_dek: row.get(10)?,
        password,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
        link_secret_hash: row.get(16)?,
        sealed_link_secret: row.get(17)?,
    })
}

/// Stores a new transfer with the hash of its upload token and its recipients.
pub fn insert(
    conn: &Connection,
    transfer: &Transfer,
    upload_token_hash: &[u8; 32],
    recipients: &[Recipient],
) -> Result<(), StoreError> {
    let gate = transfer.password.as_ref();
    conn.execute(
        "INSERT INTO transfers (id, org_id, sender_id, name, sealed_message, mode, status,
                                expires_at, max_downloads, downloads, upload_token_hash,
                                master_sealed_dek, password_salt, password_params,
                                password_sealed_key, created_at, updated_at,
                                link_secret_hash, sealed_link_secret)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11, ?12, ?13, ?14, ?15, ?15,
                 ?16, ?17)",
        params![
            transfer.id,
            transfer.org_id,
            transfer.sender_id,
            transfer.name,
            transfer.sealed_message,
            transfer.mode.as_str(),
            transfer.status.as_str(),
            transfer.expires_at,
            transfer.max_downloads,
            upload_token_hash.as_slice(),
            transfer.master_sealed_dek,
            gate.map(|g| g.salt.clone()),
            gate.map(|g| g.params.clone()),
            gate.map(|g| g.sealed_key.clone()),
            transfer.created_at,
            transfer.link_secret_hash,
            transfer.sealed_link_secret,
        ],
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO transfer_recipients (transfer_id, position, email, user_id)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (position, recipient) in recipients.iter().enumerate() {
        let (email, user) = match recipient {
            Recipient::Email(email) => (Some(email.as_str()), None),
            Recipient::User(user) => (None, Some(*user)),
        };
        stmt.execute(params![transfer.id, position as i64, email, user])?;
    }
    Ok(())
}

/// The organization's transfer.
pub fn find_for_org(
    conn: &Connection,
    org: OrgId,
    id: TransferId,
) -> Result<Option<Transfer>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM transfers WHERE org_id = ?1 AND id = ?2"),
            params![org, id],
            from_row,
        )
        .optional()?)
}

/// A transfer by id alone: for its public link, which is its own authorization.
pub fn find_by_id(conn: &Connection, id: TransferId) -> Result<Option<Transfer>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM transfers WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

/// The pending transfer an upload token opens.
pub fn find_by_upload_token(
    conn: &Connection,
    token_hash: &[u8; 32],
) -> Result<Option<Transfer>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {COLUMNS} FROM transfers
                 WHERE upload_token_hash = ?1 AND status = 'pending' AND expires_at > ?2"
            ),
            params![token_hash.as_slice(), crate::ids::now_rfc3339()],
            from_row,
        )
        .optional()?)
}

/// Where a page of transfers starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListCursor {
    Start,
    Before(TransferId),
    After(TransferId),
}

/// A page of the organization's transfers (ids are UUIDv7: newest first by id).
pub fn list_for_org(
    conn: &Connection,
    org: OrgId,
    status: Option<Status>,
    cursor: ListCursor,
    limit: u32,
) -> Result<Vec<Transfer>, StoreError> {
    let (before, after) = match cursor {
        ListCursor::Start => (None, None),
        ListCursor::Before(id) => (Some(id), None),
        ListCursor::After(id) => (None, Some(id)),
    };
    // Only the conditions in use go into the SQL (as in `audit::list_for_org`), so the
    // cursor bounds the index on (org_id, [status,] id) and a page costs the same however
    // deep it is.
    let status = status.map(Status::as_str);
    let mut sql = format!("SELECT {COLUMNS} FROM transfers WHERE org_id = ?");
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&org];
    let conditions: [(&str, Option<&dyn rusqlite::ToSql>); 3] = [
        ("status = ?", status.as_ref().map(|v| v as _)),
        ("id < ?", before.as_ref().map(|v| v as _)),
        ("id > ?", after.as_ref().map(|v| v as _)),
    ];
    for (condition, value) in conditions {
        if let Some(value) = value {
            sql.push_str(" AND ");
            sql.push_str(condition);
            values.push(value);
        }
    }
    let order = if after.is_some() { "ASC" } else { "DESC" };
    sql.push_str(&format!(" ORDER BY id {order} LIMIT ?"));
    values.push(&limit);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(values.as_slice(), from_row)?;
    let mut items: Vec<Transfer> = rows.collect::<Result<_, _>>()?;
    if after.is_some() {
        items.reverse();
    }
    Ok(items)
}

/// Replaces the stored message of a pending transfer. False if it is not pending.
pub fn set_pending_message(
    conn: &Connection,
    id: TransferId,
    message: &str,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE transfers SET sealed_message = ?2, updated_at = ?3
         WHERE id = ?1 AND status = 'pending'",
        params![id, message, now],
    )? == 1)
}

/// Makes a pending transfer ready: the upload token stops working, and (with a
/// password) the copy of the DEK sealed by the master key is dropped. False if it was
/// not pending.
pub fn mark_ready(
    conn: &Connection,
    id: TransferId,
    drop_master_dek: bool,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE transfers SET status = 'ready', upload_token_hash = NULL, updated_at = ?3,
                master_sealed_dek = CASE WHEN ?2 THEN NULL ELSE master_sealed_dek END
         WHERE id = ?1 AND status = 'pending' AND expires_at > ?3",
        params![id, drop_master_dek, now],
    )? == 1)
}

/// Ends a transfer (`Expired` or `Revoked`): no key copy survives, its download tokens
/// included. False if it had already ended.
pub fn end(
    conn: &Connection,
    id: TransferId,
    status: Status,
    now: &str,
) -> Result<bool, StoreError> {
    super::download_tokens::delete_for_transfer(conn, id)?;
    Ok(conn.execute(
        "UPDATE transfers SET status = ?2, upload_token_hash = NULL, master_sealed_dek = NULL,
                password_sealed_key = NULL, password_salt = NULL, password_params = NULL,
                updated_at = ?3
         WHERE id = ?1 AND status IN ('pending', 'ready')",
        params![id, status.as_str(), now],
    )? == 1)
}

/// Counts one download if the transfer is ready, unexpired and below its limit: one
/// conditional UPDATE, so concurrent downloads can never exceed the limit. Returns the
/// new count, or `None` if the download is refused.
pub fn count_download(
    conn: &Connection,
    id: TransferId,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row_cached(
            "UPDATE transfers SET downloads = downloads + 1, updated_at = ?2
             WHERE id = ?1 AND status = 'ready' AND expires_at > ?2
               AND (max_downloads IS NULL OR downloads < max_downloads)
             RETURNING downloads",
            params![id, now],
            |row| row.get(0),
        )
        .optional()?)
}

/// Records that download session `session` (a download token) started its counted
/// download. Returns false if it had already: that download was counted before.
pub fn start_download_session(
    conn: &Connection,
    transfer: TransferId,
    session: &[u8; 16],
    now: &str,
) -> Result<bool, StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO transfer_download_sessions (transfer_id, session, counted_at)
         VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?;
    Ok(stmt.execute(params![transfer, &session[..], now])? == 1)
}

/// Whether download session `session` has started a counted download of `transfer`.
pub fn download_session_counted(
    conn: &Connection,
    transfer: TransferId,
    session: &[u8; 16],
) -> Result<bool, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT 1 FROM transfer_download_sessions WHERE transfer_id = ?1 AND session = ?2",
            params![transfer, &session[..]],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Forgets download sessions counted before `before` whose tokens are gone. A renewed
/// token keeps its id (its session) past the first token's lifetime, so a session goes
/// only with its token's row, never while the token can still fetch (or it would count
/// again).
pub fn prune_download_sessions(conn: &Connection, before: &str) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM transfer_download_sessions WHERE counted_at < ?1
         AND NOT EXISTS (SELECT 1 FROM download_tokens
                         WHERE download_tokens.id = transfer_download_sessions.session)",
        [before],
    )?)
}

/// Unlinks a file id whose upload is gone (terminated by its client) from a transfer.
pub fn detach_file(
    conn: &Connection,
    transfer: TransferId,
    file: FileId,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM transfer_files WHERE transfer_id = ?1 AND file_id = ?2",
        params![transfer, file],
    )?;
    Ok(())
}

/// Whether any of a transfer's file ids is not (yet) a stored file.
pub fn has_unfinished_files(conn: &Connection, transfer: TransferId) -> Result<bool, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT 1 FROM transfer_files tf WHERE tf.transfer_id = ?1
               AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = tf.file_id) LIMIT 1",
            [transfer],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Links an upload (and the file it becomes) to a transfer.
pub fn attach_file(
    conn: &Connection,
    transfer: TransferId,
    file: FileId,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO transfer_files (file_id, transfer_id) VALUES (?1, ?2)",
        params![file, transfer],
    )?;
    Ok(())
}

/// The ids of a transfer's files (and uploads), oldest first.
pub fn file_ids(conn: &Connection, transfer: TransferId) -> Result<Vec<FileId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT file_id FROM transfer_files WHERE transfer_id = ?1 ORDER BY file_id",
    )?;
    let rows = stmt.query_map([transfer], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `file` belongs to `transfer`.
pub fn has_file(conn: &Connection, transfer: TransferId, file: FileId) -> Result<bool, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT 1 FROM transfer_files WHERE transfer_id = ?1 AND file_id = ?2",
            params![transfer, file],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// A transfer's recipients, in the order given.
pub fn recipients(conn: &Connection, transfer: TransferId) -> Result<Vec<Recipient>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT email, user_id FROM transfer_recipients WHERE transfer_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([transfer], |row| {
        let email: Option<String> = row.get(0)?;
        let user: Option<UserId> = row.get(1)?;
        match (email, user) {
            (Some(email), _) => Ok(Recipient::Email(email)),
            (None, Some(user)) => Ok(Recipient::User(user)),
            (None, None) => Err(bad_column("recipient")),
        }
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Live transfers whose expiry has passed.
pub fn due_to_expire(conn: &Connection, now: &str) -> Result<Vec<(TransferId, OrgId)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, org_id FROM transfers
         WHERE status IN ('pending', 'ready') AND expires_at <= ?1 LIMIT 500",
    )?;
    let rows = stmt.query_map([now], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revoked or expired transfers that still have files or uploads (their deletion was
/// interrupted).
pub fn ended_with_bytes(conn: &Connection) -> Result<Vec<TransferId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id FROM transfers t
         WHERE t.status IN ('expired', 'revoked')
           AND EXISTS (SELECT 1 FROM transfer_files tf
                       WHERE tf.transfer_id = t.id
                         AND (EXISTS (SELECT 1 FROM files f WHERE f.id = tf.file_id)
                              OR EXISTS (SELECT 1 FROM uploads u WHERE u.id = tf.file_id)))
         LIMIT 100",
    )?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
