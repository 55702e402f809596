//! Backups (`sealbox backup`, `backup verify`, `restore`; see `docs/operations.md`).
//!
//! A backup directory holds snapshots that share one content-addressed blob store:
//!
//! ```text
//! DEST/blobs/<hh>/<blake3>          one file per distinct blob, named by its BLAKE3
//! DEST/snapshots/<name>/sealbox.db  the database, copied by SQLite's online backup API
//! DEST/snapshots/<name>/config.toml the configuration file in use (when there is one)
//! DEST/snapshots/<name>/tls/...     the self-signed certificate and key (when present)
//! DEST/snapshots/<name>/master.key  only with --include-master-key
//! DEST/snapshots/<name>/manifest.json         schema version, counts, BLAKE3 of everything
//! DEST/snapshots/<name>/manifest.json.blake3  BLAKE3 of the manifest itself
//! ```
//!
//! Blobs never change once written (a new version of a file is a new blob), so a blob an
//! earlier snapshot already copied is not copied again: backups after the first copy
//! only new blobs. Every write is durable (temporary file, fsync, rename, directory
//! fsync) and a snapshot appears under its name only once complete. Restores verify
//! everything before the target directory is touched, build the new data directory
//! beside it and move it into place in one rename.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::blob::BlobKey;
use crate::blob::local::blob_path;
use crate::crypto::master_key::MasterKey;
use crate::data_dir::{DIR_MODE, DataDir, SECRET_FILE_MODE, fsync_dir, write_atomic};
use crate::store::backup::{self as snapshot_db, DatabaseSummary, SnapshotError};
use crate::store::files::StoredBlob;
use crate::store::{LATEST_SCHEMA_VERSION, StoreError};

/// The manifest's `format`: changes only if the layout above does.
pub const FORMAT: &str = "sealbox-backup/1";
pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_SUM: &str = "manifest.json.blake3";
pub const SNAPSHOTS: &str = "snapshots";
pub const BLOBS: &str = "blobs";
const DATABASE: &str = "sealbox.db";
const CONFIG: &str = "config.toml";
const MASTER_KEY: &str = "master.key";
const TLS_CERT: &str = "tls/cert.pem";
const TLS_KEY: &str = "tls/key.pem";
/// Where a restore leaves the backed-up configuration file, inside the data directory.
pub const RESTORED_CONFIG: &str = "config.from-backup.toml";
/// Write area of the backup's blob store (never a BLAKE3 name).
const TMP: &str = ".tmp";
/// Snapshots being written are hidden under this suffix until complete.
const PARTIAL: &str = ".partial";
const BUFFER: usize = 1024 * 1024;
/// How often a snapshot is retaken when files were deleted between the database copy and
/// the copy of their blobs.
const ATTEMPTS: usize = 5;

/// What a snapshot holds, written as `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub sealbox_version: String,
    pub schema_version: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The id of the master key the data is sealed with (public: a hash, not the key).
    pub master_key_id: Option<String>,
    pub master_key_included: bool,
    pub counts: Counts,
    /// Every file of the snapshot directory but the manifest, by relative path.
    pub files: Vec<FileEntry>,
    /// Every blob the database refers to, in file-id order.
    pub blobs: Vec<BlobEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Counts {
    /// Rows of every table of the database.
    pub tables: BTreeMap<String, u64>,
    pub blobs: u64,
    pub blob_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub blake3: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlobEntry {
    pub file_id: String,
    pub key: String,
    pub size: u64,
    pub blake3: String,
}

impl BlobEntry {
    fn of(row: &StoredBlob) -> Self {
        Self {
            file_id: row.file_id.to_string(),
            key: row.blob_key.clone(),
            size: u64::try_from(row.stored_size).unwrap_or(u64::MAX),
            blake3: row.blake3.to_ascii_lowercase(),
        }
    }
}

/// Why a backup, verification or restore stopped. Every message names the path involved
/// and, where there is one, what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("database {}: {source}", path.display())]
    Database {
        path: PathBuf,
        source: SnapshotError,
    },
    #[error(
        "blob {key} of file {file_id} is missing from the live data directory ({}); run \
         `sealbox doctor --scrub` and restore the file from an older backup",
        path.display()
    )]
    LiveBlobMissing {
        file_id: String,
        key: String,
        path: PathBuf,
    },
    #[error(
        "blob {key} of file {file_id} in the live data directory does not match its record \
         ({detail}); run `sealbox doctor --scrub`"
    )]
    LiveBlobDamaged {
        file_id: String,
        key: String,
        detail: String,
    },
    #[error("files kept being deleted while the snapshot was taken; try again")]
    Unsettled,
    #[error("{} is not a sealbox backup (no {MANIFEST}, no {SNAPSHOTS}/)", path.display())]
    NotABackup { path: PathBuf },
    #[error("{} holds no complete snapshot", path.display())]
    NoSnapshot { path: PathBuf },
    #[error("snapshot {name} not found in {}", path.display())]
    UnknownSnapshot { name: String, path: PathBuf },
    #[error("the manifest of snapshot {snapshot} is corrupted: {detail}")]
    CorruptManifest { snapshot: String, detail: String },
    #[error(
        "snapshot {snapshot} has schema version {found}, newer than this sealbox supports \
         ({LATEST_SCHEMA_VERSION}); restore it with the release that wrote it"
    )]
    NewerSchema { snapshot: String, found: i64 },
    #[error("snapshot {snapshot} is damaged:\n  {}", problems.join("\n  "))]
    Damaged {
        snapshot: String,
        problems: Vec<String>,
    },
    #[error(
        "{} is not empty; restore into an empty or new directory, or pass --force to replace \
         it (stop the server first)",
        path.display()
    )]
    TargetNotEmpty { path: PathBuf },
    #[error("{} is not a directory", path.display())]
    TargetNotADirectory { path: PathBuf },
    #[error(
        "{} holds master key {found}, but the backup was sealed with master key {expected}",
        path.display()
    )]
    WrongMasterKey {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{} is not a master key (it must hold exactly 32 bytes)", path.display())]
    BadMasterKey { path: PathBuf },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Progress reports for a terminal; every method defaults to nothing.
pub trait Progress {
    /// A step begins (such as "copying the database").
    fn stage(&self, _what: &str) {}
    /// `bytes` bytes of blobs will be read.
    fn blobs(&self, _count: usize, _bytes: u64) {}
    /// `bytes` more bytes of blobs were read.
    fn advance(&self, _bytes: u64) {}
    /// The blob phase is over.
    fn done(&self) {}
}

/// No progress reports.
pub struct Quiet;
impl Progress for Quiet {}

// ---------------------------------------------------------------------------------------
// Backup

/// What `backup` reads from the live installation.
#[derive(Debug, Clone)]
pub struct BackupSource {
    pub data: DataDir,
    /// The configuration file in use, if any.
    pub config_file: Option<PathBuf>,
    /// Where the master key is read from (`storage.master_key_file` or `<data>/master.key`).
    pub master_key_file: PathBuf,
    /// Copy the master key into the backup (whoever reads the backup can then open it).
    pub include_master_key: bool,
}

/// What a completed backup wrote.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub snapshot: PathBuf,
    pub manifest: Manifest,
    /// Blobs copied by this backup; the others were already in the backup directory.
    pub blobs_copied: usize,
    pub bytes_copied: u64,
}

/// Takes a snapshot of the (possibly running) installation into the backup directory
/// `dest`, creating it if needed.
pub fn backup(
    source: &BackupSource,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<BackupSummary, BackupError> {
    let live_db = source.data.database();
    if !live_db.is_file() {
        return Err(BackupError::Io {
            path: live_db,
            source: io::Error::new(io::ErrorKind::NotFound, "no database; is --data-dir right?"),
        });
    }
    // The key first: a backup that claims to hold it must hold it, and its id is recorded
    // so a restore can check the key an operator supplies.
    let master_key = read_master_key(&source.master_key_file)?;

    for dir in [
        dest.to_owned(),
        dest.join(SNAPSHOTS),
        dest.join(BLOBS),
        dest.join(BLOBS).join(TMP),
    ] {
        make_dir(&dir)?;
    }
    let now = OffsetDateTime::now_utc();
    let name = snapshot_name(now);
    let final_dir = dest.join(SNAPSHOTS).join(&name);
    if final_dir.exists() {
        return Err(BackupError::Io {
            path: final_dir,
            source: io::Error::new(io::ErrorKind::AlreadyExists, "snapshot exists"),
        });
    }
    let staging = dest.join(SNAPSHOTS).join(format!(".{name}{PARTIAL}"));
    let guard = RemoveOnDrop(Some(staging.clone()));
    make_dir(&staging)?;

    let db_path = staging.join(DATABASE);
    let mut copied = (0usize, 0u64);
    let mut attempt = 0;
    let summary = loop {
        attempt += 1;
        progress.stage("copying the database (SQLite online backup)");
        match fs::remove_file(&db_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_at(&db_path)(e)),
            _ => {}
        }
        let summary =
            snapshot_db::snapshot(&live_db, &db_path).map_err(|source| BackupError::Database {
                path: live_db.clone(),
                source,
            })?;
        progress.stage("copying new blobs");
        match copy_blobs(&source.data, dest, &summary, progress)? {
            Ok(done) => {
                copied.0 += done.0;
                copied.1 += done.1;
                break summary;
            }
            Err((missing, done)) => {
                copied.0 += done.0;
                copied.1 += done.1;
                // Deleted after the snapshot: its row is gone now, so a new snapshot no
                // longer needs it. Still there: the live instance lost a blob.
                let live = snapshot_db::with_read_only(&live_db, crate::store::files::all_blobs)
                    .map_err(|source| BackupError::Database {
                        path: live_db.clone(),
                        source: source.into(),
                    })?;
                if live.iter().any(|row| row.blob_key == missing.key) {
                    return Err(BackupError::LiveBlobMissing {
                        file_id: missing.file_id,
                        key: missing.key.clone(),
                        path: live_blob_path(&source.data, &missing.key)?,
                    });
                }
                if attempt == ATTEMPTS {
                    return Err(BackupError::Unsettled);
                }
            }
        }
    };

    progress.stage("writing the manifest");
    let mut files = vec![entry_of_file(&db_path, DATABASE)?];
    if let Some(config) = &source.config_file {
        files.push(copy_small(config, &staging, CONFIG)?);
    }
    for (from, to) in [
        (source.data.self_signed_cert(), TLS_CERT),
        (source.data.self_signed_key(), TLS_KEY),
    ] {
        if from.is_file() {
            files.push(copy_small(&from, &staging, to)?);
        }
    }
    if source.include_master_key {
        files.push(copy_small(&source.master_key_file, &staging, MASTER_KEY)?);
    }
    let blobs: Vec<BlobEntry> = summary.blobs.iter().map(BlobEntry::of).collect();
    let manifest = Manifest {
        format: FORMAT.into(),
        sealbox_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: summary.schema_version,
        created_at: crate::ids::now_rfc3339(),
        master_key_id: master_key.as_ref().map(|k| k.id().to_owned()),
        master_key_included: source.include_master_key,
        counts: Counts {
            tables: summary.table_rows.clone(),
            blobs: blobs.len() as u64,
            blob_bytes: blobs.iter().map(|b| b.size).sum(),
        },
        files,
        blobs,
    };
    let text = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    let manifest_path = staging.join(MANIFEST);
    write_atomic(&manifest_path, &text, SECRET_FILE_MODE).map_err(io_at(&manifest_path))?;
    let sum_path = staging.join(MANIFEST_SUM);
    let sum = format!("{}  {MANIFEST}\n", blake3::hash(&text).to_hex());
    write_atomic(&sum_path, sum.as_bytes(), SECRET_FILE_MODE).map_err(io_at(&sum_path))?;

    fsync_dir(&staging).map_err(io_at(&staging))?;
    if staging.join("tls").is_dir() {
        fsync_dir(&staging.join("tls")).map_err(io_at(&staging))?;
    }
    fs::rename(&staging, &final_dir).map_err(io_at(&final_dir))?;
    guard.disarm();
    let snapshots = dest.join(SNAPSHOTS);
    fsync_dir(&snapshots).map_err(io_at(&snapshots))?;
    Ok(BackupSummary {
        snapshot: final_dir,
        manifest,
        blobs_copied: copied.0,
        bytes_copied: copied.1,
    })
}

/// `20261202T162100.123Z`: sorts by time, valid on every filesystem.
fn snapshot_name(now: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

fn read_master_key(path: &Path) -> Result<Option<MasterKey>, BackupError> {
    match fs::read(path) {
        Ok(bytes) => {
            MasterKey::from_file_bytes(&bytes)
                .map(Some)
                .ok_or_else(|| BackupError::BadMasterKey {
                    path: path.to_owned(),
                })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}

fn live_blob_path(data: &DataDir, key: &str) -> Result<PathBuf, BackupError> {
    let key = BlobKey::new(key.to_owned()).map_err(|e| BackupError::LiveBlobDamaged {
        file_id: String::new(),
        key: key.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(blob_path(&data.blobs(), &key))
}

/// Where the blob with BLAKE3 `hash` lives in the backup directory `dest`.
fn stored_blob(dest: &Path, hash: &str) -> PathBuf {
    let shard = hash.get(..2).unwrap_or("00");
    dest.join(BLOBS).join(shard).join(hash)
}

/// Copies every blob of `summary` that the backup directory does not hold yet. The inner
/// `Err` is a blob missing from the live directory (with what was copied so far).
#[expect(
    clippy::type_complexity,
    reason = "one private call site; the pair is (blobs, bytes) copied"
)]
fn copy_blobs(
    data: &DataDir,
    dest: &Path,
    summary: &DatabaseSummary,
    progress: &dyn Progress,
) -> Result<Result<(usize, u64), (BlobEntry, (usize, u64))>, BackupError> {
    let todo: Vec<BlobEntry> = summary
        .blobs
        .iter()
        .map(BlobEntry::of)
        .filter(|blob| {
            fs::metadata(stored_blob(dest, &blob.blake3)).map_or(true, |m| m.len() != blob.size)
        })
        .collect();
    progress.blobs(todo.len(), todo.iter().map(|b| b.size).sum());
    let mut done = (0usize, 0u64);
    let mut buffer = vec![0u8; BUFFER];
    for blob in todo {
        let from = live_blob_path(data, &blob.key)?;
        let mut source = match fs::File::open(&from) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                progress.done();
                return Ok(Err((blob, done)));
            }
            Err(e) => return Err(io_at(&from)(e)),
        };
        let target = stored_blob(dest, &blob.blake3);
        let tmp = dest
            .join(BLOBS)
            .join(TMP)
            .join(uuid::Uuid::now_v7().simple().to_string());
        let (size, hash) = copy_hashing(&mut source, &from, &tmp, &mut buffer, progress)?;
        if size != blob.size || hash != blob.blake3 {
            let _ = fs::remove_file(&tmp);
            return Err(BackupError::LiveBlobDamaged {
                file_id: blob.file_id,
                key: blob.key,
                detail: format!(
                    "{size} bytes with BLAKE3 {hash}, recorded {} bytes with BLAKE3 {}",
                    blob.size, blob.blake3
                ),
            });
        }
        let shard = target.parent().expect("a shard directory");
        make_dir(shard)?;
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_file(&tmp);
            return Err(io_at(&target)(e));
        }
        fsync_dir(shard).map_err(io_at(shard))?;
        done.0 += 1;
        done.1 += size;
    }
    progress.done();
    Ok(Ok(done))
}

/// Streams `source` into a new file `tmp` (mode 0600), hashing; fsyncs it. Returns the
/// size and BLAKE3 (hex) of what was written. Removes `tmp` on failure.
fn copy_hashing(
    source: &mut fs::File,
    from: &Path,
    tmp: &Path,
    buffer: &mut [u8],
    progress: &dyn Progress,
) -> Result<(u64, String), BackupError> {
    let guard = RemoveOnDrop(Some(tmp.to_owned()));
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SECRET_FILE_MODE)
        .open(tmp)
        .map_err(io_at(tmp))?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        let n = match source.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_at(from)(e)),
        };
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n]).map_err(io_at(tmp))?;
        size += n as u64;
        progress.advance(n as u64);
    }
    out.sync_all().map_err(io_at(tmp))?;
    guard.disarm();
    Ok((size, hasher.finalize().to_hex().to_string()))
}

/// Copies a small file (configuration, certificate, key) into the snapshot as `name`.
fn copy_small(from: &Path, staging: &Path, name: &str) -> Result<FileEntry, BackupError> {
    let bytes = fs::read(from).map_err(io_at(from))?;
    let target = staging.join(name);
    if let Some(parent) = target.parent() {
        make_dir(parent)?;
    }
    write_atomic(&target, &bytes, SECRET_FILE_MODE).map_err(io_at(&target))?;
    Ok(FileEntry {
        path: name.to_owned(),
        size: bytes.len() as u64,
        blake3: blake3::hash(&bytes).to_hex().to_string(),
    })
}

fn entry_of_file(path: &Path, name: &str) -> Result<FileEntry, BackupError> {
    let (size, blake3) = hash_file(path)?;
    Ok(FileEntry {
        path: name.to_owned(),
        size,
        blake3,
    })
}

fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = fs::File::open(path).map_err(io_at(path))?;
    let mut hasher = blake3::Hasher::new();
    let size = io::copy(&mut file, &mut hasher).map_err(io_at(path))?;
    Ok((size, hasher.finalize().to_hex().to_string()))
}

fn make_dir(dir: &Path) -> Result<(), BackupError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io_at(dir))
}

/// Removes a file or directory tree unless disarmed: what a failed step leaves behind.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            if path.is_dir() {
                let _ = fs::remove_dir_all(&path);
            } else {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Verification

/// One snapshot in a backup directory.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub name: String,
    pub dir: PathBuf,
    /// The backup's shared blob store (`DEST/blobs`).
    pub root: PathBuf,
}

/// The snapshots `src` names: `src` itself when it is one snapshot directory, else every
/// complete snapshot of the backup directory `src`, oldest first.
pub fn snapshots(src: &Path) -> Result<Vec<Snapshot>, BackupError> {
    if src.join(MANIFEST).is_file() || src.join(MANIFEST_SUM).is_file() {
        let root = src
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| BackupError::NotABackup {
                path: src.to_owned(),
            })?
            .to_owned();
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![Snapshot {
            name,
            dir: src.to_owned(),
            root,
        }]);
    }
    let dir = src.join(SNAPSHOTS);
    if !dir.is_dir() {
        return Err(BackupError::NotABackup {
            path: src.to_owned(),
        });
    }
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).map_err(io_at(&dir))? {
        let entry = entry.map_err(io_at(&dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden: a snapshot still being written, or one a crash interrupted.
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        found.push(Snapshot {
            name,
            dir: entry.path(),
            root: src.to_owned(),
        });
    }
    if found.is_empty() {
        return Err(BackupError::NoSnapshot {
            path: src.to_owned(),
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Picks the snapshot to restore: `name`, or the newest.
pub fn pick(src: &Path, name: Option<&str>) -> Result<Snapshot, BackupError> {
    let mut all = snapshots(src)?;
    match name {
        Some(name) => {
            all.into_iter()
                .find(|s| s.name == name)
                .ok_or_else(|| BackupError::UnknownSnapshot {
                    name: name.to_owned(),
                    path: src.to_owned(),
                })
        }
        None => Ok(all.pop().expect("snapshots() is never empty")),
    }
}

/// A snapshot whose manifest, database and small files passed their checks.
#[derive(Debug, Clone)]
pub struct Checked {
    pub snapshot: Snapshot,
    pub manifest: Manifest,
    /// Broken audit chains in the snapshot's database (a faithful copy of what was live).
    pub audit_problems: Vec<String>,
}

/// Reads and checks the manifest (its own BLAKE3, its format, the schema version), then
/// every file it lists and the database against the counts and blob list. Blobs are not
/// read here (see [`verify_blobs`]).
pub fn check_snapshot(snapshot: &Snapshot) -> Result<Checked, BackupError> {
    let corrupt = |detail: String| BackupError::CorruptManifest {
        snapshot: snapshot.name.clone(),
        detail,
    };
    let manifest_path = snapshot.dir.join(MANIFEST);
    let sum_path = snapshot.dir.join(MANIFEST_SUM);
    let text = fs::read(&manifest_path).map_err(io_at(&manifest_path))?;
    let sum = fs::read_to_string(&sum_path).map_err(io_at(&sum_path))?;
    let recorded = sum.split_whitespace().next().unwrap_or("");
    let actual = blake3::hash(&text).to_hex();
    if !recorded.eq_ignore_ascii_case(actual.as_str()) {
        return Err(corrupt(format!(
            "{MANIFEST} has BLAKE3 {actual}, {MANIFEST_SUM} records {recorded}"
        )));
    }
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(corrupt(format!(
            "format {:?}, this sealbox reads {FORMAT:?}",
            manifest.format
        )));
    }
    if manifest.schema_version > LATEST_SCHEMA_VERSION {
        return Err(BackupError::NewerSchema {
            snapshot: snapshot.name.clone(),
            found: manifest.schema_version,
        });
    }

    let mut problems = Vec::new();
    let known = [DATABASE, CONFIG, MASTER_KEY, TLS_CERT, TLS_KEY];
    let mut listed = HashSet::new();
    for file in &manifest.files {
        // The manifest names paths; only the fixed set is ever opened.
        if !known.contains(&file.path.as_str()) || !listed.insert(file.path.as_str()) {
            return Err(corrupt(format!("unexpected file entry {:?}", file.path)));
        }
        let path = snapshot.dir.join(&file.path);
        match hash_file(&path) {
            Ok((size, hash)) if size == file.size && hash == file.blake3 => {}
            Ok((size, hash)) => problems.push(format!(
                "{}: {size} bytes with BLAKE3 {hash}, the manifest records {} bytes with BLAKE3 {}",
                path.display(),
                file.size,
                file.blake3
            )),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !listed.contains(DATABASE) {
        return Err(corrupt("no database entry".into()));
    }
    if manifest.master_key_included != listed.contains(MASTER_KEY) {
        return Err(corrupt(
            "masterKeyIncluded disagrees with the file list".into(),
        ));
    }
    if !problems.is_empty() {
        return Err(BackupError::Damaged {
            snapshot: snapshot.name.clone(),
            problems,
        });
    }

    let db = snapshot.dir.join(DATABASE);
    let summary = snapshot_db::inspect(&db).map_err(|source| BackupError::Database {
        path: db.clone(),
        source,
    })?;
    if summary.schema_version != manifest.schema_version {
        problems.push(format!(
            "the database has schema version {}, the manifest records {}",
            summary.schema_version, manifest.schema_version
        ));
    }
    if summary.table_rows != manifest.counts.tables {
        problems.push("the database's row counts differ from the manifest's".into());
    }
    let blobs: Vec<BlobEntry> = summary.blobs.iter().map(BlobEntry::of).collect();
    if blobs != manifest.blobs
        || manifest.counts.blobs != blobs.len() as u64
        || manifest.counts.blob_bytes != blobs.iter().map(|b| b.size).sum::<u64>()
    {
        problems.push("the database's files differ from the manifest's blob list".into());
    }
    if manifest.master_key_included {
        let path = snapshot.dir.join(MASTER_KEY);
        match read_master_key(&path) {
            Ok(Some(key)) if Some(key.id()) == manifest.master_key_id.as_deref() => {}
            Ok(_) => problems.push(format!(
                "{} is not the master key {} the manifest records",
                path.display(),
                manifest.master_key_id.as_deref().unwrap_or("(none)")
            )),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(BackupError::Damaged {
            snapshot: snapshot.name.clone(),
            problems,
        });
    }
    let audit_problems = if summary.table_rows.contains_key("audit_chains") {
        snapshot_db::with_read_only(&db, super::audit::verify_all)
            .map_err(|source: StoreError| BackupError::Database {
                path: db.clone(),
                source: source.into(),
            })?
            .into_iter()
            .filter_map(|report| {
                let problem = report.problem?;
                Some(format!(
                    "audit chain {}: {}{}",
                    report.org_id.as_deref().unwrap_or("instance"),
                    problem.reason,
                    problem
                        .entry_id
                        .map(|id| format!(" (entry {id})"))
                        .unwrap_or_default()
                ))
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Checked {
        snapshot: snapshot.clone(),
        manifest,
        audit_problems,
    })
}

/// Reads every blob `checked` lists back from the backup's blob store; returns the
/// problems. `seen` holds blobs already verified (snapshots share blobs).
pub fn verify_blobs(
    checked: &Checked,
    seen: &mut HashSet<String>,
    progress: &dyn Progress,
) -> Vec<String> {
    let todo: Vec<&BlobEntry> = checked
        .manifest
        .blobs
        .iter()
        .filter(|b| !seen.contains(&b.blake3))
        .collect();
    progress.blobs(todo.len(), todo.iter().map(|b| b.size).sum());
    let mut problems = Vec::new();
    for blob in todo {
        let path = stored_blob(&checked.snapshot.root, &blob.blake3);
        match hash_file_progress(&path, progress) {
            Ok((size, hash)) if size == blob.size && hash == blob.blake3 => {
                seen.insert(blob.blake3.clone());
            }
            Ok((size, hash)) => problems.push(format!(
                "blob of file {} ({}): {size} bytes with BLAKE3 {hash}, expected {} bytes",
                blob.file_id,
                path.display(),
                blob.size
            )),
            Err(e) => problems.push(format!("blob of file {}: {e}", blob.file_id)),
        }
    }
    progress.done();
    problems
}

fn hash_file_progress(path: &Path, progress: &dyn Progress) -> Result<(u64, String), BackupError> {
    let mut file = fs::File::open(path).map_err(io_at(path))?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; BUFFER];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_at(path)(e)),
        };
        hasher.update(&buffer[..n]);
        size += n as u64;
        progress.advance(n as u64);
    }
    Ok((size, hasher.finalize().to_hex().to_string()))
}

// ---------------------------------------------------------------------------------------
// Restore

/// What a restore needs besides the snapshot.
#[derive(Debug, Clone)]
pub struct RestoreTarget {
    /// The data directory to create (or, with `force`, replace).
    pub data_dir: PathBuf,
    pub force: bool,
    /// The master key to install when the backup holds none; checked against its id.
    pub master_key_file: Option<PathBuf>,
}

/// What a completed restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub manifest: Manifest,
    /// Whether `<data>/master.key` was written (from the backup or `--master-key-file`).
    pub master_key_installed: bool,
    /// Where the backed-up configuration file was put, if the backup had one.
    pub config: Option<PathBuf>,
    pub audit_problems: Vec<String>,
    /// Whether `force` replaced a non-empty directory (its old contents are deleted).
    pub replaced: bool,
}

/// Restores `snapshot` into `target.data_dir`. Everything is verified and the new data
/// directory built beside the target first; the target changes only in the final rename.
pub fn restore(
    snapshot: &Snapshot,
    target: &RestoreTarget,
    progress: &dyn Progress,
) -> Result<RestoreSummary, BackupError> {
    let dir = &target.data_dir;
    let existing = match fs::symlink_metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(BackupError::TargetNotADirectory { path: dir.clone() });
        }
        Ok(_) => Some(fs::read_dir(dir).map_err(io_at(dir))?.next().is_some()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_at(dir)(e)),
    };
    if existing == Some(true) && !target.force {
        return Err(BackupError::TargetNotEmpty { path: dir.clone() });
    }

    progress.stage("checking the manifest and the database");
    let checked = check_snapshot(snapshot)?;
    let manifest = &checked.manifest;
    let supplied_key = match (&target.master_key_file, manifest.master_key_included) {
        (Some(path), false) => {
            let bytes = fs::read(path).map_err(io_at(path))?;
            let key = MasterKey::from_file_bytes(&bytes)
                .ok_or_else(|| BackupError::BadMasterKey { path: path.clone() })?;
            if let Some(expected) = &manifest.master_key_id
                && key.id() != expected
            {
                return Err(BackupError::WrongMasterKey {
                    path: path.clone(),
                    found: key.id().to_owned(),
                    expected: expected.clone(),
                });
            }
            Some(bytes)
        }
        _ => None,
    };

    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    make_dir(&parent)?;
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let staging = parent.join(format!(".{base}.restore-{}", uuid::Uuid::now_v7().simple()));
    let guard = RemoveOnDrop(Some(staging.clone()));
    let data = DataDir::new(&staging);
    data.create().map_err(io_at(&staging))?;

    progress.stage("copying the database");
    let mut buffer = vec![0u8; BUFFER];
    let mut problems = Vec::new();
    let mut installed_key = false;
    let mut config = None;
    for file in &manifest.files {
        let (from, to) = match file.path.as_str() {
            DATABASE => (snapshot.dir.join(DATABASE), data.database()),
            MASTER_KEY => {
                installed_key = true;
                (snapshot.dir.join(MASTER_KEY), data.master_key())
            }
            TLS_CERT => (snapshot.dir.join(TLS_CERT), data.self_signed_cert()),
            TLS_KEY => (snapshot.dir.join(TLS_KEY), data.self_signed_key()),
            CONFIG => {
                config = Some(dir.join(RESTORED_CONFIG));
                (snapshot.dir.join(CONFIG), staging.join(RESTORED_CONFIG))
            }
            other => unreachable!("check_snapshot refuses entry {other}"),
        };
        let mut source = fs::File::open(&from).map_err(io_at(&from))?;
        let (size, hash) = copy_hashing(&mut source, &from, &to, &mut buffer, &Quiet)?;
        if size != file.size || hash != file.blake3 {
            problems.push(format!("{} changed while it was restored", from.display()));
        }
    }
    if let Some(bytes) = &supplied_key {
        let path = data.master_key();
        write_atomic(&path, bytes, SECRET_FILE_MODE).map_err(io_at(&path))?;
        installed_key = true;
    }

    progress.stage("copying the blobs");
    progress.blobs(manifest.blobs.len(), manifest.counts.blob_bytes);
    let blob_root = data.blobs();
    let mut shards = HashSet::new();
    for blob in &manifest.blobs {
        let from = stored_blob(&snapshot.root, &blob.blake3);
        let key = match BlobKey::new(blob.key.clone()) {
            Ok(key) => key,
            Err(e) => {
                problems.push(format!("file {}: {e}", blob.file_id));
                continue;
            }
        };
        let to = blob_path(&blob_root, &key);
        let shard = to.parent().expect("a shard directory").to_owned();
        make_dir(&shard)?;
        let mut source = match fs::File::open(&from) {
            Ok(file) => file,
            Err(e) => {
                problems.push(format!(
                    "blob of file {}: {}: {e}",
                    blob.file_id,
                    from.display()
                ));
                continue;
            }
        };
        let (size, hash) = copy_hashing(&mut source, &from, &to, &mut buffer, progress)?;
        if size != blob.size || hash != blob.blake3 {
            problems.push(format!(
                "blob of file {} ({}): {size} bytes with BLAKE3 {hash}, expected {} bytes \
                 with BLAKE3 {}",
                blob.file_id,
                from.display(),
                blob.size,
                blob.blake3
            ));
        }
        shards.insert(shard);
    }
    progress.done();
    if !problems.is_empty() {
        return Err(BackupError::Damaged {
            snapshot: snapshot.name.clone(),
            problems,
        });
    }
    for shard in &shards {
        fsync_dir(shard).map_err(io_at(shard))?;
    }
    for sub in [data.blobs(), data.tls(), data.uploads(), staging.clone()] {
        fsync_dir(&sub).map_err(io_at(&sub))?;
    }

    progress.stage("moving the restored data directory into place");
    let replaced = match existing {
        // A new name, or an empty directory (rename replaces an empty directory).
        None | Some(false) => {
            fs::rename(&staging, dir).map_err(io_at(dir))?;
            false
        }
        Some(true) => {
            // Swap the two directories in one step, then remove the old contents.
            rustix::fs::renameat_with(
                rustix::fs::CWD,
                &staging,
                rustix::fs::CWD,
                dir,
                rustix::fs::RenameFlags::EXCHANGE,
            )
            .map_err(|e| io_at(dir)(e.into()))?;
            true
        }
    };
    fsync_dir(&parent).map_err(io_at(&parent))?;
    if replaced {
        // `staging` now holds what was replaced.
        drop(guard);
    } else {
        guard.disarm();
    }
    Ok(RestoreSummary {
        manifest: checked.manifest.clone(),
        master_key_installed: installed_key,
        config,
        audit_problems: checked.audit_problems,
        replaced,
    })
}
