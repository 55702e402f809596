//! `POST /v1/upload-media`: one request uploads a media file into the caller's files,
//! encrypted as it arrives, with the checks and limits of a presigned upload (file size,
//! plan, quota) and a budget of its own, `rate_limits.org_media_uploads_per_hour` per
//! organization. A byte route (outside the JSON API): the body is the file (raw, with
//! `Content-Length`, named by `X-File-Name` or `?filename=`), or `multipart/form-data`
//! with the file in the field `file` (buffered, so at most `limits.json_file_bytes`).

use poem::http::{StatusCode, header};
use poem::web::Multipart;
use poem::{Body, FromRequest, IntoResponse, Request, RequestBody, Response, handler};

use super::authn::authenticate;
use super::error::ApiError;
use super::request_context;
use super::uploads::ByteRoutes;
use crate::service::files::FileInfo;

pub const UPLOAD_MEDIA_PATH: &str = "/v1/upload-media";
/// The header naming a raw body's file.
pub const FILE_NAME_HEADER: &str = "X-File-Name";
const DEFAULT_NAME: &str = "upload";

fn error(err: impl Into<ApiError>) -> Response {
    poem::error::ResponseError::as_response(&err.into())
}

#[handler]
pub async fn upload_media(req: &Request, body: Body) -> Response {
    let routes = req
        .data::<ByteRoutes>()
        .expect("byte routes are attached")
        .clone();
    // Authenticated before a byte of the body is read.
    let principal = match authenticate(req).await {
        Ok(principal) => principal,
        Err(e) => return error(e),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_multipart = content_type
        .as_deref()
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.type_() == mime::MULTIPART && m.subtype() == mime::FORM_DATA);
    let stored = if is_multipart {
        let limit = routes.files.limits().json_file_bytes;
        let part = match file_part(req, body, limit).await {
            Ok(part) => part,
            Err(e) => return error(e),
        };
        let (name, content_type, bytes) = part;
        let size = bytes.len() as u64;
        routes
            .files
            .upload_media(
                &principal,
                name,
                content_type,
                size,
                &bytes[..],
                request_context(req),
            )
            .await
    } else {
        let Some(size) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        else {
            return error(ApiError::bad_request(
                "Content-Length is required for a raw body (or send multipart/form-data)",
            ));
        };
        let name = req
            .headers()
            .get(FILE_NAME_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| query_filename(req))
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        let _uploading = crate::metrics::UploadInProgress::start();
        routes
            .files
            .upload_media(
                &principal,
                name,
                content_type,
                size,
                super::uploads::counted_upload(body),
                request_context(req),
            )
            .await
    };
    match stored {
        Ok(info) => created(info),
        Err(e) => error(e),
    }
}

fn created(info: FileInfo) -> Response {
    let file = info.file;
    poem::web::Json(serde_json::json!({
        "id": file.id,
        "fileName": info.name,
        "sizeBytes": file.size,
        "contentType": file.content_type,
        "encryption": file.encryption.as_str(),
        "blake3": file.blake3,
        "createdUtc": file.created_at,
    }))
    .with_status(StatusCode::CREATED)
    .into_response()
}

fn query_filename(req: &Request) -> Option<String> {
    url::form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(k, _)| k == "filename")
        .map(|(_, v)| v.into_owned())
}

/// The `file` field of a multipart body (or its first field with a file name): its name,
/// content type and bytes, at most `limit` of them (413 beyond).
async fn file_part(
    req: &Request,
    body: Body,
    limit: u64,
) -> Result<(String, Option<String>, zeroize::Zeroizing<Vec<u8>>), ApiError> {
    let mut body = RequestBody::new(body);
    let mut multipart = Multipart::from_request(req, &mut body)
        .await
        .map_err(|e| ApiError::bad_request(format!("not a readable multipart body: {e}")))?;
    let unreadable = |e: poem::error::ParseMultipartError| {
        ApiError::bad_request(format!("not a readable multipart body: {e}"))
    };
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        if field.name() != Some("file") && field.file_name().is_none() {
            continue;
        }
        let name = field
            .file_name()
            .filter(|n| !n.is_empty())
            .unwrap_or(DEFAULT_NAME)
            .to_owned();
        let content_type = field.content_type().map(str::to_owned);
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        let mut reader = field.into_async_read();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut reader, &mut chunk)
                .await
                .map_err(|e| ApiError::bad_request(format!("could not read the file part: {e}")))?;
            if n == 0 {
                break;
            }
            if (bytes.len() + n) as u64 > limit {
                return Err(ApiError::payload_too_large(limit));
            }
            bytes.extend_from_slice(&chunk[..n]);
        }
        return Ok((name, content_type, bytes));
    }
    Err(ApiError::validation("the request is invalid")
        .with_detail("file", "send the file in a multipart field named `file`"))
}
