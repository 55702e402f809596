//! Blobs as objects in an S3-compatible bucket (`[storage] backend = "s3"`,
//! docs/storage.md), on the `object_store` crate's S3 client (SigV4 on ring, rustls).
//!
//! The object for key `K` is `<prefix>/K`. A blob smaller than one part is sent with one
//! PUT; a larger one as a multipart upload, one part at a time from the reader (only the
//! part being sent is in memory). S3 makes an object visible only when its single PUT or
//! its CompleteMultipartUpload succeeds, and acknowledges either only once the bytes are
//! durable: a reader sees no blob or the whole blob, and so does a crash of sealbox.
//!
//! A multipart upload that is never completed keeps its parts (and their cost) in the
//! bucket until aborted. Each one is written to a journal file in `<data>/s3-multipart/`
//! (fsynced) before its first part is sent and removed once it was completed or aborted.
//! Whatever the journal still lists at start-up belonged to a process that stopped
//! mid-upload; nothing can own it any more (a finalize starts over from its `.part`), so
//! [`S3BlobStore::open`] aborts it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, PutPayload, RetryConfig,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::local::fsync_dir;
use super::{BlobError, BlobInfo, BlobKey, BlobReader, BlobStore, ReadThen};
use crate::config::storage::S3Config;

/// The journal of multipart uploads in progress, inside the data directory.
pub const JOURNAL_DIR: &str = "s3-multipart";
/// The object `doctor` writes and deletes to prove the store is writable; never a blob key
/// (keys cannot start with a dot).
const PROBE_PREFIX: &str = ".sealbox-probe-";

/// What one journal file records: an upload that must be completed or aborted.
#[derive(Debug, Serialize, Deserialize)]
struct JournalEntry {
    location: String,
    upload_id: String,
}

/// One stored object, as `list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The object's key within the bucket.
    pub location: String,
    /// The blob key, when the object's name is one (under the prefix, a valid key).
    pub blob_key: Option<BlobKey>,
    pub size: u64,
}

/// What `doctor` learned from a probe of the store.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Server clock minus local clock, from the `Date` header of the store's response.
    pub clock_skew: Option<time::Duration>,
}

#[derive(Clone)]
pub struct S3BlobStore {
    store: Arc<AmazonS3>,
    prefix: ObjectPath,
    part_size: usize,
    journal: PathBuf,
    /// For messages: bucket, prefix and endpoint, never the credentials.
    describe: String,
    /// The base URL whose `Date` header `probe` reads.
    endpoint_url: String,
    bucket: String,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("store", &self.describe)
            .field("part_size", &self.part_size)
            .field("credentials", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// An operation of the store, as the metrics name it.
#[derive(Clone, Copy)]
enum Op {
    Put,
    CreateMultipart,
    PutPart,
    CompleteMultipart,
    AbortMultipart,
    Get,
    Head,
    Delete,
    List,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::CreateMultipart => "create_multipart",
            Op::PutPart => "put_part",
            Op::CompleteMultipart => "complete_multipart",
            Op::AbortMultipart => "abort_multipart",
            Op::Get => "get",
            Op::Head => "head",
            Op::Delete => "delete",
            Op::List => "list",
        }
    }
}

/// Counts one request of `op` and, when it failed other than with "not found", an error.
fn counted<T>(op: Op, result: object_store::Result<T>) -> object_store::Result<T> {
    let failed = matches!(&result, Err(e) if !matches!(e, object_store::Error::NotFound { .. }));
    crate::metrics::blob_request("s3", op.label(), failed);
    result
}

fn store_error(e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound,
        other => BlobError::Store(other.to_string()),
    }
}

impl S3BlobStore {
    /// Connects to the bucket `config` names: checks that it can be listed with the
    /// configured credentials (a clear start-up error otherwise), then aborts the
    /// multipart uploads that the journal under `data_root` lists.
    pub async fn open(config: &S3Config, data_root: &Path) -> Result<Self, BlobError> {
        let store = Self::connect(config, data_root)?;
        let first = store.list_page().await;
        if let Err(e) = first {
            return Err(BlobError::Store(format!(
                "cannot use S3 storage ({}): {e}; check storage.s3.endpoint, bucket, region \
                 and credentials",
                store.describe
            )));
        }
        store.abort_journaled().await?;
        Ok(store)
    }

    /// Builds the client without contacting the store (`doctor` probes it itself).
    pub fn connect(config: &S3Config, data_root: &Path) -> Result<Self, BlobError> {
        let secret = config
            .secret()
            .map_err(|e| BlobError::Store(e.to_string()))?;
        let endpoint = config.endpoint.trim().trim_end_matches('/').to_owned();
        let mut options =
            ClientOptions::new().with_timeout(Duration::from_secs(config.request_timeout_secs));
        if endpoint.starts_with("http://") {
            options = options.with_allow_http(true);
        }
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: config.max_retries as usize,
            retry_timeout: Duration::from_secs(config.request_timeout_secs.saturating_mul(2)),
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(secret.expose())
            .with_virtual_hosted_style_request(config.virtual_hosted_style)
            .with_client_options(options)
            .with_retry(retry);
        let endpoint_url = if endpoint.is_empty() {
            format!("https://s3.{}.amazonaws.com", config.region)
        } else {
            builder = builder.with_endpoint(&endpoint);
            endpoint.clone()
        };
        let store = builder
            .build()
            .map_err(|e| BlobError::Store(format!("S3 storage ({}): {e}", config.describe())))?;
        let prefix = ObjectPath::parse(config.prefix.trim_matches('/'))
            .map_err(|e| BlobError::Store(format!("storage.s3.prefix: {e}")))?;
        Ok(Self {
            store: Arc::new(store),
            prefix,
            part_size: usize::try_from(config.part_size_bytes).unwrap_or(usize::MAX),
            journal: data_root.join(JOURNAL_DIR),
            describe: config.describe(),
            endpoint_url,
            bucket: config.bucket.clone(),
        })
    }

    /// Bucket, prefix and endpoint, for messages.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn location(&self, key: &BlobKey) -> ObjectPath {
        self.prefix.child(key.as_str())
    }

    /// The first page of the listing under the prefix (proves the credentials work).
    async fn list_page(&self) -> object_store::Result<()> {
        let mut listing = self.store.list(Some(&self.prefix));
        let first = listing.try_next().await.map(|_| ());
        counted(Op::List, first)
    }

    /// Every object under the prefix, for `doctor --scrub`.
    pub async fn list(&self) -> Result<Vec<ListedObject>, BlobError> {
        let listed: object_store::Result<Vec<_>> =
            self.store.list(Some(&self.prefix)).try_collect().await;
        let listed = counted(Op::List, listed).map_err(store_error)?;
        let mut found: Vec<ListedObject> = listed
            .into_iter()
            .map(|meta| {
                let location = meta.location.to_string();
                let blob_key = meta
                    .location
                    .prefix_match(&self.prefix)
                    .and_then(|mut rest| {
                        let only = rest.next()?;
                        rest.next().is_none().then_some(only)
                    })
                    .and_then(|part| BlobKey::new(part.as_ref()).ok());
                ListedObject {
                    location,
                    blob_key,
                    size: meta.size,
                }
            })
            .collect();
        found.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(found)
    }

    /// Where the blob `key` is, as `list` names it (`bucket/prefix/key` in messages).
    pub fn location_of(&self, key: &BlobKey) -> String {
        self.location(key).to_string()
    }

    /// `s3://bucket/location`, for messages.
    pub fn url_of(&self, location: &str) -> String {
        format!("s3://{}/{location}", self.bucket)
    }

    /// Proves the store is reachable and writable: writes a probe object, reads it back,
    /// deletes it; and measures the clock skew from the store's `Date` header (SigV4
    /// refuses requests more than 15 minutes off).
    pub async fn probe(&self) -> Result<ProbeReport, BlobError> {
        let location = self
            .prefix
            .child(format!("{PROBE_PREFIX}{}", uuid::Uuid::now_v7().simple()));
        let body = Bytes::from_static(b"sealbox doctor probe\n");
        counted(
            Op::Put,
            self.store
                .put(&location, PutPayload::from_bytes(body.clone()))
                .await,
        )
        .map_err(|e| BlobError::Store(format!("write a probe object: {e}")))?;
        let read = counted(Op::Get, self.store.get(&location).await)
            .map_err(|e| BlobError::Store(format!("read the probe object: {e}")));
        let read = match read {
            Ok(got) => got
                .bytes()
                .await
                .map_err(|e| BlobError::Store(format!("read the probe object: {e}"))),
            Err(e) => Err(e),
        };
        let deleted = counted(Op::Delete, self.store.delete(&location).await)
            .map_err(|e| BlobError::Store(format!("delete the probe object: {e}")));
        if read? != body {
            return Err(BlobError::Store(
                "the probe object read back differs from what was written".into(),
            ));
        }
        deleted?;
        Ok(ProbeReport {
            clock_skew: self.clock_skew().await,
        })
    }

    /// Server clock minus local clock from the `Date` header of a plain request to the
    /// endpoint (any answer, even 403, carries one); `None` when there is none.
    async fn clock_skew(&self) -> Option<time::Duration> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .ok()?;
        let before = time::OffsetDateTime::now_utc();
        let response = client.head(&self.endpoint_url).send().await.ok()?;
        let after = time::OffsetDateTime::now_utc();
        let date = response
            .headers()
            .get(reqwest::header::DATE)?
            .to_str()
            .ok()?;
        let server: time::OffsetDateTime = httpdate::parse_http_date(date).ok()?.into();
        let local = before + (after - before) / 2;
        Some(server - local)
    }

    fn journal_path(&self) -> PathBuf {
        self.journal.join(uuid::Uuid::now_v7().simple().to_string())
    }

    /// Aborts every multipart upload the journal lists (a process that stopped left them).
    /// One that cannot be aborted now (the store failing, not refusing) keeps its entry
    /// for the next start, with a warning; start-up goes on.
    async fn abort_journaled(&self) -> Result<(), BlobError> {
        tokio::fs::create_dir_all(&self.journal).await?;
        let mut entries = tokio::fs::read_dir(&self.journal).await?;
        let mut removed = false;
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            let parsed = tokio::fs::read(&path)
                .await
                .ok()
                .and_then(|raw| serde_json::from_slice::<JournalEntry>(&raw).ok());
            // A temporary journal file left by a crash was never renamed into place: its
            // upload had sent no part yet, and its id may be lost with it (the bucket's
            // lifecycle rule for incomplete multipart uploads collects those,
            // docs/storage.md).
            if let Some(upload) = parsed {
                let location = ObjectPath::from(upload.location.as_str());
                match counted(
                    Op::AbortMultipart,
                    self.store
                        .abort_multipart(&location, &upload.upload_id)
                        .await,
                ) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        tracing::info!(object = %location, "aborted an interrupted multipart upload");
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            object = %location,
                            "could not abort an interrupted multipart upload; the next start retries"
                        );
                        continue;
                    }
                }
            }
            tokio::fs::remove_file(&path).await?;
            removed = true;
        }
        if removed {
            fsync_dir(&self.journal).await?;
        }
        Ok(())
    }

    /// Streams `reader` into the object for `key`; returns what was sent (size, BLAKE3).
    async fn upload(
        &self,
        key: &BlobKey,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<BlobInfo, BlobError> {
        let location = self.location(key);
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let first = read_part(reader, self.part_size).await?;
        hasher.update(&first);
        size += first.len() as u64;
        if first.len() < self.part_size {
            // All of it fits in one part: one PUT, visible only once complete.
            counted(
                Op::Put,
                self.store
                    .put(&location, PutPayload::from_bytes(first))
                    .await,
            )
            .map_err(store_error)?;
        } else {
            let upload = self.begin_multipart(&location).await?;
            let mut parts: Vec<PartId> = Vec::new();
            let mut next = first;
            loop {
                let part = counted(
                    Op::PutPart,
                    self.store
                        .put_part(
                            &location,
                            &upload.id,
                            parts.len(),
                            PutPayload::from_bytes(next),
                        )
                        .await,
                )
                .map_err(store_error)?;
                parts.push(part);
                next = read_part(reader, self.part_size).await?;
                if next.is_empty() {
                    break;
                }
                hasher.update(&next);
                size += next.len() as u64;
            }
            counted(
                Op::CompleteMultipart,
                self.store
                    .complete_multipart(&location, &upload.id, parts)
                    .await,
            )
            .map_err(store_error)?;
            upload.finished().await?;
        }
        Ok(BlobInfo {
            size,
            blake3: hasher.finalize().to_hex().to_string(),
        })
    }

    /// Starts a multipart upload and journals it before any part is sent.
    async fn begin_multipart(&self, location: &ObjectPath) -> Result<Multipart, BlobError> {
        let id = counted(
            Op::CreateMultipart,
            self.store.create_multipart(location).await,
        )
        .map_err(store_error)?;
        let journal = self.journal_path();
        let entry = JournalEntry {
            location: location.to_string(),
            upload_id: id.clone(),
        };
        let upload = Multipart {
            store: self.clone(),
            location: location.clone(),
            id,
            journal: journal.clone(),
            open: true,
        };
        let raw = serde_json::to_vec(&entry).expect("a journal entry serializes");
        write_durably(&journal, &raw).await?;
        Ok(upload)
    }
}

/// A multipart upload in progress: aborted (and its journal entry removed) when dropped
/// before [`Multipart::finished`], whether by an error or a dropped future.
struct Multipart {
    store: S3BlobStore,
    location: ObjectPath,
    id: String,
    journal: PathBuf,
    open: bool,
}

impl Multipart {
    /// The upload was completed: forget its journal entry.
    async fn finished(mut self) -> Result<(), BlobError> {
        self.open = false;
        tokio::fs::remove_file(&self.journal).await?;
        fsync_dir(&self.store.journal).await?;
        Ok(())
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let (store, location, id, journal) = (
            self.store.clone(),
            self.location.clone(),
            self.id.clone(),
            self.journal.clone(),
        );
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // The journal entry stays; the next start aborts it.
        };
        runtime.spawn(async move {
            match counted(
                Op::AbortMultipart,
                store.store.abort_multipart(&location, &id).await,
            ) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    let _ = tokio::fs::remove_file(&journal).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, object = %location, "could not abort a multipart upload; the next start retries");
                }
            }
        });
    }
}

/// Reads up to `len` bytes (fewer only at the end of the reader).
async fn read_part(
    reader: &mut (dyn AsyncRead + Send + Unpin),
    len: usize,
) -> Result<Bytes, BlobError> {
    let mut buf = Vec::with_capacity(len);
    let mut limited = reader.take(len as u64);
    limited.read_to_end(&mut buf).await?;
    Ok(Bytes::from(buf))
}

/// Writes a journal entry whole or not at all (never a file with a half-written upload
/// id): `data_dir::write_atomic`, off the runtime.
async fn write_durably(path: &Path, contents: &[u8]) -> io::Result<()> {
    let (path, contents) = (path.to_owned(), contents.to_vec());
    tokio::task::spawn_blocking(move || crate::data_dir::write_atomic(&path, &contents, 0o600))
        .await
        .map_err(io::Error::other)?
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(
        &self,
        key: &BlobKey,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<BlobInfo, BlobError> {
        self.upload(key, reader).await
    }

    async fn put_file(
        &self,
        key: &BlobKey,
        path: &Path,
        known: Option<BlobInfo>,
    ) -> Result<BlobInfo, BlobError> {
        let mut file = tokio::fs::File::open(path).await?;
        let info = self.upload(key, &mut file).await?;
        drop(file);
        // What was sent is what the upload wrote (the digest kept while it was written).
        if let Some(known) = known
            && known.size == info.size
            && known.blake3 != info.blake3
        {
            return Err(BlobError::Store(format!(
                "the staged bytes of blob {key} changed before they were stored"
            )));
        }
        // And what the store holds is what was sent.
        let stored = self.size(key).await?;
        if stored != info.size {
            return Err(BlobError::Store(format!(
                "blob {key} was stored with {stored} bytes, {} were sent",
                info.size
            )));
        }
        tokio::fs::remove_file(path).await?;
        Ok(info)
    }

    async fn open(&self, key: &BlobKey, offset: u64) -> Result<BlobReader, BlobError> {
        let size = self.size(key).await?;
        if offset > size {
            return Err(BlobError::OffsetPastEnd { offset, size });
        }
        if offset == size {
            return Ok(Box::pin(tokio::io::empty()));
        }
        let options = GetOptions {
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            ..GetOptions::default()
        };
        let got = counted(
            Op::Get,
            self.store.get_opts(&self.location(key), options).await,
        )
        .map_err(store_error)?;
        let stream = got.into_stream().map_err(|e| {
            crate::metrics::blob_request("s3", Op::Get.label(), true);
            io::Error::other(e)
        });
        Ok(Box::pin(tokio_util::io::StreamReader::new(stream)))
    }

    async fn read_at(
        &self,
        key: &BlobKey,
        offset: u64,
        len: usize,
        then: ReadThen,
    ) -> Result<Bytes, BlobError> {
        let end = offset + len as u64;
        let bytes = counted(
            Op::Get,
            self.store.get_range(&self.location(key), offset..end).await,
        )
        .map_err(store_error)?;
        if bytes.len() != len {
            return Err(BlobError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        // Decrypting is CPU work: off the runtime's threads, as the local store does it.
        tokio::task::spawn_blocking(move || Ok(then(Vec::from(bytes))?))
            .await
            .map_err(|e| BlobError::Io(io::Error::other(e)))?
    }

    async fn size(&self, key: &BlobKey) -> Result<u64, BlobError> {
        let meta =
            counted(Op::Head, self.store.head(&self.location(key)).await).map_err(store_error)?;
        Ok(meta.size)
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match counted(Op::Delete, self.store.delete(&self.location(key)).await) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }
}
