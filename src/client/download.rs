//! Downloads into a temporary file next to the destination, decrypted (end-to-end) and
//! verified segment by segment as the bytes arrive, then moved into place. A failed
//! download leaves nothing behind.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use futures_util::FutureExt as _;
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
    let mut syncer =
        BackgroundSync::new(&file).map_err(|e| ClientError::local(part.display(), e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let write_err = |e: std::io::Error| ClientError::local(part.display(), e);
    let mut received = 0u64;
    let mut sbx1 = match contents {
        Contents::Plain => None,
        Contents::Sbx1 { key, file_id } => Some(Sbx1Reader::new(key, file_id, size)),
    };
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            ClientError::Api(format!(
                "the download broke off after {received} of {size} bytes: {}",
                error_chain(e).join(": ")
            ))
        })?;
        let Some(chunk) = chunk else { break };
        received += chunk.len() as u64;
        if received > size {
            return Err(ClientError::Api(
                "the server sent more bytes than the file has".into(),
            ));
        }
        bar.inc(chunk.len() as u64);
        match sbx1.as_mut() {
            None => out.write_all(&chunk).map_err(write_err)?,
            Some(reader) => reader.feed(&chunk, &mut out)?,
        }
        syncer
            .written(chunk.len() as u64, &mut out)
            .map_err(write_err)?;
    }
    if received != size {
        return Err(ClientError::Api(format!(
            "the download is incomplete: {received} of {size} bytes"
        )));
    }
    if let Some(reader) = sbx1 {
        reader.finish(&mut out)?;
    }
    let file = out
        .into_inner()
        .map_err(|e| ClientError::local(part.display(), e.into_error()))?;
    syncer.finish().await.map_err(write_err)?;
    file.sync_all().map_err(write_err)
}

/// Flushes a download to disk while it arrives: every [`SYNC_EVERY`] bytes, an `fdatasync`
/// on a blocking thread (one at a time), so the final sync before the rename has little
/// left to write instead of the whole file.
struct BackgroundSync {
    file: std::fs::File,
    since: u64,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Bytes written between background syncs.
const SYNC_EVERY: u64 = 64 * 1024 * 1024;

impl BackgroundSync {
    fn new(file: &std::fs::File) -> std::io::Result<Self> {
        Ok(Self {
            file: file.try_clone()?,
            since: 0,
            running: None,
        })
    }

    /// Counts `n` bytes written through `out`; starts a sync when enough piled up and
    /// none is running (an error of an earlier one is reported here).
    fn written<W: Write>(
        &mut self,
        n: u64,
        out: &mut std::io::BufWriter<W>,
    ) -> std::io::Result<()> {
        self.since += n;
        if self.since < SYNC_EVERY {
            return Ok(());
        }
        if let Some(running) = &self.running {
            if !running.is_finished() {
                return Ok(());
            }
            if let Some(Ok(Err(e))) = self.running.take().and_then(|h| h.now_or_never()) {
                return Err(e);
            }
        }
        out.flush()?;
        self.since = 0;
        let file = self.file.try_clone()?;
        self.running = Some(tokio::task::spawn_blocking(move || file.sync_data()));
        Ok(())
    }

    async fn finish(self) -> std::io::Result<()> {
        match self.running {
            Some(running) => running.await.map_err(std::io::Error::other)?,
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
struct Sbx1Reader<'a> {
    key: &'a Dek,
    file_id: Uuid,
    size: u64,
    buffer: Vec<u8>,
    state: Option<(SegmentDecryptor, Layout)>,
    next: u32,
}

impl<'a> Sbx1Reader<'a> {
    fn new(key: &'a Dek, file_id: Uuid, size: u64) -> Self {
        Self {
            key,
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

    fn feed(&mut self, data: &[u8], out: &mut impl Write) -> Result<(), ClientError> {
        self.buffer.extend_from_slice(data);
        if self.state.is_none() {
            if self.buffer.len() < HEADER_LEN {
                return Ok(());
            }
            let header = Header::parse(&self.buffer[..HEADER_LEN]).map_err(Self::corrupt)?;
            let layout = Layout::from_ciphertext_len(&header, self.size).map_err(Self::corrupt)?;
            self.state = Some((
                SegmentDecryptor::new(self.key, self.file_id, &header),
                layout,
            ));
            self.buffer.drain(..HEADER_LEN);
        }
        let (decryptor, layout) = self.state.as_ref().expect("set above");
        let mut consumed = 0;
        while self.next <= layout.last_segment() {
            let range = layout.segment_range(self.next);
            let len = (range.end - range.start) as usize;
            let Some(sealed) = self.buffer.get_mut(consumed..consumed + len) else {
                break;
            };
            let plain = decryptor
                .decrypt_segment_in_place(self.next, sealed, layout.is_last(self.next))
                .map_err(Self::corrupt)?;
            out.write_all(&sealed[..plain])
                .map_err(|e| ClientError::local("writing the download", e))?;
            consumed += len;
            self.next += 1;
        }
        self.buffer.drain(..consumed);
        Ok(())
    }

    fn finish(self, _out: &mut impl Write) -> Result<(), ClientError> {
        match &self.state {
            Some((_, layout)) if self.next > layout.last_segment() && self.buffer.is_empty() => {
                Ok(())
            }
            _ => Err(Self::corrupt("truncated")),
        }
    }
}
