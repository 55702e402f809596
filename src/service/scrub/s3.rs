//! Scrubbing an S3-compatible store (`storage.backend = "s3"`): the same checks as the
//! local scrub (every file's blob read back against its size and BLAKE3; objects under the
//! prefix that no row refers to; upload parts that belong to no upload), with the bucket
//! listed instead of the blob directory. An object's "path" in a finding is its
//! `s3://bucket/key` URL. Read-only; it runs on the caller's runtime handle.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use rusqlite::Connection;
use tokio::io::AsyncReadExt;

use super::{
    Expected, Finding, READ_BUFFER, ScrubError, ScrubReport, list_files, may_be_passing,
    part_upload, verdict,
};
use crate::blob::{BlobError, BlobKey, BlobStore, S3BlobStore};
use crate::data_dir::DataDir;
use crate::ids::FileId;
use crate::store::files::StoredBlob;

fn store_error(e: BlobError) -> ScrubError {
    ScrubError::Io {
        path: PathBuf::from("object store"),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Scrubs the bucket of `store` (and the uploads of `data`) against the database `conn`.
pub fn scrub_s3(
    conn: &Connection,
    data: &DataDir,
    store: &S3BlobStore,
    runtime: &tokio::runtime::Handle,
) -> Result<ScrubReport, ScrubError> {
    // The store first, then the database, as the local scrub does.
    let objects = runtime.block_on(store.list()).map_err(store_error)?;
    let part_files = list_files(&data.uploads())?;
    let expected = Expected::read(conn)?;

    let mut report = ScrubReport::default();
    let mut buffer = vec![0u8; READ_BUFFER];
    for row in &expected.blobs {
        if let Some(finding) = runtime.block_on(check(store, row, &mut buffer, &mut report)) {
            report.findings.push(finding);
        }
    }
    let wanted = wanted_objects(store, &expected);
    for object in &objects {
        if !wanted.contains_key(&object.location) {
            report.findings.push(Finding::OrphanBlob {
                path: PathBuf::from(store.url_of(&object.location)),
                size: object.size,
            });
        }
    }
    for (path, size) in part_files {
        if part_upload(&path).is_none_or(|id| !expected.uploads.contains(&id)) {
            report.findings.push(Finding::OrphanUpload { path, size });
        }
    }

    if report.findings.iter().any(may_be_passing) {
        let now = Expected::read(conn)?;
        let wanted = wanted_objects(store, &now);
        let rows: HashSet<FileId> = now.blobs.iter().map(|row| row.file_id).collect();
        let listed: HashSet<String> = runtime
            .block_on(store.list())
            .map_err(store_error)?
            .into_iter()
            .map(|object| store.url_of(&object.location))
            .collect();
        report.findings.retain(|finding| match finding {
            Finding::Missing { file_id, path, .. } => {
                rows.contains(file_id) && !listed.contains(&path.display().to_string())
            }
            Finding::OrphanBlob { path, .. } => {
                let url = path.display().to_string();
                listed.contains(&url) && !wanted.values().any(|(u, _)| *u == url)
            }
            Finding::OrphanUpload { path, .. } => {
                path.exists() && part_upload(path).is_none_or(|id| !now.uploads.contains(&id))
            }
            _ => true,
        });
    }
    Ok(report)
}

/// Each file's object location, with its URL and file.
fn wanted_objects(store: &S3BlobStore, expected: &Expected) -> HashMap<String, (String, FileId)> {
    expected
        .blobs
        .iter()
        .filter_map(|row| {
            let key = BlobKey::new(row.blob_key.clone()).ok()?;
            let location = store.location_of(&key);
            let url = store.url_of(&location);
            Some((location, (url, row.file_id)))
        })
        .collect()
}

/// Reads one file's object back; `None` when its size and BLAKE3 match the row.
async fn check(
    store: &S3BlobStore,
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
    let path = PathBuf::from(store.url_of(&store.location_of(&key)));
    let unreadable = |error: String| Finding::Unreadable {
        file_id,
        blob_key: row.blob_key.clone(),
        error: format!("{}: {error}", path.display()),
    };
    let mut reader = match store.open(&key, 0).await {
        Ok(reader) => reader,
        Err(BlobError::NotFound) => {
            return Some(Finding::Missing {
                file_id,
                blob_key,
                path,
            });
        }
        Err(e) => return Some(unreadable(e.to_string())),
    };
    report.blobs_checked += 1;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        match reader.read(buffer).await {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                size += n as u64;
            }
            Err(e) => return Some(unreadable(e.to_string())),
        }
    }
    verdict(report, row, path, size, hasher)
}
