//! SQLite persistence: the database threads, per-connection pragmas, migrations, and one
//! module per aggregate with owner-scoped queries. This is the only place SQL lives.
//!
//! rusqlite is blocking, so every query runs on a dedicated database thread via
//! [`Store::call`]; async callers wait for the answer without occupying a thread.

mod migrations;

pub mod api_keys;
pub mod audit;
pub mod backup;
pub mod download_tokens;
pub mod events;
pub mod files;
pub mod groups;
pub mod idempotency;
pub mod identities;
pub mod instance;
pub mod invites;
pub mod kv;
pub mod messaging;
pub mod notifications;
pub mod organizations;
pub mod password_resets;
pub mod recovery;
pub mod roles;
pub mod sessions;
pub mod setup;
pub mod shares;
pub mod status;
pub mod transfers;
pub mod user_keys;
pub mod users;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

pub use migrations::{LATEST_SCHEMA_VERSION, MigrationName, schema_version};

/// Failures of the storage layer. Messages are for logs and operators, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database at {path} has schema version {found}, newer than this sealbox supports \
         ({supported}); run the newer sealbox release that wrote it, or restore a backup"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("database task failed: {0}")]
    Task(String),
    /// A uniqueness constraint refused the write (a duplicate email, a second membership).
    #[error("conflicts with an existing record")]
    Conflict,
}

/// Opens one connection with the pragmas every connection needs.
fn open_connection(path: &Path, options: &StoreOptions) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(options.busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    // secure_delete = FAST zeroes deleted and overwritten content inside b-tree pages when
    // that costs no extra I/O: a key copy dropped on purpose (a password transfer's
    // master-sealed DEK at finalize) does not linger in the page it was stored in.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = FAST;",
    )?;
    Ok(conn)
}

/// Prepared statements each database connection keeps, so the queries every request runs
/// (credential checks, membership) are parsed once per connection, not once per call.
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// `query_row` through the connection's statement cache. Every store query uses this or
/// `prepare_cached`: parsing SQL costs as much as running these small lookups.
pub(crate) trait CachedQuery {
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, map: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl CachedQuery for Connection {
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, map: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, map)
    }
}

impl StoreError {
    /// The database stayed locked by another writer (another process, such as a CLI
    /// command) past `busy_timeout`: worth retrying, not a fault.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// Maps a UNIQUE or PRIMARY KEY violation to [`StoreError::Conflict`].
pub(crate) fn conflict_on_unique(err: rusqlite::Error) -> StoreError {
    use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
    match &err {
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict
        }
        _ => StoreError::Sqlite(err),
    }
}

/// The migrations the existing database at `path` still needs (`sealbox migrate
/// --dry-run`); opens it read-only and changes nothing. Refuses a newer database.
pub fn pending_migrations(path: &Path) -> Result<Vec<MigrationName>, StoreError> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    migrations::pending(&conn, path)
}

/// Applies the pending migrations of the existing database at `path`, each in its own
/// transaction, and returns them (`sealbox migrate`). Never creates a database.
pub fn migrate(path: &Path, options: &StoreOptions) -> Result<Vec<MigrationName>, StoreError> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    drop(conn);
    let mut conn = open_connection(path, options)?;
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    migrations::run(&mut conn, path)
}

/// Options for opening the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub busy_timeout: Duration,
}

/// Work for a database thread: a closure over its connection.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum Message {
    Run(Job),
    /// Finish: sent once per thread by [`Store::close`], behind every job queued before.
    Stop,
}

/// The SQLite store: `max_connections` database threads, each owning one connection,
/// taking jobs from one queue. Cheap to clone.
///
/// Dedicated threads rather than `spawn_blocking` per call: under load a thread takes
/// the next job without going to sleep, where handing each call to a pooled blocking
/// thread cost two thread wake-ups (measured: most of the CPU time of an authenticated
/// request was the scheduler, not SQLite). The threads end when the last clone is
/// dropped or the store is closed.
#[derive(Clone)]
pub struct Store {
    jobs: crossbeam_channel::Sender<Message>,
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    /// One write transaction at a time, queued fairly in async land: SQLite allows one
    /// writer, and connections that race for its lock back off in sleeps of several
    /// milliseconds (and fail after `busy_timeout`), which under load cost more than the
    /// commits themselves.
    writer: tokio::sync::Semaphore,
    threads: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, brings its schema up to date and
    /// starts the database threads. Blocking: call before the server starts, or from a
    /// blocking context.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        // WAL mode is a property of the database file: set it once, before the threads
        // open their connections concurrently (switching modes needs an exclusive lock).
        {
            let mut conn = open_connection(path, options)?;
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(
                    mode,
                    "SQLite refused WAL mode; durability is kept, concurrency is not"
                );
            }
            migrations::run(&mut conn, path)?;
        }
        let (jobs, queue) = crossbeam_channel::unbounded::<Message>();
        let mut threads = Vec::new();
        for n in 0..options.max_connections.max(1) {
            let mut conn = open_connection(path, options)?;
            let queue = queue.clone();
            let thread = std::thread::Builder::new()
                .name(format!("sealbox-db-{n}"))
                .spawn(move || {
                    while let Ok(Message::Run(job)) = queue.recv() {
                        job(&mut conn);
                    }
                })
                .map_err(|e| StoreError::Task(format!("could not start a database thread: {e}")))?;
            threads.push(thread);
        }
        Ok(Self {
            jobs,
            shared: Arc::new(Shared {
                path: path.to_owned(),
                writer: tokio::sync::Semaphore::new(1),
                threads: std::sync::Mutex::new(threads),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Runs `f` on a database thread and waits for it without blocking the runtime.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(f, move |outcome| {
            let _ = reply.send(outcome);
        })?;
        answer
            .await
            .map_err(|_| StoreError::Task("a database thread stopped".into()))?
    }

    /// Like [`Store::call`] for a closure that writes (takes an IMMEDIATE transaction):
    /// waits its turn behind the other writers first.
    pub async fn call_write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let queued = std::time::Instant::now();
        let _turn = self
            .shared
            .writer
            .acquire()
            .await
            .map_err(|_| StoreError::Task("store is closed".into()))?;
        crate::metrics::db_waited("writer", queued.elapsed());
        self.call(f).await
    }

    /// Runs `f` on a database thread and blocks until it is done. Only for start-up and
    /// CLI commands, which are not on the async runtime; request handling uses
    /// [`Store::call`].
    pub fn call_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.submit(f, move |outcome| {
            let _ = reply.send(outcome);
        })?;
        answer
            .recv()
            .map_err(|_| StoreError::Task("a database thread stopped".into()))?
    }

    /// Queues `f`; `deliver` gets its outcome (a panic in `f` becomes an error, and the
    /// thread lives on: an open transaction rolled back as it unwound).
    fn submit<T, F>(
        &self,
        f: F,
        deliver: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self
            .shared
            .closed
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(StoreError::Task("store is closed".into()));
        }
        let queued = std::time::Instant::now();
        let job: Job = Box::new(move |conn| {
            // Time in the queue until a database thread took the job: the wait for a
            // connection (all threads busy).
            crate::metrics::db_waited("connection", queued.elapsed());
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| Err(StoreError::Task("a database call panicked".into())));
            deliver(outcome);
        });
        self.jobs
            .send(Message::Run(job))
            .map_err(|_| StoreError::Task("store is closed".into()))
    }

    /// Answers whether the database can be read: a query that takes a read lock and
    /// touches a table, so a locked or unreadable file fails it.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call(|conn| {
            conn.query_row_cached("SELECT count(*) FROM instance", [], |row| {
                row.get::<_, i64>(0)
            })?;
            Ok(())
        })
        .await
    }

    /// Closes the store for shutdown: refuses new calls, lets every queued one finish,
    /// stops the database threads and checkpoints the WAL into the main file so the
    /// database is whole on its own.
    pub async fn close(&self) -> Result<(), StoreError> {
        if self
            .shared
            .closed
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return Err(StoreError::Task("store already closed".into()));
        }
        let threads = std::mem::take(
            &mut *self
                .shared
                .threads
                .lock()
                .expect("the thread list is never poisoned"),
        );
        for _ in &threads {
            let _ = self.jobs.send(Message::Stop);
        }
        let path = self.shared.path.clone();
        tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
            let conn = Connection::open(&path)?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok::<_, StoreError>(())
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}
