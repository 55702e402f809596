//! Facts about the running appliance: liveness, readiness and public identity.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::blob::local::TMP_DIR;
use crate::data_dir::DataDir;
use crate::store::{Store, instance::Instance};

use super::ServiceError;

/// How long a health check waits for the database before declaring it unavailable.
pub const HEALTH_DB_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct SystemService {
    store: Store,
    instance: Instance,
    data: DataDir,
    /// The last disk probe: when it ran and whether the directories took the write.
    /// Held while a probe runs, so concurrent and repeated `/ready` calls (it needs no
    /// credentials) share one probe per [`READY_PROBE_REUSE`] instead of each costing
    /// an fsync.
    last_probe: Arc<tokio::sync::Mutex<Option<(Instant, ProbeOutcome)>>>,
    /// Set while a probe's blocking thread runs, which can outlive its timeout on a
    /// stuck disk: no second thread is started until it returns.
    probing: Arc<AtomicBool>,
    /// Whether blobs go to `<data>/blobs` (its write area is probed too); not with an
    /// object store (docs/storage.md), whose checks are `doctor`'s.
    local_blobs: bool,
}

/// What a disk probe found: nothing wrong, or the message of the 503.
type ProbeOutcome = Result<(), &'static str>;

/// How long one disk probe's result answers `/ready` calls.
pub const READY_PROBE_REUSE: Duration = Duration::from_secs(1);

/// How long a readiness check waits for the data directory to take a durable write.
pub const READY_DISK_TIMEOUT: Duration = Duration::from_secs(2);

impl SystemService {
    pub fn new(store: Store, instance: Instance, data: DataDir) -> Self {
        Self {
            store,
            instance,
            data,
            last_probe: Arc::default(),
            probing: Arc::default(),
            local_blobs: true,
        }
    }

    /// Blobs are not on local disk (`storage.backend = "s3"`): `/ready` probes only the
    /// uploads directory.
    pub fn without_local_blobs(mut self) -> Self {
        self.local_blobs = false;
        self
    }

    /// Succeeds when the database answers a query within [`HEALTH_DB_TIMEOUT`].
    pub async fn health(&self) -> Result<(), ServiceError> {
        match tokio::time::timeout(HEALTH_DB_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "health check: database failed");
                Err(ServiceError::Unavailable("the database is not answering"))
            }
            Err(_) => Err(ServiceError::Unavailable("the database is not answering")),
        }
    }

    /// Succeeds when the server can do its work: the database answers (as
    /// [`Self::health`]) and the directories that take uploads and blobs accept a
    /// durable write (a probe file created, synced and removed within
    /// [`READY_DISK_TIMEOUT`]). A full disk, a read-only mount or a removed data
    /// directory make the server unready while it stays alive.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.health().await?;
        let mut last = self.last_probe.lock().await;
        let outcome = match *last {
            Some((at, outcome)) if at.elapsed() < READY_PROBE_REUSE => outcome,
            _ => {
                let outcome = self.probe_data_dir().await;
                *last = Some((Instant::now(), outcome));
                outcome
            }
        };
        outcome.map_err(ServiceError::Unavailable)
    }

    /// One durable write in each directory that takes bytes (the uploads directory and
    /// the blob store's write area, which the store empties at start and scrub skips),
    /// within [`READY_DISK_TIMEOUT`].
    async fn probe_data_dir(&self) -> ProbeOutcome {
        const STUCK: &str = "the data directory does not answer";
        if self.probing.swap(true, Ordering::AcqRel) {
            return Err(STUCK);
        }
        let mut dirs = vec![self.data.uploads()];
        if self.local_blobs {
            dirs.push(self.data.blobs().join(TMP_DIR));
        }
        let probing = self.probing.clone();
        let probe = tokio::task::spawn_blocking(move || {
            let outcome = dirs.iter().try_for_each(|dir| probe_durable_write(dir));
            probing.store(false, Ordering::Release);
            outcome
        });
        match tokio::time::timeout(READY_DISK_TIMEOUT, probe).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(err))) => {
                tracing::warn!(error = %err, "readiness check: the data directory refused a write");
                Err("the data directory does not accept writes")
            }
            Ok(Err(_)) | Err(_) => Err(STUCK),
        }
    }

    pub fn instance(&self) -> &Instance {
        &self.instance
    }
}

/// Creates, syncs and removes a uniquely named file in `dir`.
fn probe_durable_write(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(format!(".ready-{}", uuid::Uuid::now_v7()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut file| {
            file.write_all(b"ready")?;
            file.sync_all()
        });
    let removed = std::fs::remove_file(&path);
    written?;
    removed
}
