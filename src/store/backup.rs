//! The database side of `sealbox backup` and `sealbox restore`: a consistent copy of the
//! live database through SQLite's online backup API (never a file copy, which of a WAL
//! database can be torn), and the checks a copy must pass before it is trusted.
//!
//! The copy is one backup step over every page, so it is one read transaction of the
//! source: a snapshot of a single instant, taken while the server keeps writing (in WAL
//! mode readers do not block the writer, nor it them).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::files::{self, StoredBlob};
use super::migrations::schema_version;
use super::{LATEST_SCHEMA_VERSION, StoreError};

/// How long a snapshot waits for the source's read lock (held off only while SQLite
/// recovers a WAL after a crash, or by an exclusive writer).
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// What a database (a snapshot, or one being restored) holds, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSummary {
    pub schema_version: i64,
    /// Rows of every table, by name.
    pub table_rows: BTreeMap<String, u64>,
    /// Every file's blob with its size and BLAKE3.
    pub blobs: Vec<StoredBlob>,
}

/// Why a database cannot be snapshotted or trusted.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "schema version {found} is newer than this sealbox supports ({supported}); use the \
         sealbox release that wrote it"
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error("the database fails SQLite's integrity check: {0}")]
    Corrupt(String),
    #[error("the database stayed locked for {}s", LOCK_WAIT.as_secs())]
    Locked,
}

impl From<rusqlite::Error> for SnapshotError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sqlite(err))
    }
}

/// Copies the live database at `source` into a new file `target` with the online backup
/// API, leaves the copy in rollback-journal mode (one self-contained file), checks it and
/// fsyncs it. The source is opened read-only and never written. Returns what the copy
/// holds.
pub fn snapshot(source: &Path, target: &Path) -> Result<DatabaseSummary, SnapshotError> {
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    from.busy_timeout(LOCK_WAIT)?;
    // Refuse before copying: a newer schema is one this binary cannot check or restore.
    refuse_newer(schema_version(&from)?)?;
    // Created first, mode 0600: the copy is as private as the live database.
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(target)
            .map_err(|e| StoreError::Task(format!("{}: {e}", target.display())))?;
    }
    let mut to = Connection::open(target)?;
    {
        let backup = Backup::new(&from, &mut to)?;
        let started = Instant::now();
        loop {
            // Every page in one step: one read transaction, one instant.
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => return Err(SnapshotError::Locked),
            }
        }
    }
    drop(from);
    // The copy says WAL like its source; a backup is one file, so switch it to a rollback
    // journal (the server sets WAL again when it opens a restored database).
    let _: String = to.query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))?;
    let summary = check(&to)?;
    to.close().map_err(|(_, e)| e)?;
    std::fs::File::open(target)
        .and_then(|file| file.sync_all())
        .map_err(|e| StoreError::Task(format!("{}: {e}", target.display())))?;
    Ok(summary)
}

/// Opens a database copy read-only and checks it: SQLite's integrity check, a schema this
/// binary understands; returns what it holds.
pub fn inspect(path: &Path) -> Result<DatabaseSummary, SnapshotError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    check(&conn)
}

/// Runs `f` on a read-only connection to the database copy at `path` (for checks that
/// live in services, such as the audit chains).
pub fn with_read_only<T>(
    path: &Path,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    f(&conn)
}

fn refuse_newer(found: i64) -> Result<(), SnapshotError> {
    if found > LATEST_SCHEMA_VERSION {
        return Err(SnapshotError::NewerSchema {
            found,
            supported: LATEST_SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn check(conn: &Connection) -> Result<DatabaseSummary, SnapshotError> {
    let version = schema_version(conn)?;
    refuse_newer(version)?;
    let lines: Vec<String> = conn
        .prepare("PRAGMA integrity_check(20)")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if lines != ["ok"] {
        return Err(SnapshotError::Corrupt(lines.join("; ")));
    }
    let tx = conn.unchecked_transaction()?;
    let names: Vec<String> = tx
        .prepare(
            "SELECT name FROM sqlite_schema
             WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut table_rows = BTreeMap::new();
    for name in names {
        // Table names come from the schema itself; quoted as identifiers.
        let sql = format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\""));
        let rows: i64 = tx.query_row(&sql, [], |row| row.get(0))?;
        table_rows.insert(name, u64::try_from(rows).unwrap_or(0));
    }
    // Schema 10 brought files; an older database has no blobs to list.
    let blobs = if table_rows.contains_key("files") {
        files::all_blobs(&tx)?
    } else {
        Vec::new()
    };
    Ok(DatabaseSummary {
        schema_version: version,
        table_rows,
        blobs,
    })
}
