//! Resumable uploads (tus 1.0) that encrypt as they send: a file is never read whole into
//! memory, and never written anywhere encrypted.
//!
//! Each `PATCH` carries up to [`PATCH_CHUNK`] bytes of SBX1 ciphertext, produced on a
//! blocking thread from the file and streamed as the request body. After a transport error
//! or a 5xx the upload backs off, asks the server (`HEAD`) how much it durably holds, and
//! continues from there: SBX1 ciphertext is a function of the header, the key, the file id
//! and the plaintext, so the segment holding that offset is sealed again
//! (`SegmentEncryptor::resume`) and the bytes the server already has are skipped. Sealing a
//! segment twice with the same contents reuses nothing it should not; the file's size and
//! modification time are checked before every resumed pass, so changed contents are never
//! sealed under a nonce already used.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use indicatif::ProgressBar;
use reqwest::{Method, StatusCode};
use url::Url;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::ClientError;
use super::http::{Api, error_chain, error_message};
use crate::crypto::Dek;
use crate::crypto::sbx1::{HEADER_LEN, Header, Layout, SegmentEncryptor};

/// Ciphertext bytes per `PATCH` request. Each one ends with the server syncing what it
/// received, which stalls the stream for that long (a tenth of a second and more per 64
/// MiB on a busy disk); within one the server checkpoints durably every 64 MiB in the
/// background, and a resume asks for that offset, so a large request loses nothing.
pub const PATCH_CHUNK: u64 = 1024 * 1024 * 1024;
/// Consecutive failed attempts (transport errors, 5xx, offset conflicts) before giving up.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 10;
/// Plaintext read from the file per step.
const READ_CHUNK: usize = 1024 * 1024;
/// Chunks buffered between the encrypting thread and the request body.
const CHANNEL_DEPTH: usize = 4;

/// One local file to upload as SBX1.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The file's size when it was checked (the plaintext length).
    pub len: u64,
    pub modified: Option<SystemTime>,
}

impl SourceFile {
    /// Checks that `path` is a readable regular file and records its size and mtime.
    pub fn stat(path: PathBuf) -> Result<Self, ClientError> {
        let metadata =
            std::fs::metadata(&path).map_err(|e| ClientError::local(path.display(), e))?;
        if metadata.is_dir() {
            return Err(ClientError::Usage(format!(
                "{} is a directory: send files (for a directory, archive it first)",
                path.display()
            )));
        }
        if !metadata.is_file() {
            return Err(ClientError::Usage(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        std::fs::File::open(&path).map_err(|e| ClientError::local(path.display(), e))?;
        Ok(Self {
            path,
            len: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }

    fn check_unchanged(&self) -> Result<(), ClientError> {
        let metadata = std::fs::metadata(&self.path)
            .map_err(|e| ClientError::local(self.path.display(), e))?;
        if metadata.len() != self.len || metadata.modified().ok() != self.modified {
            return Err(ClientError::Local(format!(
                "{} changed while it was being sent: send it again",
                self.path.display()
            )));
        }
        Ok(())
    }
}

/// What the encrypting thread needs: the file, the key, the file id and the header.
#[derive(Debug, Clone)]
pub struct Encryption {
    pub key: Arc<Dek>,
    pub file_id: Uuid,
    pub header: Header,
}

/// Uploads `source` as SBX1 to the tus creation URL `upload_url` with the (already
/// encrypted) `filename` metadata. `bar` counts ciphertext bytes sent.
pub async fn upload(
    api: &Api,
    upload_url: &Url,
    source: Arc<SourceFile>,
    encryption: Encryption,
    filename: &str,
    bar: &ProgressBar,
) -> Result<(), ClientError> {
    let layout = Layout::from_plaintext_len(&encryption.header, source.len)
        .map_err(|e| ClientError::local(source.path.display(), e))?;
    let total = layout.ciphertext_len();
    let metadata = format!(
        "filename {},encryption {}",
        B64.encode(filename),
        B64.encode("client")
    );
    let created = api
        .send(
            api.request(Method::POST, upload_url.clone())
                .header("Tus-Resumable", "1.0.0")
                .header("Upload-Length", total.to_string())
                .header("Upload-Metadata", metadata),
        )
        .await?;
    if created.status() != StatusCode::CREATED {
        return Err(ClientError::Api(format!(
            "starting the upload of {} failed: {}",
            source.path.display(),
            error_message(created).await
        )));
    }
    let location = created
        .headers()
        .get("Location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ClientError::Api("the server's tus answer has no Location".into()))?;
    let location = upload_url
        .join(location)
        .map_err(|e| ClientError::Api(format!("bad tus Location {location:?}: {e}")))?;

    let mut offset = 0u64;
    let mut failures = 0u32;
    let mut last_error = String::new();
    while offset < total {
        if failures > 0 {
            if failures >= MAX_CONSECUTIVE_FAILURES {
                return Err(ClientError::Api(format!(
                    "uploading {} failed {failures} times in a row; giving up (last error: \
                     {last_error})",
                    source.path.display()
                )));
            }
            tokio::time::sleep(backoff(failures)).await;
            match head_offset(api, &location).await {
                Ok(durable) => offset = durable,
                Err(Attempt::Retry(e)) => {
                    failures += 1;
                    last_error = e;
                    continue;
                }
                Err(Attempt::Fatal(e)) => return Err(e),
            }
            bar.set_position(offset);
            bar.suspend(|| {
                eprintln!(
                    "sealbox: the server holds {offset} of {total} bytes of {}; resuming there",
                    source.path.display()
                );
            });
            if offset >= total {
                break;
            }
        }
        let end = (offset + PATCH_CHUNK).min(total);
        source.check_unchanged()?;
        match patch(api, &location, &source, &encryption, offset, end, bar).await {
            Ok(durable) => {
                offset = durable;
                failures = 0;
            }
            Err(Attempt::Retry(e)) => {
                failures += 1;
                bar.suspend(|| {
                    eprintln!(
                        "sealbox: the upload of {} was interrupted ({e}); retrying",
                        source.path.display()
                    );
                });
                last_error = e;
            }
            Err(Attempt::Fatal(e)) => return Err(e),
        }
        bar.set_position(offset);
    }
    Ok(())
}

/// How an attempt failed: worth retrying (network, 5xx, an offset conflict), or not.
enum Attempt {
    Retry(String),
    Fatal(ClientError),
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(250u64 << failures.min(5)).min(Duration::from_secs(8))
}

async fn head_offset(api: &Api, location: &Url) -> Result<u64, Attempt> {
    let response = api
        .request(Method::HEAD, location.clone())
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .map_err(|e| Attempt::Retry(error_chain(e).join(": ")))?;
    if response.status().is_server_error() {
        return Err(Attempt::Retry(format!("HTTP {}", response.status())));
    }
    if !response.status().is_success() {
        return Err(Attempt::Fatal(ClientError::Api(format!(
            "the server no longer has the upload: {}",
            error_message(response).await
        ))));
    }
    upload_offset(&response).ok_or_else(|| Attempt::Retry("no Upload-Offset".into()))
}

fn upload_offset(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("Upload-Offset")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Sends ciphertext bytes `start..end` in one `PATCH`; returns the server's new offset.
async fn patch(
    api: &Api,
    location: &Url,
    source: &Arc<SourceFile>,
    encryption: &Encryption,
    start: u64,
    end: u64,
    bar: &ProgressBar,
) -> Result<u64, Attempt> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL_DEPTH);
    let producer = {
        let source = source.clone();
        let encryption = encryption.clone();
        let bar = bar.clone();
        tokio::task::spawn_blocking(move || produce(&source, &encryption, start, end, &tx, &bar))
    };
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let sent = api
        .request(Method::PATCH, location.clone())
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", start.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .header("Content-Length", (end - start).to_string())
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    // A local failure (the file unreadable or changed) is not the network's fault.
    match producer.await {
        Ok(Err(Produce::Local(e))) => return Err(Attempt::Fatal(e)),
        Ok(_) => {}
        Err(e) => return Err(Attempt::Fatal(ClientError::Local(e.to_string()))),
    }
    let response = sent.map_err(|e| Attempt::Retry(error_chain(e).join(": ")))?;
    let status = response.status();
    if status == StatusCode::NO_CONTENT || status == StatusCode::OK {
        return upload_offset(&response)
            .ok_or_else(|| Attempt::Retry("the answer has no Upload-Offset".into()));
    }
    // A full disk does not free itself within the retries: say so at once.
    let retryable = status != StatusCode::INSUFFICIENT_STORAGE
        && (status.is_server_error()
            || status == StatusCode::CONFLICT
            || status == StatusCode::TOO_MANY_REQUESTS);
    if retryable {
        return Err(Attempt::Retry(error_message(response).await));
    }
    Err(Attempt::Fatal(ClientError::Api(format!(
        "uploading {} failed: {}",
        source.path.display(),
        error_message(response).await
    ))))
}

/// Why the encrypting thread stopped early.
enum Produce {
    /// The request ended (the connection dropped): nothing to report here.
    Cancelled,
    Local(ClientError),
}

/// Produces SBX1 bytes `start..end` of the file into `tx`.
fn produce(
    source: &SourceFile,
    encryption: &Encryption,
    start: u64,
    end: u64,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    bar: &ProgressBar,
) -> Result<(), Produce> {
    let local = |e: std::io::Error| Produce::Local(ClientError::local(source.path.display(), e));
    let mut pos = start;
    let emit = |data: Bytes, pos: &mut u64| -> Result<(), Produce> {
        let take = (data.len() as u64).min(end - *pos) as usize;
        if take == 0 {
            return Ok(());
        }
        tx.blocking_send(Ok(data.slice(..take)))
            .map_err(|_| Produce::Cancelled)?;
        *pos += take as u64;
        bar.inc(take as u64);
        Ok(())
    };
    let header = &encryption.header;
    let header_len = HEADER_LEN as u64;
    if pos < header_len {
        emit(
            Bytes::copy_from_slice(&header.to_bytes()[pos as usize..]),
            &mut pos,
        )?;
    }
    if pos >= end {
        return Ok(());
    }
    let segment = u32::try_from((pos - header_len) / header.sealed_segment_size() as u64)
        .map_err(|_| local(std::io::Error::other("file too large")))?;
    let mut skip = (pos - header.segment_offset(segment)) as usize;
    let mut encryptor = Some(SegmentEncryptor::resume(
        &encryption.key,
        encryption.file_id,
        header,
        segment,
    ));
    let plain_start = header.plaintext_offset(segment);
    let mut file = std::fs::File::open(&source.path).map_err(local)?;
    file.seek(SeekFrom::Start(plain_start)).map_err(local)?;
    let mut remaining = source.len - plain_start;
    let mut chunk = Zeroizing::new(vec![0u8; READ_CHUNK]);
    let capacity = READ_CHUNK + 2 * header.sealed_segment_size();
    let mut out = Vec::with_capacity(capacity);
    while pos < end {
        let Some(current) = encryptor.as_mut() else {
            break;
        };
        if remaining == 0 {
            let last = encryptor.take().expect("checked above");
            last.finish(&mut out)
                .map_err(|e| local(std::io::Error::other(e)))?;
        } else {
            let want = (remaining as usize).min(READ_CHUNK);
            let read = match file.read(&mut chunk[..want]) {
                Ok(0) => {
                    return Err(local(std::io::Error::other(
                        "the file got shorter while it was being sent",
                    )));
                }
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(local(e)),
            };
            remaining -= read as u64;
            current
                .push(&chunk[..read], &mut out)
                .map_err(|e| local(std::io::Error::other(e)))?;
        }
        if skip >= out.len() {
            skip -= out.len();
            out.clear();
        } else {
            // The sealed chunk becomes the body chunk as it is, without a copy.
            let sealed = Bytes::from(std::mem::replace(&mut out, Vec::with_capacity(capacity)));
            emit(sealed.slice(skip..), &mut pos)?;
            skip = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sbx1::encrypt_stream_with_header;

    /// What `produce` sends for ciphertext bytes `start..end`.
    fn produced(source: &SourceFile, encryption: &Encryption, start: u64, end: u64) -> Vec<u8> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
        let result = produce(source, encryption, start, end, &tx, &ProgressBar::hidden());
        assert!(result.is_ok(), "{start}..{end}");
        drop(tx);
        let mut got = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            got.extend_from_slice(&chunk.unwrap());
        }
        got
    }

    #[test]
    fn any_resumed_range_is_exactly_those_bytes_of_the_whole_encryption() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, 65_536, 300_000] {
            let path = dir.path().join(format!("f{len}"));
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            std::fs::write(&path, &data).unwrap();
            let source = SourceFile::stat(path).unwrap();
            let encryption = Encryption {
                key: Arc::new(Dek::generate()),
                file_id: Uuid::from_u128(5),
                header: Header::generate(),
            };
            let mut whole = Vec::new();
            encrypt_stream_with_header(
                &data[..],
                &mut whole,
                &encryption.key,
                encryption.file_id,
                &encryption.header,
            )
            .unwrap();
            let total = whole.len();
            let segment = encryption.header.sealed_segment_size();
            let mut ranges = vec![(0, total), (0, 10), (10, total), (total - 1, total)];
            if total > HEADER_LEN + segment + 100 {
                ranges.extend([
                    (40, 70_000),
                    (HEADER_LEN + segment, total),
                    (HEADER_LEN + segment - 1, HEADER_LEN + segment + 1),
                    (131_000, total.min(200_000)),
                ]);
            }
            for (start, end) in ranges {
                assert_eq!(
                    produced(&source, &encryption, start as u64, end as u64),
                    &whole[start..end],
                    "length {len}, bytes {start}..{end}"
                );
            }
        }
    }

    #[test]
    fn directories_and_missing_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = SourceFile::stat(dir.path().to_owned()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        assert!(SourceFile::stat(dir.path().join("missing")).is_err());
    }
}
