//! SQLite persistence: the pool, per-connection pragmas, migrations, and one module per
//! aggregate with owner-scoped queries. This is the only place SQL lives.
//!
//! rusqlite is blocking, so every query runs on tokio's blocking pool via [`Store::call`],
//! behind a semaphore sized to the pool so waiting callers queue in async land instead of
//! occupying blocking threads.

mod migrations;

pub mod api_keys;
pub mod audit;
pub mod events;
pub mod groups;
pub mod idempotency;
pub mod instance;
pub mod invites;
pub mod organizations;
pub mod password_resets;
pub mod roles;
pub mod sessions;
pub mod setup;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use tokio::sync::Semaphore;

pub use migrations::{LATEST_SCHEMA_VERSION, schema_version};

/// Failures of the storage layer. Messages are for logs and operators, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
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

/// Options for opening the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub busy_timeout: Duration,
}

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool<SqliteConnectionManager>,
    permits: Arc<Semaphore>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// Blocking: call before the server starts, or from a blocking context.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let busy_ms = options.busy_timeout.as_millis();
        // WAL mode is a property of the database file: set it once, before the pool opens
        // its connections concurrently (switching modes needs an exclusive lock).
        {
            let conn = Connection::open(path)?;
            conn.busy_timeout(options.busy_timeout)?;
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(
                    mode,
                    "SQLite refused WAL mode; durability is kept, concurrency is not"
                );
            }
        }
        let manager = SqliteConnectionManager::file(path).with_init(move |conn| {
            conn.execute_batch(&format!(
                "PRAGMA busy_timeout = {busy_ms};
                 PRAGMA synchronous = FULL;
                 PRAGMA foreign_keys = ON;"
            ))
        });
        let pool = Pool::builder()
            .max_size(options.max_connections)
            .connection_timeout(Duration::from_secs(30))
            .build(manager)?;
        {
            let mut conn = pool.get()?;
            migrations::run(&mut conn, path)?;
        }
        Ok(Self {
            pool,
            permits: Arc::new(Semaphore::new(options.max_connections as usize)),
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Task("store is closed".into()))?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn: PooledConnection<_> = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` on the calling thread. Only for start-up and CLI commands, which are not
    /// on the async runtime; request handling uses [`Store::call`].
    pub fn call_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.get()?;
        f(&mut conn)
    }

    /// Answers whether the database can be read: a query that takes a read lock and
    /// touches a table, so a locked or unreadable file fails it.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call(|conn| {
            conn.query_row("SELECT count(*) FROM instance", [], |row| {
                row.get::<_, i64>(0)
            })?;
            Ok(())
        })
        .await
    }

    /// Closes the store for shutdown: refuses new calls, waits for running ones, and
    /// checkpoints the WAL into the main file so the database is whole on its own.
    pub async fn close(&self) -> Result<(), StoreError> {
        let permits = self.pool.max_size();
        let all = self
            .permits
            .acquire_many(permits)
            .await
            .map_err(|_| StoreError::Task("store already closed".into()))?;
        let pool = self.pool.clone();
        let result = tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok::<_, StoreError>(())
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
        all.forget();
        self.permits.close();
        result
    }
}
