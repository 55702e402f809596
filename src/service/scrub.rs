//! Scrubbing (`sealbox doctor --scrub`): reads every stored blob back and checks it against
//! the size and BLAKE3 its file row recorded at finalize, and finds bytes on disk that no
//! row accounts for: blobs whose file is gone (an interrupted delete, a stray copy) and
//! upload parts whose upload is gone. Synchronous and read-only, for the CLI: it takes a
//! connection (opened read-only) and the data directory, and never writes.
//!
//! The server may keep running meanwhile. Disk and database are read at different moments,
//! so a file being finalized or deleted can look missing or orphaned for an instant; each
//! such finding is checked again against a fresh read before it is reported.

pub mod s3;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::blob::BlobKey;
use crate::blob::local::{TMP_DIR, blob_path};
use crate::data_dir::DataDir;
use crate::ids::FileId;
use crate::service::files::PART_SUFFIX;
use crate::store::StoreError;
use crate::store::files::{self, StoredBlob};

/// Large reads let BLAKE3 use its SIMD paths; one buffer for the whole scrub.
const READ_BUFFER: usize = 1024 * 1024;

/// What a scrub read and what it found wrong.
#[derive(Debug, Default)]
pub struct ScrubReport {
    /// File rows whose blob was read back.
    pub blobs_checked: usize,
    /// Bytes read and hashed.
    pub bytes_read: u64,
    /// Every problem, in the order found; empty when all is well.
    pub findings: Vec<Finding>,
}

/// One problem a scrub found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A file's blob is not on disk.
    Missing {
        file_id: FileId,
        blob_key: String,
        path: PathBuf,
    },
    /// A file's blob has another size than the one recorded.
    SizeMismatch {
        file_id: FileId,
        blob_key: String,
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    /// A file's blob has the recorded size but another BLAKE3: its bytes changed.
    HashMismatch {
        file_id: FileId,
        blob_key: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// A file's blob could not be read (or its row names no valid blob key).
    Unreadable {
        file_id: FileId,
        blob_key: String,
        error: String,
    },
    /// Something in blob storage that no file row refers to.
    OrphanBlob { path: PathBuf, size: u64 },
    /// Something in the uploads directory that belongs to no upload.
    OrphanUpload { path: PathBuf, size: u64 },
}

/// The scrub could not look at everything (the problems it did find are lost with it).
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// What the database says should be on disk, from one snapshot.
struct Expected {
    blobs: Vec<StoredBlob>,
    uploads: HashSet<FileId>,
}

impl Expected {
    fn read(conn: &Connection) -> Result<Self, StoreError> {
        // One read transaction, so files and uploads are seen at the same moment (a
        // finalize turns an upload into a file in one transaction).
        let snapshot = conn.unchecked_transaction()?;
        let blobs = files::all_blobs(&snapshot)?;
        let uploads = files::all_upload_ids(&snapshot)?.into_iter().collect();
        Ok(Self { blobs, uploads })
    }

    /// Where each file's blob should be, by path.
    fn blob_paths(&self, root: &Path) -> HashMap<PathBuf, FileId> {
        self.blobs
            .iter()
            .filter_map(|row| {
                let key = BlobKey::new(row.blob_key.clone()).ok()?;
                Some((blob_path(root, &key), row.file_id))
            })
            .collect()
    }
}

/// Scrubs the blobs and uploads of the data directory `data` against the database `conn`.
pub fn scrub(conn: &Connection, data: &DataDir) -> Result<ScrubReport, ScrubError> {
    let blob_root = data.blobs();
    let uploads_dir = data.uploads();
    // The disk first, then the database: a file finalized in between is on disk and in
    // the snapshot, so it is not taken for an orphan.
    let blob_files = list_blob_storage(&blob_root)?;
    let part_files = list_files(&uploads_dir)?;
    let expected = Expected::read(conn)?;

    let mut report = ScrubReport::default();
    let mut buffer = vec![0u8; READ_BUFFER];
    for row in &expected.blobs {
        if let Some(finding) = check_blob(&blob_root, row, &mut buffer, &mut report) {
            report.findings.push(finding);
        }
    }
    let wanted = expected.blob_paths(&blob_root);
    for (path, size) in blob_files {
        if !wanted.contains_key(&path) {
            report.findings.push(Finding::OrphanBlob { path, size });
        }
    }
    for (path, size) in part_files {
        if part_upload(&path).is_none_or(|id| !expected.uploads.contains(&id)) {
            report.findings.push(Finding::OrphanUpload { path, size });
        }
    }

    if report.findings.iter().any(may_be_passing) {
        let now = Expected::read(conn)?;
        let wanted = now.blob_paths(&blob_root);
        let rows: HashSet<FileId> = now.blobs.iter().map(|row| row.file_id).collect();
        report.findings.retain(|finding| match finding {
            // Deleted meanwhile: the row is gone, and so is the problem.
            Finding::Missing { file_id, path, .. } => rows.contains(file_id) && !path.exists(),
            // Finalized meanwhile, or removed meanwhile.
            Finding::OrphanBlob { path, .. } => path.exists() && !wanted.contains_key(path),
            Finding::OrphanUpload { path, .. } => {
                path.exists() && part_upload(path).is_none_or(|id| !now.uploads.contains(&id))
            }
            _ => true,
        });
    }
    Ok(report)
}

/// Findings a concurrent finalize, delete or upload can cause for an instant.
fn may_be_passing(finding: &Finding) -> bool {
    matches!(
        finding,
        Finding::Missing { .. } | Finding::OrphanBlob { .. } | Finding::OrphanUpload { .. }
    )
}

/// Reads one file's blob back; `None` when its size and BLAKE3 match the row.
fn check_blob(
    root: &Path,
    row: &StoredBlob,
    buffer: &mut [u8],
    report: &mut ScrubReport,
) -> Option<Finding> {
    let (file_id, blob_key) = (row.file_id, row.blob_key.clone());
    let key = match BlobKey::new(row.blob_key.clone()) {
        Ok(key) => key,
        Err(e) => {
            return Some(Finding::Unreadable {
                file_id,
                blob_key,
                error: e.to_string(),
            });
        }
    };
    let path = blob_path(root, &key);
    let mut file = match fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Some(Finding::Missing {
                file_id,
                blob_key,
                path,
            });
        }
        Err(e) => {
            return Some(Finding::Unreadable {
                file_id,
                blob_key,
                error: format!("{}: {e}", path.display()),
            });
        }
    };
    report.blobs_checked += 1;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Some(Finding::Unreadable {
                    file_id,
                    blob_key,
                    error: format!("{}: {e}", path.display()),
                });
            }
        }
    }
    verdict(report, row, path, size, hasher)
}

/// What a blob read whole (`size` bytes, hashed by `hasher`) says against its row: a size
/// or BLAKE3 mismatch, or nothing. The one judgement of the local and the S3 scrub.
fn verdict(
    report: &mut ScrubReport,
    row: &StoredBlob,
    path: PathBuf,
    size: u64,
    hasher: blake3::Hasher,
) -> Option<Finding> {
    let (file_id, blob_key) = (row.file_id, row.blob_key.clone());
    report.bytes_read += size;
    let expected_size = u64::try_from(row.stored_size).unwrap_or(u64::MAX);
    if size != expected_size {
        return Some(Finding::SizeMismatch {
            file_id,
            blob_key,
            path,
            expected: expected_size,
            actual: size,
        });
    }
    let actual = hasher.finalize().to_hex().to_string();
    if !actual.eq_ignore_ascii_case(&row.blake3) {
        return Some(Finding::HashMismatch {
            file_id,
            blob_key,
            path,
            expected: row.blake3.clone(),
            actual,
        });
    }
    None
}

/// Everything in blob storage that could be a blob, with its size: the files of the shard
/// directories, and anything else but the write area (a stray file or directory there is
/// reported as an orphan too).
fn list_blob_storage(root: &Path) -> Result<Vec<(PathBuf, u64)>, ScrubError> {
    let mut found = Vec::new();
    for (path, meta) in entries(root)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == TMP_DIR {
            continue;
        }
        let is_shard = meta.is_dir()
            && name.len() == 2
            && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if is_shard {
            found.extend(list_files(&path)?);
        } else {
            found.push((path, meta.len()));
        }
    }
    Ok(found)
}

/// The entries of `dir` with their sizes (a directory counts as one entry); none if
/// `dir` does not exist.
fn list_files(dir: &Path) -> Result<Vec<(PathBuf, u64)>, ScrubError> {
    Ok(entries(dir)?
        .into_iter()
        .map(|(path, meta)| (path, meta.len()))
        .collect())
}

fn entries(dir: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>, ScrubError> {
    let io_error = |source| ScrubError::Io {
        path: dir.to_owned(),
        source,
    };
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(e)),
    };
    let mut found = Vec::new();
    for entry in listing {
        let entry = entry.map_err(io_error)?;
        // Gone since the listing (a write finished, a delete ran): nothing to report.
        let Ok(meta) = fs::symlink_metadata(entry.path()) else {
            continue;
        };
        found.push((entry.path(), meta));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// The upload an uploads-directory entry belongs to, if its name says one.
fn part_upload(path: &Path) -> Option<FileId> {
    path.file_name()?
        .to_str()?
        .strip_suffix(PART_SUFFIX)?
        .parse()
        .ok()
}
