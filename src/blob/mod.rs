//! Blob storage: where ciphertext bytes live, addressed by a [`BlobKey`].
//!
//! The trait is what features use; the local filesystem implementation is in [`local`],
//! the S3-compatible one in [`s3`] (`[storage] backend`, docs/storage.md). Contract for every backend: a blob is
//! either absent or complete; `put` streams (never buffers a whole blob) and only makes the
//! blob visible once every byte is durable.

pub mod local;
pub mod s3;

use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use tokio::io::AsyncRead;

pub use local::LocalBlobStore;
pub use s3::S3BlobStore;

/// A readable stream of blob bytes.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// What [`BlobStore::read_at`] does with the bytes it read, on the thread that read them.
pub type ReadThen = Box<dyn FnOnce(Vec<u8>) -> std::io::Result<bytes::Bytes> + Send>;

/// Names one blob. Keys are 1-128 characters of `[A-Za-z0-9_-]`, so a key can never
/// escape the store's directory or collide with its temporary files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn new(key: impl Into<String>) -> Result<Self, BlobError> {
        let key = key.into();
        let valid = !key.is_empty()
            && key.len() <= 128
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(key))
        } else {
            Err(BlobError::InvalidKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a completed `put` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
    /// BLAKE3 of the stored bytes, hex.
    pub blake3: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob keys are 1-128 characters of A-Z, a-z, 0-9, '-' and '_'")]
    InvalidKey,
    #[error("blob not found")]
    NotFound,
    #[error("offset {offset} is past the end of the blob ({size} bytes)")]
    OffsetPastEnd { offset: u64, size: u64 },
    #[error("blob storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An object store refused or failed a request (its message names no credential).
    #[error("object storage error: {0}")]
    Store(String),
}

#[async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug + 'static {
    /// Streams `reader` into the blob `key`, replacing any previous blob atomically. If the
    /// reader fails or the future is dropped, nothing becomes visible.
    async fn put(
        &self,
        key: &BlobKey,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<BlobInfo, BlobError>;

    /// Moves the complete file at `path` (written by the caller on the same machine, such
    /// as a finished upload) into the blob `key`, durably; returns its size and BLAKE3.
    /// `known` is the size and BLAKE3 the caller computed while writing it: trusted when
    /// the size matches, sparing a read of the whole file. The file is gone from `path`
    /// afterwards.
    async fn put_file(
        &self,
        key: &BlobKey,
        path: &std::path::Path,
        known: Option<BlobInfo>,
    ) -> Result<BlobInfo, BlobError>;

    /// Opens the blob for reading from byte `offset`.
    async fn open(&self, key: &BlobKey, offset: u64) -> Result<BlobReader, BlobError>;

    /// Reads exactly `len` bytes from byte `offset` and hands them to `then` on the
    /// blocking thread that read them: a ranged read, several of which may run at once (a
    /// download reads ahead while earlier parts are sent), and opens what it reads there
    /// rather than passing it to another thread first.
    async fn read_at(
        &self,
        key: &BlobKey,
        offset: u64,
        len: usize,
        then: ReadThen,
    ) -> Result<bytes::Bytes, BlobError>;

    /// Size of the blob in bytes.
    async fn size(&self, key: &BlobKey) -> Result<u64, BlobError>;

    /// Deletes the blob; deleting a missing blob is not an error (sweeps retry).
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
}
