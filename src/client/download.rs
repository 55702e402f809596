//! Downloads into a temporary file next to the destination, decrypted (end-to-end) and
//! verified segment by segment as the bytes arrive, then moved into place. A failed
//! download leaves nothing behind.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use reqwest::{Method, StatusCode};
use url::Url;
use uuid::Uuid;

use super::ClientError;
use super::http::{Api, error_chain, error_message};
use crate::crypto::Dek;
use crate::crypto::sbx1::{HEADER_LEN, Header, Layout, SegmentDecryptor};

/// How to read a file's bytes: as they are (server mode), or as SBX1 under the transfer
/// key and the client file id (end-to-end).
pub enum Contents<'a> {
    Plain,
    Sbx1 { key: &'a Dek, file_id: Uuid },
}

/// The temporary name a download is written to before it is complete.
pub fn part_path(destination: &Path) -> PathBuf {
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    destination.with_file_name(format!(".{name}.sealbox-part"))
}

/// Downloads the file at `url(false)` (size `size` as the server lists it) to
/// `destination`; `overwrite` allows replacing an existing file. A first answer `401`
/// (the download token in the URL expired or was renewed under the request) asks for
/// `url(true)`, a URL under a renewed token, once.
pub async fn download(
    api: &Api,
    url: impl AsyncFn(bool) -> Result<Url, ClientError>,
    size: u64,
    contents: Contents<'_>,
    destination: &Path,
    overwrite: bool,
    bar: &ProgressBar,
) -> Result<(), ClientError> {
    let part = part_path(destination);
    let result = download_to_part(api, &url, size, contents, &part, bar).await;
    let result = result.and_then(|()| {
        if overwrite {
            std::fs::rename(&part, destination)
        } else {
            move_no_clobber(&part, destination)
        }
        .map_err(|e| ClientError::local(destination.display(), e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// Moves `from` to `to` unless `to` exists. A hard link is atomic about that; where the
/// file system has no hard links, a check then a rename.
fn move_no_clobber(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if to.symlink_metadata().is_err() => std::fs::rename(from, to),
        Err(e) => Err(e),
    }
}

async fn download_to_part(
    api: &Api,
    url: &impl AsyncFn(bool) -> Result<Url, ClientError>,
    size: u64,
    contents: Contents<'_>,
    part: &Path,
    bar: &ProgressBar,
) -> Result<(), ClientError> {
    let mut response = api
        .send(api.request(Method::GET, url(false).await?))
        .await?;
    if response.status() == StatusCode::UNAUTHORIZED {
        response = api.send(api.request(Method::GET, url(true).await?)).await?;
    }
    if response.status() != StatusCode::OK {
        return Err(ClientError::Api(super_status_message(response).await));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(part)
        .map_err(|e| ClientError::local(part.display(), e))?;
    let syncer = BackgroundSync::new(&file).map_err(|e| ClientError::local(part.display(), e))?;
    let mut sink = Some(Sink {
        file,
        part: part.to_owned(),
        sbx1: match contents {
            Contents::Plain => None,
            Contents::Sbx1 { key, file_id } => Some(Sbx1Reader::new(key, file_id, size)),
        },
        out: Vec::with_capacity(BATCH_BYTES + (64 << 10)),
        syncer,
    });
    // Chunks as they arrive, handed to a blocking thread a batch at a time: that thread
    // decrypts and writes one batch while this one receives (and TLS-decrypts) the next.
    let mut batch: Vec<bytes::Bytes> = Vec::new();
    let mut batch_len = 0usize;
    let mut pending: Option<tokio::task::JoinHandle<(Sink, Result<(), ClientError>)>> = None;
    let mut received = 0u64;
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            ClientError::Api(format!(
                "the download broke off after {received} of {size} bytes: {}",
                error_chain(e).join(": ")
            ))
        })?;
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            received += chunk.len() as u64;
            if received > size {
                return Err(ClientError::Api(
                    "the server sent more bytes than the file has".into(),
                ));
            }
            bar.inc(chunk.len() as u64);
            batch_len += chunk.len();
            batch.push(chunk);
        }
        if batch_len >= BATCH_BYTES || (done && !batch.is_empty()) {
            if let Some(task) = pending.take() {
                sink = Some(joined(task).await?);
            }
            let mut writer = sink.take().expect("the sink is back from its last batch");
            let work = std::mem::take(&mut batch);
            batch_len = 0;
            pending = Some(tokio::task::spawn_blocking(move || {
                let result = writer.write(&work);
                (writer, result)
            }));
        }
        if done {
            break;
        }
    }
    if let Some(task) = pending.take() {
        sink = Some(joined(task).await?);
    }
    if received != size {
        return Err(ClientError::Api(format!(
            "the download is incomplete: {received} of {size} bytes"
        )));
    }
    let sink = sink.expect("the sink is back from its last batch");
    tokio::task::spawn_blocking(move || sink.finish())
        .await
        .map_err(|e| ClientError::Local(e.to_string()))?
}

/// Bytes received before they are handed to the writing thread.
const BATCH_BYTES: usize = 1 << 20;

async fn joined(
    task: tokio::task::JoinHandle<(Sink, Result<(), ClientError>)>,
) -> Result<Sink, ClientError> {
    let (sink, result) = task.await.map_err(|e| ClientError::Local(e.to_string()))?;
    result.map(|()| sink)
}

/// The part file and what turns received bytes into its contents, on a blocking thread.
struct Sink {
    file: std::fs::File,
    part: PathBuf,
    sbx1: Option<Sbx1Reader>,
    /// The plaintext of one batch, written with one call.
    out: Vec<u8>,
    syncer: BackgroundSync,
}

impl Sink {
    fn write(&mut self, batch: &[bytes::Bytes]) -> Result<(), ClientError> {
        self.out.clear();
        let mut n = 0u64;
        for chunk in batch {
            n += chunk.len() as u64;
            match self.sbx1.as_mut() {
                None => self.out.extend_from_slice(chunk),
                Some(reader) => reader.feed(chunk, &mut self.out)?,
            }
        }
        let written = self
            .file
            .write_all(&self.out)
            .and_then(|()| self.syncer.written(n));
        self.out.clear();
        written.map_err(|e| ClientError::local(self.part.display(), e))
    }

    fn finish(self) -> Result<(), ClientError> {
        if let Some(reader) = self.sbx1 {
            reader.finish()?;
        }
        let local = |e| ClientError::local(self.part.display(), e);
        self.syncer.finish().map_err(local)?;
        self.file.sync_all().map_err(local)
    }
}

/// Syncs the part file in the background every [`SYNC_EVERY`] bytes, so the final sync
/// finds little left to write and the disk works while the network does.
struct BackgroundSync {
    file: std::fs::File,
    since: u64,
    running: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

const SYNC_EVERY: u64 = 64 * 1024 * 1024;

impl BackgroundSync {
    fn new(file: &std::fs::File) -> std::io::Result<Self> {
        Ok(Self {
            file: file.try_clone()?,
            since: 0,
            running: None,
        })
    }

    /// Counts `n` more bytes written to the file (not buffered: they are the kernel's).
    fn written(&mut self, n: u64) -> std::io::Result<()> {
        self.since += n;
        if self.since < SYNC_EVERY {
            return Ok(());
        }
        if let Some(running) = &self.running {
            if !running.is_finished() {
                return Ok(());
            }
            if let Some(Ok(Err(e))) = self.running.take().map(std::thread::JoinHandle::join) {
                return Err(e);
            }
        }
        self.since = 0;
        let file = self.file.try_clone()?;
        self.running = Some(std::thread::spawn(move || file.sync_data()));
        Ok(())
    }

    fn finish(self) -> std::io::Result<()> {
        match self.running {
            Some(running) => running
                .join()
                .map_err(|_| std::io::Error::other("the sync thread panicked"))?,
            None => Ok(()),
        }
    }
}

/// The message for a file answer that is not 200.
async fn super_status_message(response: reqwest::Response) -> String {
    match response.status() {
        StatusCode::GONE => {
            "the transfer is gone: it expired, was revoked, or has no downloads left".into()
        }
        StatusCode::UNAUTHORIZED => {
            "the download token was refused, even renewed: run receive again".into()
        }
        StatusCode::NOT_FOUND => "the file is not on the server (anymore)".into(),
        _ => format!("the download failed: {}", error_message(response).await),
    }
}

/// SBX1 opened as it streams in: the header, then each sealed segment once it is whole.
struct Sbx1Reader {
    /// A copy of the key, so the reader can move to the writing thread.
    key: Dek,
    file_id: Uuid,
    size: u64,
    /// The header or segment that arrived in part (received bytes are never plaintext).
    buffer: Vec<u8>,
    state: Option<(SegmentDecryptor, Layout)>,
    next: u32,
}

impl Sbx1Reader {
    fn new(key: &Dek, file_id: Uuid, size: u64) -> Self {
        Self {
            key: Dek::from_bytes(*key.expose_bytes()),
            file_id,
            size,
            buffer: Vec::new(),
            state: None,
            next: 0,
        }
    }

    fn corrupt(e: impl std::fmt::Display) -> ClientError {
        ClientError::Api(format!(
            "the file does not decrypt ({e}): it was tampered with, or the link's key is wrong"
        ))
    }

    /// Takes the next received bytes and appends the plaintext of every segment they
    /// complete to `out`. A whole segment within `data` is opened from there, without
    /// passing through the buffer.
    fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), ClientError> {
        if self.state.is_none() {
            let take = (HEADER_LEN - self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buffer.len() < HEADER_LEN {
                return Ok(());
            }
            let header = Header::parse(&self.buffer).map_err(Self::corrupt)?;
            let layout = Layout::from_ciphertext_len(&header, self.size).map_err(Self::corrupt)?;
            self.state = Some((
                SegmentDecryptor::new(&self.key, self.file_id, &header),
                layout,
            ));
            self.buffer.clear();
        }
        let (decryptor, layout) = self.state.as_ref().expect("set above");
        while !data.is_empty() && self.next <= layout.last_segment() {
            let range = layout.segment_range(self.next);
            let len = (range.end - range.start) as usize;
            let last = layout.is_last(self.next);
            if self.buffer.is_empty() && data.len() >= len {
                decryptor
                    .decrypt_segment_into(self.next, &data[..len], last, out)
                    .map_err(Self::corrupt)?;
                data = &data[len..];
                self.next += 1;
                continue;
            }
            let take = (len - self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buffer.len() == len {
                decryptor
                    .decrypt_segment_into(self.next, &self.buffer, last, out)
                    .map_err(Self::corrupt)?;
                self.buffer.clear();
                self.next += 1;
            }
        }
        // Bytes past the last segment: kept, so `finish` refuses the file.
        self.buffer.extend_from_slice(data);
        Ok(())
    }

    fn finish(self) -> Result<(), ClientError> {
        match &self.state {
            Some((_, layout)) if self.next > layout.last_segment() && self.buffer.is_empty() => {
                Ok(())
            }
            _ => Err(Self::corrupt("truncated")),
        }
    }
}
