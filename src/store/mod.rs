//! SQLite persistence: the database threads, per-connection pragmas, migrations, and one
//! module per aggregate with owner-scoped queries. This is the only place SQL lives.
//!
//! rusqlite is blocking, so every query runs on a dedicated database thread via
//! [`Store::call`]; async callers wait for the answer without occupying a thread. Write
//! transactions go to one writer thread that commits the jobs queued together in one
//! transaction (group commit, see [`Store::call_write`]).

mod credential_version;
mod migrations;

pub mod api_keys;
pub mod audit;
pub mod backup;
pub mod billing;
pub mod conversions;
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
pub mod plans;
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// What a write job decided about its changes.
#[derive(Debug)]
pub enum Write<T> {
    /// Keep them: they commit with the job's batch, and `T` is delivered once that commit
    /// is on disk.
    Commit(T),
    /// Undo them (the job's savepoint is rolled back); `T` is delivered after the batch
    /// commits all the same, so nobody acts on what it read before that is durable.
    Rollback(T),
}

impl<T> Write<T> {
    fn keeps(&self) -> bool {
        matches!(self, Write::Commit(_))
    }

    fn into_inner(self) -> T {
        match self {
            Write::Commit(value) | Write::Rollback(value) => value,
        }
    }
}

/// A write job for the writer thread: runs inside the batch's transaction (under its own
/// savepoint) and says whether to keep its changes; `finish` delivers its outcome once
/// the batch's commit is settled (`Err`: the commit failed, nothing of the batch is kept).
/// Given no connection, the job does not run and `finish` answers with the error.
type WriteJob = Box<dyn FnOnce(Option<&Connection>) -> Ran + Send>;

/// Delivers a job's outcome once its batch's commit is settled (`Err`: the commit failed).
type Finish = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

struct Ran {
    keep: bool,
    finish: Finish,
}

enum WriteMessage {
    Run(WriteJob),
    Stop,
}

/// At most this many write jobs share one commit: a batch holds every caller in it until
/// its fsync, so it must not grow without end under a flood of writers.
const MAX_BATCH_JOBS: usize = 64;
/// A batch takes no further job once its jobs have run this long: latency stays bounded
/// when some jobs are slow (a large delete), at the cost of one more fsync.
const MAX_BATCH_TIME: Duration = Duration::from_millis(10);

/// The SQLite store: `max_connections` reader threads, each owning one connection and
/// taking jobs from one queue, and one writer thread that runs write transactions in
/// batches (group commit). Cheap to clone.
///
/// Dedicated threads rather than `spawn_blocking` per call: under load a thread takes
/// the next job without going to sleep, where handing each call to a pooled blocking
/// thread cost two thread wake-ups (measured: most of the CPU time of an authenticated
/// request was the scheduler, not SQLite). The threads end when the last clone is
/// dropped or the store is closed.
#[derive(Clone)]
pub struct Store {
    jobs: crossbeam_channel::Sender<Message>,
    writes: crossbeam_channel::Sender<WriteMessage>,
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    /// Reads the credential version (see [`Store::credential_version`]).
    credentials: credential_version::Watch,
    /// Transactions the writer thread committed (one per batch).
    commits: Arc<AtomicU64>,
    threads: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    closed: AtomicBool,
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
        let spawn = |name: String, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(body)
                .map_err(|e| StoreError::Task(format!("could not start a database thread: {e}")))
        };
        for n in 0..options.max_connections.max(1) {
            let mut conn = open_connection(path, options)?;
            let queue = queue.clone();
            threads.push(spawn(
                format!("sealbox-db-{n}"),
                Box::new(move || {
                    while let Ok(Message::Run(job)) = queue.recv() {
                        job(&mut conn);
                    }
                }),
            )?);
        }
        let (writes, write_queue) = crossbeam_channel::unbounded::<WriteMessage>();
        let conn = open_connection(path, options)?;
        let commits = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            conn,
            commits: commits.clone(),
        };
        threads.push(spawn(
            "sealbox-db-writer".into(),
            Box::new(move || run_writer(writer, write_queue)),
        )?);
        Ok(Self {
            jobs,
            writes,
            shared: Arc::new(Shared {
                path: path.to_owned(),
                credentials: credential_version::Watch::new(path, options.busy_timeout),
                commits,
                threads: std::sync::Mutex::new(threads),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// A number that moves with every committed change, by any connection of any process,
    /// to the rows that decide who a credential belongs to and what it may do (triggers of
    /// migration 0019 move it in the changing transaction). A cache of credential checks
    /// trusts an entry only while this is the value read before the check. Cheap when
    /// nothing was committed since the last call: one `PRAGMA data_version`, no disk read.
    pub fn credential_version(&self) -> Result<i64, StoreError> {
        self.shared.credentials.read()
    }

    /// How many transactions the writer has committed: fewer than the write calls
    /// answered when calls shared commits.
    pub fn write_commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Acquire)
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

    /// Runs `f` in a write transaction on the writer thread and answers once its changes
    /// are on disk.
    ///
    /// Group commit: the writer runs the jobs queued together (at most [`MAX_BATCH_JOBS`],
    /// for at most [`MAX_BATCH_TIME`]) one after another in one IMMEDIATE transaction,
    /// each under its own savepoint, and commits them with one fsync. A job that returns
    /// [`Write::Rollback`] or an error, or panics, has its savepoint rolled back: the
    /// others keep their changes. Every job is answered only after the shared commit
    /// succeeded (or with its error if it failed, in which case nothing of the batch was
    /// kept). Jobs run in queue order, so each sees the changes of the jobs before it as a
    /// later transaction would; the audit chain and the outbox stay in commit order.
    pub async fn call_write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<Write<T>, StoreError> + Send + 'static,
    {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Task("store is closed".into()));
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued = Instant::now();
        let job: WriteJob = Box::new(move |conn| {
            let Some(conn) = conn else {
                // Not run: answered with the batch's error, like a job whose changes it
                // would have kept.
                return Ran {
                    keep: true,
                    finish: Box::new(move |failed| {
                        let _ = reply.send(Err(failed.map_or_else(StoreError::duplicate, |()| {
                            StoreError::Task("the write job did not run".into())
                        })));
                    }),
                };
            };
            crate::metrics::db_waited("writer", queued.elapsed());
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| Err(StoreError::Task("a database call panicked".into())));
            let keep = outcome.as_ref().is_ok_and(Write::keeps);
            Ran {
                keep,
                finish: Box::new(move |committed| {
                    let _ = reply.send(match committed {
                        Ok(()) => outcome.map(Write::into_inner),
                        Err(failed) => Err(failed.duplicate()),
                    });
                }),
            }
        });
        self.writes
            .send(WriteMessage::Run(job))
            .map_err(|_| StoreError::Task("store is closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Task("the database writer stopped".into()))?
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
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Task("store is closed".into()));
        }
        let queued = Instant::now();
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
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Err(StoreError::Task("store already closed".into()));
        }
        let threads = std::mem::take(
            &mut *self
                .shared
                .threads
                .lock()
                .expect("the thread list is never poisoned"),
        );
        // One reader thread fewer than the list: the last one is the writer.
        for _ in 1..threads.len() {
            let _ = self.jobs.send(Message::Stop);
        }
        let _ = self.writes.send(WriteMessage::Stop);
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

impl StoreError {
    /// A copy of a batch's error for each of its callers: SQLite failures keep their code
    /// (so `is_busy` still answers), others their message.
    fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, message)) => {
                StoreError::Sqlite(rusqlite::Error::SqliteFailure(*e, message.clone()))
            }
            StoreError::Conflict => StoreError::Conflict,
            other => StoreError::Task(other.to_string()),
        }
    }
}

/// The writer thread's state: its connection and the count of its commits.
struct Writer {
    conn: Connection,
    commits: Arc<AtomicU64>,
}

/// Runs write jobs until [`Store::close`] or the last `Store` clone is gone, a batch (one
/// transaction, one commit) at a time.
fn run_writer(writer: Writer, queue: crossbeam_channel::Receiver<WriteMessage>) {
    while let Ok(WriteMessage::Run(first)) = queue.recv() {
        if writer.batch(first, &queue) {
            break;
        }
    }
}

impl Writer {
    /// Runs `first` and the jobs queued behind it (within [`MAX_BATCH_JOBS`] and
    /// [`MAX_BATCH_TIME`]) in one transaction, commits, then answers each. Returns whether
    /// a `Stop` came up in the queue: the batch finished, nothing behind it is run.
    fn batch(&self, first: WriteJob, queue: &crossbeam_channel::Receiver<WriteMessage>) -> bool {
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            // No transaction (another process held the lock past busy_timeout): this job
            // is answered with the error and the next one tries again.
            let failed = StoreError::from(e);
            (first(None).finish)(Err(&failed));
            return false;
        }
        let started = Instant::now();
        let mut ran: Vec<Ran> = Vec::new();
        let mut next = Some(first);
        let mut stop = false;
        let mut lost = None;
        while let Some(job) = next.take() {
            let (done, settled) = self.run_job(job);
            ran.push(done);
            if let Err(e) = settled {
                lost = Some(e);
                break;
            }
            if ran.len() >= MAX_BATCH_JOBS || started.elapsed() >= MAX_BATCH_TIME {
                break;
            }
            match queue.try_recv() {
                Ok(WriteMessage::Run(job)) => next = Some(job),
                Ok(WriteMessage::Stop) => stop = true,
                Err(_) => {}
            }
        }
        let outcome = match lost {
            Some(e) => Err(e),
            None => self.conn.execute_batch("COMMIT").map_err(StoreError::from),
        };
        if outcome.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if outcome.is_ok() {
            self.commits.fetch_add(1, Ordering::AcqRel);
        }
        crate::metrics::db_batch(ran.len());
        for done in ran {
            // A job whose changes were undone changed nothing: its own answer stands.
            let committed = match (&outcome, done.keep) {
                (Err(e), true) => Err(e),
                _ => Ok(()),
            };
            (done.finish)(committed);
        }
        stop
    }

    /// Runs one job under its own savepoint and keeps or undoes its changes. `Err`: the
    /// batch's transaction is gone (SQLite rolls a transaction back by itself on some
    /// failures, such as a full disk) or could not be settled.
    fn run_job(&self, job: WriteJob) -> (Ran, Result<(), StoreError>) {
        if let Err(e) = self.conn.execute_batch("SAVEPOINT sbx_job") {
            return (job(None), Err(e.into()));
        }
        let done = job(Some(&self.conn));
        if self.conn.is_autocommit() {
            return (
                done,
                Err(StoreError::Task(
                    "a failed statement rolled back the batch's transaction".into(),
                )),
            );
        }
        let settle = if done.keep {
            "RELEASE sbx_job"
        } else {
            "ROLLBACK TO sbx_job; RELEASE sbx_job"
        };
        let settled = self.conn.execute_batch(settle).map_err(StoreError::from);
        (done, settled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Store {
        let store = Store::open(
            &dir.join("test.db"),
            &StoreOptions {
                max_connections: 2,
                busy_timeout: Duration::from_millis(200),
            },
        )
        .unwrap();
        store
            .call_blocking(|conn| {
                conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")?;
                Ok(())
            })
            .unwrap();
        store
    }

    fn insert(conn: &Connection, k: i64) -> Result<(), StoreError> {
        conn.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [k])?;
        Ok(())
    }

    async fn keys(store: &Store) -> Vec<i64> {
        store
            .call(|conn| {
                let mut stmt = conn.prepare("SELECT k FROM t ORDER BY k")?;
                let keys = stmt.query_map([], |row| row.get(0))?;
                Ok(keys.collect::<Result<Vec<i64>, _>>()?)
            })
            .await
            .unwrap()
    }

    /// Holds the writer in a job until the returned sender fires, so the jobs queued
    /// meanwhile run together in the next batch.
    fn hold_writer(store: &Store) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let store = store.clone();
        let holder = tokio::spawn(async move {
            store
                .call_write(move |_| {
                    started.send(()).unwrap();
                    held.recv().unwrap();
                    // Past the batch's time limit: this job commits alone.
                    std::thread::sleep(MAX_BATCH_TIME);
                    Ok(Write::Commit(()))
                })
                .await
                .unwrap();
        });
        running.recv().unwrap();
        (release, holder)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_is_rolled_back_and_the_rest_of_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let (release, holder) = hold_writer(&store);
        let commits = store.write_commits();

        type Job = Box<dyn FnOnce(&Connection) -> Result<Write<i64>, StoreError> + Send>;
        let jobs: Vec<Job> = vec![
            Box::new(|c| insert(c, 1).map(|()| Write::Commit(1))),
            Box::new(|c| {
                insert(c, 2)?;
                // A UNIQUE violation: an error of this job alone.
                insert(c, 1)?;
                Ok(Write::Commit(2))
            }),
            Box::new(|c| {
                insert(c, 3)?;
                Ok(Write::Rollback(3))
            }),
            Box::new(|c| {
                // Sees the jobs before it in the batch, as a later transaction would.
                let seen: i64 = c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
                insert(c, 5)?;
                Ok(Write::Commit(seen))
            }),
            Box::new(|c| {
                insert(c, 4)?;
                panic!("a job that panics after writing");
            }),
        ];
        // Queued one at a time, in this order, behind the held writer: spawned tasks
        // reach the queue in any order otherwise.
        let mut calls = Vec::new();
        for job in jobs {
            let queued = store.writes.len();
            let caller = store.clone();
            calls.push(tokio::spawn(async move { caller.call_write(job).await }));
            while store.writes.len() == queued {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        release.send(()).unwrap();
        holder.await.unwrap();

        let mut outcomes = Vec::new();
        for call in calls {
            outcomes.push(call.await.unwrap());
        }
        assert_eq!(outcomes[0].as_ref().unwrap(), &1);
        assert!(
            matches!(outcomes[1], Err(StoreError::Sqlite(_))),
            "{:?}",
            outcomes[1]
        );
        assert_eq!(outcomes[2].as_ref().unwrap(), &3);
        assert_eq!(outcomes[3].as_ref().unwrap(), &1, "sees job 1's row only");
        assert!(
            matches!(outcomes[4], Err(StoreError::Task(_))),
            "{:?}",
            outcomes[4]
        );
        assert_eq!(keys(&store).await, [1, 5]);
        // The five jobs shared one commit; the held job had its own.
        assert_eq!(store.write_commits(), commits + 2);
        store.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_are_bounded_and_every_caller_hears_after_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let (release, holder) = hold_writer(&store);
        let commits = store.write_commits();
        let calls: Vec<_> = (0..(MAX_BATCH_JOBS as i64 * 2 + 1))
            .map(|k| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .call_write(move |c| insert(c, k).map(|()| Write::Commit(k)))
                        .await
                })
            })
            .collect();
        while store.writes.len() < calls.len() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        release.send(()).unwrap();
        holder.await.unwrap();
        for call in calls {
            let k = call.await.unwrap().unwrap();
            // Answered only once the row is committed: another connection reads it.
            let found: i64 = store
                .call(move |c| {
                    Ok(c.query_row("SELECT count(*) FROM t WHERE k = ?1", [k], |r| r.get(0))?)
                })
                .await
                .unwrap();
            assert_eq!(found, 1, "row {k}");
        }
        // 129 jobs at no more than 64 a batch: three commits or more (more if a batch ran
        // into its time limit on a loaded machine), far fewer than one each.
        let batches = store.write_commits() - commits - 1;
        assert!((3..=10).contains(&batches), "{batches} commits");
        store.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lock_held_by_another_process_fails_one_job_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let other = Connection::open(dir.path().join("test.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let refused = store
            .call_write(|c| insert(c, 1).map(|()| Write::Commit(())))
            .await
            .unwrap_err();
        assert!(refused.is_busy(), "{refused:?}");
        other.execute_batch("ROLLBACK").unwrap();
        store
            .call_write(|c| insert(c, 2).map(|()| Write::Commit(())))
            .await
            .unwrap();
        assert_eq!(keys(&store).await, [2]);
        store.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_credential_version_moves_with_credential_rows_from_any_connection() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let before = store.credential_version().unwrap();
        store
            .call_write(|c| insert(c, 1).map(|()| Write::Commit(())))
            .await
            .unwrap();
        assert_eq!(
            store.credential_version().unwrap(),
            before,
            "t is no credential table"
        );
        let org = crate::ids::OrgId::new();
        store
            .call_write(move |c| {
                organizations::insert(c, org, "O", "o", "2026-01-01T00:00:00Z")?;
                Ok(Write::Commit(()))
            })
            .await
            .unwrap();
        let after_insert = store.credential_version().unwrap();
        assert!(after_insert > before);
        // Rolled back: nothing moved.
        store
            .call_write(move |c| {
                c.execute("UPDATE organizations SET name = 'P'", [])?;
                Ok(Write::Rollback(()))
            })
            .await
            .unwrap();
        assert_eq!(store.credential_version().unwrap(), after_insert);
        // Another connection, as `sealbox admin` or the sqlite3 shell would be.
        Connection::open(dir.path().join("test.db"))
            .unwrap()
            .execute("UPDATE organizations SET status = 'suspended'", [])
            .unwrap();
        assert!(store.credential_version().unwrap() > after_insert);
        store.close().await.unwrap();
    }
}
