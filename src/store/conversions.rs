//! Conversion jobs (migration 0022): the rows of the durable conversion queue. Every
//! query a member can reach takes the organization and the owner; the worker's queries
//! (claim, finish, recover) take the job's id alone, as the queue's own.

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;
use super::StoreError;
use crate::ids::{ConversionId, FileId, OrgId, UserId};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "queued" => Status::Queued,
            "running" => Status::Running,
            "succeeded" => Status::Succeeded,
            "failed" => Status::Failed,
            "cancelled" => Status::Cancelled,
            _ => return None,
        })
    }

    /// Whether the job has ended (nothing will change it again).
    pub fn finished(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Cancelled)
    }
}

/// One conversion job. `Debug` leaves the sealed key out.
#[derive(Clone)]
pub struct Conversion {
    pub id: ConversionId,
    pub org_id: OrgId,
    pub owner_id: UserId,
    pub source_file_id: FileId,
    pub source_format: String,
    pub target_format: String,
    /// JSON text.
    pub options: String,
    pub status: Status,
    pub progress: i64,
    pub error: Option<String>,
    pub result_file_id: Option<FileId>,
    pub master_sealed_dek: Option<String>,
    pub attempts: i64,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl std::fmt::Debug for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversion")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("source_format", &self.source_format)
            .field("target_format", &self.target_format)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, org_id, owner_id, source_file_id, source_format, target_format, \
    options, status, progress, error, result_file_id, master_sealed_dek, attempts, \
    created_at, updated_at, finished_at";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Conversion> {
    let status: String = row.get(7)?;
    Ok(Conversion {
        id: row.get(0)?,
        org_id: row.get(1)?,
        owner_id: row.get(2)?,
        source_file_id: row.get(3)?,
        source_format: row.get(4)?,
        target_format: row.get(5)?,
        options: row.get(6)?,
        status: Status::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                7,
                rusqlite::types::Type::Text,
                format!("unknown conversion status `{status}`").into(),
            )
        })?,
        progress: row.get(8)?,
        error: row.get(9)?,
        result_file_id: row.get(10)?,
        master_sealed_dek: row.get(11)?,
        attempts: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
        finished_at: row.get(15)?,
    })
}

pub fn insert(conn: &Connection, job: &Conversion) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO conversions ({COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?
    .execute(params![
        job.id,
        job.org_id,
        job.owner_id,
        job.source_file_id,
        job.source_format,
        job.target_format,
        job.options,
        job.status.as_str(),
        job.progress,
        job.error,
        job.result_file_id,
        job.master_sealed_dek,
        job.attempts,
        job.created_at,
        job.updated_at,
        job.finished_at,
    ])?;
    Ok(())
}

/// One of a member's jobs.
pub fn find_for_owner(
    conn: &Connection,
    org: OrgId,
    owner: UserId,
    id: ConversionId,
) -> Result<Option<Conversion>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {COLUMNS} FROM conversions WHERE org_id = ?1 AND owner_id = ?2 AND id = ?3"
            ),
            params![org, owner, id],
            from_row,
        )
        .optional()?)
}

/// A job by id: the worker's, which holds it.
pub fn find(conn: &Connection, id: ConversionId) -> Result<Option<Conversion>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {COLUMNS} FROM conversions WHERE id = ?1"),
            params![id],
            from_row,
        )
        .optional()?)
}

/// Which page of a member's jobs, newest first, to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Start,
    Before(ConversionId),
    After(ConversionId),
}

/// Up to `limit` of a member's jobs, newest first.
pub fn list_for_owner(
    conn: &Connection,
    org: OrgId,
    owner: UserId,
    cursor: Cursor,
    limit: u32,
) -> Result<Vec<Conversion>, StoreError> {
    let (condition, cursor_id, order) = match &cursor {
        Cursor::Start => ("", None, "DESC"),
        Cursor::Before(id) => ("AND id < ?3", Some(*id), "DESC"),
        Cursor::After(id) => ("AND id > ?3", Some(*id), "ASC"),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM conversions
         WHERE org_id = ?1 AND owner_id = ?2 {condition} ORDER BY id {order} LIMIT {limit}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut items: Vec<Conversion> = match cursor_id {
        None => stmt
            .query_map(params![org, owner], from_row)?
            .collect::<Result<_, _>>()?,
        Some(id) => stmt
            .query_map(params![org, owner, id], from_row)?
            .collect::<Result<_, _>>()?,
    };
    if matches!(cursor, Cursor::After(_)) {
        items.reverse();
    }
    Ok(items)
}

/// Takes up to `limit` queued jobs, oldest first: each becomes `running` with one more
/// attempt counted, in the caller's transaction.
pub fn claim_queued(
    conn: &Connection,
    limit: u32,
    now: &str,
) -> Result<Vec<Conversion>, StoreError> {
    let ids: Vec<ConversionId> = conn
        .prepare_cached("SELECT id FROM conversions WHERE status = 'queued' ORDER BY id LIMIT ?1")?
        .query_map(params![limit], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        conn.prepare_cached(
            "UPDATE conversions SET status = 'running', attempts = attempts + 1,
                    progress = 10, updated_at = ?2
             WHERE id = ?1 AND status = 'queued'",
        )?
        .execute(params![id, now])?;
        claimed.extend(find(conn, id)?);
    }
    Ok(claimed)
}

/// Whether any job is queued: a read, so an idle worker takes no write lock to look.
pub fn any_queued(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM conversions WHERE status = 'queued')")?
        .query_row([], |row| row.get(0))?)
}

/// Jobs left `running` by a process that stopped: the queue's only worker is this
/// process's, so at start-up none of them is really running.
pub fn interrupted(conn: &Connection) -> Result<Vec<Conversion>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM conversions WHERE status = 'running' ORDER BY id"
        ))?
        .query_map([], from_row)?
        .collect::<Result<_, _>>()?)
}

/// Puts an interrupted job back in the queue (its attempts stay counted).
pub fn requeue(conn: &Connection, id: ConversionId, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE conversions SET status = 'queued', progress = 0, updated_at = ?2
         WHERE id = ?1 AND status = 'running'",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// Ends an unfinished job (`from` is the status it must still have): `to`, with an error
/// or a result file, its sealed key dropped. False when it no longer had `from` (it was
/// cancelled meanwhile, say), in which case nothing changed.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    conn: &Connection,
    id: ConversionId,
    from: &[Status],
    to: Status,
    error: Option<&str>,
    result: Option<FileId>,
    now: &str,
) -> Result<bool, StoreError> {
    let job = match find(conn, id)? {
        Some(job) if from.contains(&job.status) => job,
        _ => return Ok(false),
    };
    let progress = if to == Status::Succeeded {
        100
    } else {
        job.progress
    };
    conn.prepare_cached(
        "UPDATE conversions SET status = ?2, error = ?3, result_file_id = ?4, progress = ?5,
                master_sealed_dek = NULL, updated_at = ?6, finished_at = ?6
         WHERE id = ?1",
    )?
    .execute(params![id, to.as_str(), error, result, progress, now])?;
    Ok(true)
}

/// Moves a running job's progress (0 to 100).
pub fn set_progress(
    conn: &Connection,
    id: ConversionId,
    progress: i64,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE conversions SET progress = ?2, updated_at = ?3
         WHERE id = ?1 AND status = 'running'",
    )?
    .execute(params![id, progress.clamp(0, 100), now])?;
    Ok(())
}

/// How many of a member's jobs are unfinished: the bound on how many may wait at once.
pub fn count_unfinished_for_owner(
    conn: &Connection,
    org: OrgId,
    owner: UserId,
) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM conversions
             WHERE org_id = ?1 AND owner_id = ?2 AND status IN ('queued', 'running')",
        )?
        .query_row(params![org, owner], |row| row.get(0))?)
}
