//! The byte-carrying routes, outside the JSON API:
//!
//! - `/v1/uploads`: tus 1.0 (core, creation, creation-with-upload, termination, checksum
//!   with sha256, expiration). `OPTIONS` discovers, an authenticated `POST` creates an
//!   upload (like presign), and the upload URL takes `HEAD`, `PATCH` and `DELETE`, and a
//!   plain `PUT` of the whole body. The URL's last segment is the upload's capability.
//! - `/v1/downloads/{token}`: a short-lived download link; streams the file, decrypting
//!   only the SBX1 segments a `Range` touches.
//! - `/v1/transfer-uploads/{token}`: tus creation for a transfer (its upload token), and
//!   `/v1/public/transfers/{id}/files/{fileId}`: a link holder's download, streamed by the
//!   same code as the download links and counted by the transfer.

use std::ops::Range;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt as _;
use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use poem::web::Path;
use poem::{Body, IntoResponse, Request, Response, handler};
use tokio::io::AsyncReadExt;

use super::authn::authenticate;
use super::error::{ApiError, code};
use super::files::{UPLOADS_PATH, parse_encryption};
use super::request_context;
use crate::crypto::sbx1::{HEADER_LEN, Header, Layout, SegmentDecryptor, Span};
use crate::service::files::{CreatedUpload, Download, NewUpload, Progress, WriteMode};
use crate::service::{FileService, TransferService};
use crate::store::files::Encryption;

const TUS_VERSION: &str = "1.0.0";
const TUS_EXTENSIONS: &str = "creation,creation-with-upload,termination,checksum,expiration";
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// What the byte routes need.
#[derive(Clone)]
pub struct ByteRoutes {
    pub files: FileService,
    pub transfers: TransferService,
    pub public_url: String,
}

fn tus_headers(response: &mut Response) {
    response
        .headers_mut()
        .insert("Tus-Resumable", HeaderValue::from_static(TUS_VERSION));
}

fn error(err: impl Into<ApiError>) -> Response {
    poem::error::ResponseError::as_response(&err.into())
}

fn tus_error(err: impl Into<ApiError>) -> Response {
    let mut response = error(err);
    tus_headers(&mut response);
    response
}

/// 412 unless the request speaks tus 1.0.0.
fn require_tus(headers: &HeaderMap) -> Result<(), Box<Response>> {
    match headers.get("Tus-Resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        _ => {
            let mut response = tus_error(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                code::BAD_REQUEST,
                "send Tus-Resumable: 1.0.0 (the only tus version this server speaks)",
            ));
            response
                .headers_mut()
                .insert("Tus-Version", HeaderValue::from_static(TUS_VERSION));
            Err(Box::new(response))
        }
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn progress_headers(response: &mut Response, progress: Progress) {
    let headers = response.headers_mut();
    headers.insert("Upload-Offset", HeaderValue::from(progress.offset));
    headers.insert("Upload-Length", HeaderValue::from(progress.length));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(expires) = progress.expires.filter(|_| !progress.complete)
        && let Ok(value) = HeaderValue::from_str(&http_date(expires))
    {
        headers.insert("Upload-Expires", value);
    }
}

/// An RFC 9110 HTTP date, such as `Wed, 25 Jun 2014 16:00:00 GMT`.
fn http_date(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// `OPTIONS /v1/uploads`: what this tus server supports.
#[handler]
pub async fn tus_options(req: &Request) -> Response {
    let routes = req.data::<ByteRoutes>().expect("byte routes are attached");
    let mut response = Response::builder().status(StatusCode::NO_CONTENT).finish();
    tus_headers(&mut response);
    let headers = response.headers_mut();
    headers.insert("Tus-Version", HeaderValue::from_static(TUS_VERSION));
    headers.insert("Tus-Extension", HeaderValue::from_static(TUS_EXTENSIONS));
    headers.insert("Tus-Checksum-Algorithm", HeaderValue::from_static("sha256"));
    headers.insert(
        "Tus-Max-Size",
        HeaderValue::from(routes.files.limits().max_file_bytes),
    );
    response
}

/// `POST /v1/uploads`: tus creation (with an optional first chunk).
#[handler]
pub async fn tus_create(req: &Request, body: Body) -> Response {
    let routes = req
        .data::<ByteRoutes>()
        .expect("byte routes are attached")
        .clone();
    if let Err(refused) = require_tus(req.headers()) {
        return *refused;
    }
    let principal = match authenticate(req).await {
        Ok(principal) => principal,
        Err(e) => return tus_error(e),
    };
    let input = match creation_input(req) {
        Ok(input) => input,
        Err(e) => return tus_error(e),
    };
    let created = routes
        .files
        .create_upload(&principal, input, request_context(req))
        .await;
    finish_creation(&routes, req, body, created).await
}

/// `POST /v1/transfer-uploads/{token}`: tus creation of one file of a pending transfer,
/// authorized by the transfer's upload token. The upload then continues at its own URL.
#[handler]
pub async fn transfer_tus_create(req: &Request, Path(token): Path<String>, body: Body) -> Response {
    let routes = req
        .data::<ByteRoutes>()
        .expect("byte routes are attached")
        .clone();
    if let Err(refused) = require_tus(req.headers()) {
        return *refused;
    }
    let input = match creation_input(req) {
        Ok(input) => input,
        Err(e) => return tus_error(e),
    };
    let created = routes
        .transfers
        .create_upload(&token, input, request_context(req))
        .await;
    finish_creation(&routes, req, body, created).await
}

/// The upload a tus creation asks for: `Upload-Length` and `Upload-Metadata`
/// (`filename`, `filetype`, `encryption`).
fn creation_input(req: &Request) -> Result<NewUpload, ApiError> {
    let Some(length) = header_u64(req.headers(), "Upload-Length") else {
        return Err(ApiError::bad_request(
            "Upload-Length is required (deferred lengths are not supported)",
        ));
    };
    let metadata = req
        .headers()
        .get("Upload-Metadata")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fields = parse_metadata(metadata.as_deref().unwrap_or(""))?;
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let encryption = parse_encryption(get("encryption").as_deref())?;
    Ok(NewUpload {
        filename: get("filename").unwrap_or_else(|| "upload".to_owned()),
        content_type: get("filetype").or_else(|| get("contentType")),
        size: length,
        encryption,
        metadata,
    })
}

/// Answers a tus creation: writes the first chunk if one came with it, then `201` with
/// the upload's `Location`.
async fn finish_creation(
    routes: &ByteRoutes,
    req: &Request,
    body: Body,
    created: Result<CreatedUpload, crate::service::ServiceError>,
) -> Response {
    let created = match created {
        Ok(created) => created,
        Err(e) => return tus_error(e),
    };
    let length = header_u64(req.headers(), "Upload-Length").unwrap_or(0);
    let location = format!(
        "{}{UPLOADS_PATH}/{}",
        routes.public_url,
        created.token.as_str()
    );
    let mut progress = Progress {
        offset: 0,
        length,
        complete: length == 0,
        expires: Some(time::OffsetDateTime::now_utc() + created.expires_in),
    };
    let with_upload = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == OFFSET_OCTET_STREAM.as_bytes());
    if with_upload || length == 0 {
        let _uploading = crate::metrics::UploadInProgress::start();
        match routes
            .files
            .write(
                &created.token,
                WriteMode::Append { offset: 0 },
                counted_upload(body),
                None,
            )
            .await
        {
            Ok(p) => progress = p,
            Err(e) => return tus_error(e),
        }
    }
    let mut response = Response::builder().status(StatusCode::CREATED).finish();
    tus_headers(&mut response);
    progress_headers(&mut response, progress);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&created.file_id.to_string()) {
        headers.insert("X-Sealbox-File-Id", value);
    }
    response
}

/// `HEAD /v1/uploads/{token}`: where the upload stands (after a break, resume here).
#[handler]
pub async fn tus_head(req: &Request, Path(token): Path<String>) -> Response {
    let routes = req.data::<ByteRoutes>().expect("byte routes are attached");
    if let Err(refused) = require_tus(req.headers()) {
        return *refused;
    }
    match routes.files.progress(&token).await {
        Ok((progress, metadata)) => {
            let mut response = Response::builder().status(StatusCode::OK).finish();
            tus_headers(&mut response);
            progress_headers(&mut response, progress);
            if let Some(value) = metadata.and_then(|m| HeaderValue::from_str(&m).ok()) {
                response.headers_mut().insert("Upload-Metadata", value);
            }
            response
        }
        // HEAD answers carry no body.
        Err(e) => {
            let mut response = tus_error(e);
            response.set_body(Body::empty());
            response
        }
    }
}

/// `PATCH /v1/uploads/{token}`: the next bytes, at `Upload-Offset`.
#[handler]
pub async fn tus_patch(req: &Request, Path(token): Path<String>, body: Body) -> Response {
    let routes = req.data::<ByteRoutes>().expect("byte routes are attached");
    if let Err(refused) = require_tus(req.headers()) {
        return *refused;
    }
    let is_octets = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == OFFSET_OCTET_STREAM.as_bytes());
    if !is_octets {
        return tus_error(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::UNSUPPORTED_MEDIA_TYPE,
            "PATCH bodies must be Content-Type: application/offset+octet-stream",
        ));
    }
    let Some(offset) = header_u64(req.headers(), "Upload-Offset") else {
        return tus_error(ApiError::bad_request("Upload-Offset is required"));
    };
    let checksum = match parse_checksum(req.headers()) {
        Ok(checksum) => checksum,
        Err(e) => return tus_error(e),
    };
    let _uploading = crate::metrics::UploadInProgress::start();
    match routes
        .files
        .write(
            &token,
            WriteMode::Append { offset },
            counted_upload(body),
            checksum,
        )
        .await
    {
        Ok(progress) => {
            let mut response = Response::builder().status(StatusCode::NO_CONTENT).finish();
            tus_headers(&mut response);
            progress_headers(&mut response, progress);
            response
        }
        Err(e) => tus_error(e),
    }
}

/// `DELETE /v1/uploads/{token}`: tus termination.
#[handler]
pub async fn tus_delete(req: &Request, Path(token): Path<String>) -> Response {
    let routes = req.data::<ByteRoutes>().expect("byte routes are attached");
    if let Err(refused) = require_tus(req.headers()) {
        return *refused;
    }
    match routes.files.terminate(&token).await {
        Ok(()) => {
            let mut response = Response::builder().status(StatusCode::NO_CONTENT).finish();
            tus_headers(&mut response);
            response
        }
        Err(e) => tus_error(e),
    }
}

/// `PUT /v1/uploads/{token}`: the whole body in one request (starting over if an
/// earlier attempt sent part of it).
#[handler]
pub async fn put_whole(req: &Request, Path(token): Path<String>, body: Body) -> Response {
    let routes = req.data::<ByteRoutes>().expect("byte routes are attached");
    let _uploading = crate::metrics::UploadInProgress::start();
    match routes
        .files
        .write(&token, WriteMode::Replace, counted_upload(body), None)
        .await
    {
        Ok(progress) => {
            let mut response = poem::web::Json(serde_json::json!({
                "received": progress.offset,
                "size": progress.length,
                "complete": progress.complete,
            }))
            .into_response();
            progress_headers(&mut response, progress);
            response
        }
        Err(e) => error(e),
    }
}

/// The request body as the upload writer reads it, each chunk counted in the metrics'
/// uploaded bytes as it arrives (received, whether or not the upload then keeps it).
pub(super) fn counted_upload(body: Body) -> impl tokio::io::AsyncRead + Send + Unpin + 'static {
    let chunks = body.into_bytes_stream().inspect(|chunk| {
        if let Ok(chunk) = chunk {
            crate::metrics::uploaded(chunk.len());
        }
    });
    Body::from_bytes_stream(chunks).into_async_read()
}

/// `Upload-Checksum: sha256 <base64>`; other algorithms are refused (400).
fn parse_checksum(headers: &HeaderMap) -> Result<Option<[u8; 32]>, ApiError> {
    let Some(value) = headers.get("Upload-Checksum") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    let (algorithm, digest) = text.split_once(' ').unwrap_or((text, ""));
    if !algorithm.eq_ignore_ascii_case("sha256") {
        return Err(ApiError::bad_request(
            "Upload-Checksum supports only sha256",
        ));
    }
    BASE64
        .decode(digest.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request("Upload-Checksum is not a base64 SHA-256"))
}

/// tus `Upload-Metadata`: comma-separated `key base64value` pairs.
fn parse_metadata(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut fields = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let decoded = BASE64
            .decode(value.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!("Upload-Metadata `{key}` is not base64 UTF-8"))
            })?;
        fields.push((key.to_owned(), decoded));
    }
    Ok(fields)
}

/// `GET` and `HEAD /v1/downloads/{token}`.
#[handler]
pub async fn download(req: &Request, Path(token): Path<String>) -> Response {
    let routes = req.data::<ByteRoutes>().expect("byte routes are attached");
    let (link, session) = match routes.files.open_link(&token).await {
        Ok(opened) => opened,
        Err(e) => return error(e),
    };
    // A link is one download session: its first response with a body is recorded, the
    // requests and ranges that follow are not.
    let file = &link.file;
    let count = |_start: u64| async move {
        routes
            .files
            .record_download(file, session, request_context(req))
            .await
    };
    match serve(routes, req, &link, count).await {
        Ok(response) => response,
        Err(e) => error(e),
    }
}

/// `GET` and `HEAD /v1/public/transfers/{id}/files/{fileId}`: a link holder's download.
/// `X-Transfer-Secret` carries the link's secret (needed without a token: 404 otherwise);
/// `?token=` carries the download token from unlock (needed with a password): all files
/// fetched under one token are one download, counted by the token's first response with a
/// body, whatever its range (410 once the limit is reached). Without a token each
/// response counts, so it must start at byte 0: continuing a download needs a token.
#[handler]
pub async fn transfer_download(
    req: &Request,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let routes = req.data::<ByteRoutes>().expect("byte routes are attached");
    let token = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")))
        .map(str::to_owned);
    let secret = req
        .headers()
        .get(super::transfers::TRANSFER_SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (link, session) = match routes
        .transfers
        .open_public_file(&id, &file, secret.as_deref(), token.as_deref())
        .await
    {
        Ok(opened) => (opened.download, opened.session),
        Err(e) => return error(e),
    };
    let (file, id) = (&link.file, &id);
    let count = |start: u64| async move {
        if session.is_none() && start > 0 {
            return Err(crate::service::ServiceError::Unauthorized(
                "a range that does not start at byte 0 needs a download token: unlock the transfer first",
            ));
        }
        routes
            .transfers
            .count_download(id, file, session, request_context(req))
            .await
    };
    match serve(routes, req, &link, count).await {
        Ok(response) => response,
        Err(e) => error(e),
    }
}

/// Streams `link`'s file with `Range`, decrypting only the segments a range touches.
/// `count` is called with the range's first byte before a body is sent (not for `HEAD`
/// or an empty range), and may refuse: how the file links and transfers count downloads.
async fn serve<F, C>(
    routes: &ByteRoutes,
    req: &Request,
    link: &Download,
    count: C,
) -> Result<Response, ApiError>
where
    C: FnOnce(u64) -> F,
    F: std::future::Future<Output = Result<(), crate::service::ServiceError>>,
{
    let file = &link.file;
    let (length, plan) = match (&link.dek, file.encryption) {
        (Some(dek), Encryption::Server) => {
            let mut first = vec![0u8; HEADER_LEN];
            routes
                .files
                .open_blob(file, 0)
                .await?
                .read_exact(&mut first)
                .await
                .map_err(|_| integrity())?;
            let header = Header::parse(&first).map_err(|_| integrity())?;
            let layout = Layout::from_ciphertext_len(&header, file.stored_size as u64)
                .map_err(|_| integrity())?;
            let decryptor = SegmentDecryptor::new(dek, file.id.as_uuid(), &header);
            (
                layout.plaintext_len(),
                Plan::Decrypt {
                    layout,
                    decryptor: Box::new(decryptor),
                },
            )
        }
        _ => (file.stored_size as u64, Plan::Raw),
    };
    let range = match requested_range(req.headers(), length) {
        Ok(range) => range,
        Err(()) => {
            let mut response = error(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                code::BAD_REQUEST,
                "the requested range is not satisfiable",
            ));
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{length}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let partial = range.is_some();
    let range = range.unwrap_or(0..length);
    let mut response = Response::builder()
        .status(if partial {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .finish();
    {
        let headers = response.headers_mut();
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        if let Ok(value) = HeaderValue::from_str(&file.content_type) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        if let Ok(value) = HeaderValue::from_str(&format!(
            "\"{}\"",
            &file.blake3[..32.min(file.blake3.len())]
        )) {
            headers.insert(header::ETAG, value);
        }
        if let Some(disposition) = link.name.as_deref().map(content_disposition)
            && let Ok(value) = HeaderValue::from_str(&disposition)
        {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(range.end - range.start),
        );
        if partial
            && let Ok(value) = HeaderValue::from_str(&format!(
                "bytes {}-{}/{length}",
                range.start,
                range.end.saturating_sub(1)
            ))
        {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    if req.method() == Method::HEAD || range.is_empty() {
        return Ok(response);
    }
    count(range.start).await?;
    let body = match plan {
        Plan::Raw => {
            body_from_first_chunk(raw_chunks(routes.files.clone(), file.clone(), range)).await?
        }
        Plan::Decrypt { layout, decryptor } => {
            let span = layout.span(range.clone()).map_err(|_| integrity())?;
            body_from_first_chunk(decrypted_batches(
                routes.files.clone(),
                file.clone(),
                Arc::from(decryptor),
                layout,
                span,
            ))
            .await?
        }
    };
    response.set_body(body);
    Ok(response)
}

/// A streamed body whose first chunk is read (and opened) before answering, so a missing
/// blob or damage there is an error status rather than a cut-off body.
async fn body_from_first_chunk(
    chunks: impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
) -> Result<Body, ApiError> {
    let mut chunks = Box::pin(chunks);
    let first = match chunks.next().await {
        Some(Ok(first)) => first,
        _ => return Err(integrity()),
    };
    // Counted as each chunk is handed to the connection: bytes a client that hangs up
    // never asked for are not counted.
    Ok(Body::from_bytes_stream(
        futures_util::stream::once(std::future::ready(Ok(first)))
            .chain(chunks)
            .inspect(|chunk| {
                if let Ok(chunk) = chunk {
                    crate::metrics::downloaded(chunk.len());
                }
            }),
    ))
}

/// Segments read and opened as one chunk of a download: large enough that per-chunk costs
/// vanish (1 MiB with 64 KiB segments), small enough that a short range stays cheap.
const BATCH_SEGMENTS: u32 = 16;
/// Chunks read and decrypted at once, ahead of the client.
const BATCHES_AHEAD: usize = 3;

/// The plaintext of `span`, a chunk at a time, in order. Up to `BATCHES_AHEAD` chunks are
/// read (ranged reads) and opened (on blocking threads, so on both cores) at once, while
/// earlier ones are sent: reading, decrypting and sending overlap. Memory: about
/// `BATCHES_AHEAD` chunks.
fn decrypted_batches(
    files: FileService,
    file: crate::store::files::File,
    decryptor: Arc<SegmentDecryptor>,
    layout: Layout,
    span: Span,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let last_segment = span.last_segment;
    let batches = (span.first_segment..=last_segment)
        .step_by(BATCH_SEGMENTS as usize)
        .map(move |first| (first, last_segment.min(first + (BATCH_SEGMENTS - 1))));
    futures_util::stream::iter(batches)
        .map(move |(first, last)| {
            let (files, file, decryptor, span) =
                (files.clone(), file.clone(), decryptor.clone(), span.clone());
            async move {
                let start = layout.segment_range(first).start;
                let len = layout.segment_range(last).end - start;
                // Read and opened on one blocking thread: no hop between them.
                let open: crate::blob::ReadThen = Box::new(move |sealed| {
                    open_batch(&decryptor, &layout, &span, first, last, sealed)
                });
                files
                    .read_blob_at(
                        &file,
                        start,
                        usize::try_from(len).unwrap_or(usize::MAX),
                        open,
                    )
                    .await
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))
            }
        })
        .buffered(BATCHES_AHEAD)
}

/// Stored bytes sent as they are (client-encrypted files): `range` in chunks of
/// `RAW_CHUNK` bytes, read ahead like [`decrypted_batches`] so disk reads overlap sending
/// (a plain `AsyncRead` body would go out in 4 KiB pieces).
fn raw_chunks(
    files: FileService,
    file: crate::store::files::File,
    range: std::ops::Range<u64>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let end = range.end;
    let starts = (range.start..end).step_by(RAW_CHUNK);
    futures_util::stream::iter(starts)
        .map(move |start| {
            let (files, file) = (files.clone(), file.clone());
            let len = (end - start).min(RAW_CHUNK as u64) as usize;
            async move {
                files
                    .read_blob_at(
                        &file,
                        start,
                        len,
                        Box::new(|raw| Ok(bytes::Bytes::from(raw))),
                    )
                    .await
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))
            }
        })
        .buffered(BATCHES_AHEAD)
}

/// Bytes per chunk of a [`raw_chunks`] download.
const RAW_CHUNK: usize = 1 << 20;

/// Opens segments `first..=last` of `span` (their ciphertext in `sealed`) and keeps the
/// bytes of the range.
fn open_batch(
    decryptor: &SegmentDecryptor,
    layout: &Layout,
    span: &Span,
    first: u32,
    last: u32,
    mut sealed: Vec<u8>,
) -> std::io::Result<bytes::Bytes> {
    let len = decryptor
        .decrypt_segments_in_place(layout, first, last, &mut sealed)
        .map_err(|e| {
            tracing::error!(error = %e, "a stored file failed its integrity check mid-download");
            std::io::Error::other("integrity check failed")
        })?;
    sealed.truncate(len);
    // Every segment of the chunk but its last is whole, so the range's end in the chunk is
    // whole segments plus its end within the last one.
    let segment = decryptor.header().segment_size();
    let start = span.within_segment(first).start;
    let end = (last - first) as usize * segment + span.within_segment(last).end;
    Ok(bytes::Bytes::from(sealed).slice(start..end))
}

enum Plan {
    Raw,
    Decrypt {
        layout: Layout,
        decryptor: Box<SegmentDecryptor>,
    },
}

fn integrity() -> ApiError {
    tracing::error!("a stored file failed its integrity check");
    ApiError::internal()
}

/// The single byte range asked for, clamped to the file: `Ok(None)` for the whole file
/// (no `Range`, or one this server does not serve partially, such as several ranges),
/// `Err(())` when unsatisfiable.
fn requested_range(headers: &HeaderMap, length: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let suffix: u64 = end.parse().map_err(|_| ())?;
        if suffix == 0 {
            return Err(());
        }
        length.saturating_sub(suffix)..length
    } else {
        let start: u64 = start.parse().map_err(|_| ())?;
        let end = if end.is_empty() {
            length
        } else {
            end.parse::<u64>()
                .map_err(|_| ())?
                .saturating_add(1)
                .min(length)
        };
        if start >= length || start >= end {
            return Err(());
        }
        start..end
    };
    if range.is_empty() {
        return Err(());
    }
    Ok(Some(range))
}

/// `attachment` with the name, as ASCII (`filename`) and UTF-8 (`filename*`, RFC 5987).
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}
