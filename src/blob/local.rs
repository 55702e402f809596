//! Blobs as files under `<data>/blobs/`, sharded by the first byte of BLAKE3(key) so no
//! directory grows past a few thousand entries whatever the id scheme (UUIDv7 ids share
//! their leading timestamp bytes, so sharding by id prefix would not spread).
//!
//! Writes go to `blobs/.tmp/`, are fsynced, renamed into place, and the shard directory is
//! fsynced (and, when the shard is new, the root that lists it): a reader sees no blob or
//! the whole blob, and so does a crash.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::fs;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{BlobError, BlobInfo, BlobKey, BlobReader, BlobStore, ReadThen};

/// Where writes in progress live, inside the store's root; never a blob key (keys cannot
/// start with a dot).
pub const TMP_DIR: &str = ".tmp";
const COPY_BUFFER: usize = 256 * 1024;

/// Where the blob `key` lives under a store rooted at `root`: a shard directory named by
/// the first byte of the key's BLAKE3, so no directory grows huge.
pub fn blob_path(root: &Path, key: &BlobKey) -> PathBuf {
    let shard = blake3::hash(key.as_str().as_bytes()).as_bytes()[0];
    root.join(format!("{shard:02x}")).join(key.as_str())
}

#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    /// Shard directories whose entry in `root` is known to be durable.
    synced_shards: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
}

impl LocalBlobStore {
    /// Opens the store rooted at `root`, creating it, and removes temporary files left by
    /// writes that a crash interrupted (they were never visible, so nothing is lost).
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        fs::create_dir_all(root.join(TMP_DIR)).await?;
        let mut entries = fs::read_dir(root.join(TMP_DIR)).await?;
        while let Some(entry) = entries.next_entry().await? {
            tracing::info!(path = %entry.path().display(), "removing interrupted blob write");
            fs::remove_file(entry.path()).await?;
        }
        Ok(Self {
            root,
            synced_shards: std::sync::Arc::default(),
        })
    }

    /// Where the blob for `key` lives.
    pub fn path_of(&self, key: &BlobKey) -> PathBuf {
        blob_path(&self.root, key)
    }

    fn tmp_path(&self) -> PathBuf {
        self.root
            .join(TMP_DIR)
            .join(uuid::Uuid::now_v7().simple().to_string())
    }
}

/// Removes a temporary file unless the write it belongs to completed.
struct TmpGuard(Option<PathBuf>);

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn not_found_as(err: io::Error) -> BlobError {
    if err.kind() == io::ErrorKind::NotFound {
        BlobError::NotFound
    } else {
        BlobError::Io(err)
    }
}

/// Size and BLAKE3 of the file at `path`.
async fn hash_file(path: &Path) -> io::Result<BlobInfo> {
    let mut file = fs::File::open(path).await?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(BlobInfo {
        size,
        blake3: hasher.finalize().to_hex().to_string(),
    })
}

/// Creates a blob's shard directory if needed and makes its entry in the store's root
/// durable before a blob is renamed into it: a blob in a directory that a crash forgets
/// is lost with it, however well the blob and its shard were synced. Each shard's root
/// entry is synced once per process (`synced` remembers which), whoever created it, so
/// a shard another request is still creating is never taken as durable.
async fn ensure_shard(
    shard: &Path,
    synced: &std::sync::Mutex<std::collections::HashSet<PathBuf>>,
) -> io::Result<()> {
    if synced.lock().expect("never poisoned").contains(shard) {
        return Ok(());
    }
    fs::create_dir_all(shard).await?;
    fsync_dir(
        shard
            .parent()
            .expect("a shard directory has the store's root as parent"),
    )
    .await?;
    synced
        .lock()
        .expect("never poisoned")
        .insert(shard.to_owned());
    Ok(())
}

/// Makes a rename or create inside `dir` durable, off the runtime.
pub(crate) async fn fsync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || crate::data_dir::fsync_dir(&dir))
        .await
        .map_err(io::Error::other)?
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(
        &self,
        key: &BlobKey,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<BlobInfo, BlobError> {
        let tmp = self.tmp_path();
        let mut guard = TmpGuard(Some(tmp.clone()));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await?;

        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).await?;
            size += n as u64;
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);

        let target = self.path_of(key);
        let shard = target.parent().expect("blob paths have a shard directory");
        ensure_shard(shard, &self.synced_shards).await?;
        fs::rename(&tmp, &target).await?;
        guard.0 = None;
        fsync_dir(shard).await?;
        Ok(BlobInfo {
            size,
            blake3: hasher.finalize().to_hex().to_string(),
        })
    }

    async fn put_file(
        &self,
        key: &BlobKey,
        path: &Path,
        known: Option<BlobInfo>,
    ) -> Result<BlobInfo, BlobError> {
        let file = fs::File::open(path).await?;
        let size = file.metadata().await?.len();
        let info = match known {
            Some(known) if known.size == size => known,
            // Hash what is there (the BLAKE3 that `doctor --scrub` checks later).
            _ => hash_file(path).await?,
        };
        file.sync_all().await?;
        drop(file);
        let target = self.path_of(key);
        let shard = target.parent().expect("blob paths have a shard directory");
        ensure_shard(shard, &self.synced_shards).await?;
        match fs::rename(path, &target).await {
            Ok(()) => {}
            // Another filesystem: copy durably through a temporary file instead.
            Err(e) if e.raw_os_error() == Some(18) => {
                let mut source = fs::File::open(path).await?;
                self.put(key, &mut source).await?;
                fs::remove_file(path).await?;
            }
            Err(e) => return Err(e.into()),
        }
        fsync_dir(shard).await?;
        Ok(info)
    }

    async fn open(&self, key: &BlobKey, offset: u64) -> Result<BlobReader, BlobError> {
        let mut file = fs::File::open(self.path_of(key))
            .await
            .map_err(not_found_as)?;
        let size = file.metadata().await?.len();
        if offset > size {
            return Err(BlobError::OffsetPastEnd { offset, size });
        }
        if offset > 0 {
            file.seek(SeekFrom::Start(offset)).await?;
        }
        Ok(Box::pin(file))
    }

    async fn read_at(
        &self,
        key: &BlobKey,
        offset: u64,
        len: usize,
        then: ReadThen,
    ) -> Result<bytes::Bytes, BlobError> {
        let path = self.path_of(key);
        // Allocated here, on a runtime thread, not on the blocking thread: glibc keeps what
        // is freed in the arena it came from, and the runtime's few threads (which free
        // these buffers once the response has sent them) share a few arenas, where every
        // blocking thread of the pool would have had its own and kept megabytes in each.
        let mut buf = Vec::with_capacity(len);
        tokio::task::spawn_blocking(move || {
            use std::io::{Read as _, Seek as _};
            let mut file = std::fs::File::open(path).map_err(not_found_as)?;
            file.seek(SeekFrom::Start(offset))?;
            // Straight into the caller's buffer, which is not zeroed first: `read_to_end`
            // fills spare capacity as it is.
            file.take(len as u64).read_to_end(&mut buf)?;
            if buf.len() != len {
                return Err(BlobError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(then(buf)?)
        })
        .await
        .map_err(|e| BlobError::Io(io::Error::other(e)))?
    }

    async fn size(&self, key: &BlobKey) -> Result<u64, BlobError> {
        Ok(fs::metadata(self.path_of(key))
            .await
            .map_err(not_found_as)?
            .len())
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let path = self.path_of(key);
        match fs::remove_file(&path).await {
            Ok(()) => {
                fsync_dir(path.parent().expect("shard directory")).await?;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
