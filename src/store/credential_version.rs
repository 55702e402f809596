//! Reading the credential version (migration 0019) fast enough to do on every request.
//!
//! `PRAGMA data_version` on a connection changes only when another connection has
//! committed since that connection last looked; reading it touches the shared WAL index,
//! not the disk. So each watching connection remembers the version it last read together
//! with the data version it read it at, and reads the row again only when something was
//! committed in between. The connections are read-only and kept in a small pool: a caller
//! takes one, so concurrent requests do not queue behind one lock.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{CachedQuery, StoreError};

/// Watching connections kept for reuse; more are opened while all are in use and closed
/// again beyond this count.
const POOL: usize = 8;

pub(super) struct Watch {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Watcher>>,
}

struct Watcher {
    conn: Connection,
    /// The `data_version` and credential version this connection read last.
    seen: Option<(i64, i64)>,
}

impl Watch {
    pub(super) fn new(path: &Path, busy_timeout: Duration) -> Self {
        Self {
            path: path.to_owned(),
            busy_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The credential version as committed now.
    pub(super) fn read(&self) -> Result<i64, StoreError> {
        let taken = self.lock().pop();
        let mut watcher = match taken {
            Some(watcher) => watcher,
            None => self.open()?,
        };
        let version = watcher.read()?;
        let mut idle = self.lock();
        if idle.len() < POOL {
            idle.push(watcher);
        }
        Ok(version)
    }

    fn open(&self) -> Result<Watcher, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        Ok(Watcher { conn, seen: None })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Watcher>> {
        self.idle
            .lock()
            .expect("the watcher pool is never poisoned")
    }
}

impl Watcher {
    fn read(&mut self) -> Result<i64, StoreError> {
        let data_version: i64 = self
            .conn
            .query_row_cached("PRAGMA data_version", [], |row| row.get(0))?;
        if let Some((seen_at, version)) = self.seen
            && seen_at == data_version
        {
            return Ok(version);
        }
        // Read after the data version: a commit in between makes the next call read again,
        // never one reuse a version older than what is committed.
        let version: i64 = self.conn.query_row_cached(
            "SELECT n FROM credential_version WHERE id = 1",
            [],
            |row| row.get(0),
        )?;
        self.seen = Some((data_version, version));
        Ok(version)
    }
}
