//! `/v1/files`: encrypted files. Small files go whole as JSON (the proxy reference);
//! files of any size are presigned, uploaded to their URL (a PUT, or tus at the same URL;
//! see `uploads.rs`), finalized, and downloaded through a short-lived link.

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::vault::{SecretHeader, USER_SECRET_HEADER, b64, optional_secret, required_secret};
use super::{ApiTags, request_context};
use crate::service::FileService;
use crate::service::files::{FileInfo, NewUpload};
use crate::service::kv::decode_b64;
use crate::store::files::{Encryption, File};

/// Where upload and download URLs live (outside the JSON API: they carry raw bytes).
pub const UPLOADS_PATH: &str = "/v1/uploads";
pub const DOWNLOADS_PATH: &str = "/v1/downloads";

pub struct FilesApi {
    pub files: FileService,
    /// The public base URL links are built on.
    pub public_url: String,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct StoreFileRequest {
    pub file_name: String,
    /// The file's bytes, base64.
    pub content_b64: String,
    pub content_type: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct FileView {
    pub id: String,
    pub file_name: String,
    pub size_bytes: i64,
    pub content_type: String,
    pub updated_utc: String,
}

impl From<FileInfo> for FileView {
    fn from(info: FileInfo) -> Self {
        Self {
            id: info.file.id.to_string(),
            file_name: info.name,
            size_bytes: info.file.size,
            content_type: info.file.content_type,
            updated_utc: info.file.updated_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct FileContent {
    pub file_name: String,
    pub content_b64: String,
    pub content_type: String,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct PresignRequest {
    /// With client-side encryption, whatever the client chose (possibly encrypted).
    pub filename: String,
    pub content_type: Option<String>,
    /// Exact size in bytes of what will be uploaded.
    pub size: u64,
    /// `server` (default): sealbox encrypts the bytes as they arrive. `client`: the bytes
    /// are already encrypted and are stored untouched.
    pub encryption: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct Presigned {
    pub file_id: String,
    /// PUT the whole body here, or speak tus 1.0 to it (HEAD, PATCH) to resume.
    pub upload_url: String,
    /// Seconds the URL stays usable.
    pub expires_in: u64,
}

/// A finalized file as stored.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct StoredFile {
    pub id: String,
    pub size_bytes: i64,
    pub content_type: String,
    /// `server` or `client`.
    pub encryption: String,
    /// BLAKE3 of the stored (encrypted) bytes, hex.
    pub blake3: String,
    pub created_utc: String,
}

impl From<File> for StoredFile {
    fn from(f: File) -> Self {
        Self {
            id: f.id.to_string(),
            size_bytes: f.size,
            content_type: f.content_type,
            encryption: f.encryption.as_str().to_owned(),
            blake3: f.blake3,
            created_utc: f.created_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DownloadLink {
    /// Streams the file (decrypted when sealbox encrypted it) and honours `Range`.
    pub url: String,
    pub expires_in: u64,
}

#[derive(ApiResponse)]
pub enum FileCreatedResponse {
    #[oai(status = 201)]
    Created(Json<FileView>),
}

#[derive(ApiResponse)]
pub enum FilesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<FileView>>),
}

#[derive(ApiResponse)]
pub enum FileContentResponse {
    #[oai(status = 200)]
    Ok(Json<FileContent>),
}

#[derive(ApiResponse)]
pub enum FileDeletedResponse {
    /// The file, its bytes and its shares are gone.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
pub enum PresignResponse {
    #[oai(status = 201)]
    Created(Json<Presigned>),
}

#[derive(ApiResponse)]
pub enum FinalizedResponse {
    #[oai(status = 200)]
    Ok(Json<StoredFile>),
}

#[derive(ApiResponse)]
pub enum DownloadLinkResponse {
    #[oai(status = 200)]
    Ok(Json<DownloadLink>),
}

#[OpenApi(tag = "ApiTags::Files")]
impl FilesApi {
    /// Store a small file
    ///
    /// Name and bytes are encrypted under a fresh key sealed to your public key; no secret
    /// is needed. At most `limits.json_file_bytes` (413 beyond): use presign for more.
    #[oai(path = "/v1/files", method = "post", operation_id = "storeFile")]
    async fn store(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<StoreFileRequest>,
    ) -> Result<FileCreatedResponse, ApiError> {
        let body = body.0;
        let content = decode_b64(&body.content_b64, "contentB64")?;
        let info = self
            .files
            .store_whole(
                &auth.0,
                body.file_name,
                body.content_type,
                content,
                request_context(req),
            )
            .await?;
        Ok(FileCreatedResponse::Created(Json(info.into())))
    }

    /// List your files
    ///
    /// Names decrypted with `X-User-Secret`; files your keys cannot open are left out.
    #[oai(path = "/v1/files", method = "get", operation_id = "listFiles")]
    async fn list(
        &self,
        auth: Authenticated,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
    ) -> Result<FilesResponse, ApiError> {
        let secret = required_secret(secret.0, USER_SECRET_HEADER)?;
        let files = self.files.list(&auth.0, &secret).await?;
        Ok(FilesResponse::Ok(Json(
            files.into_iter().map(Into::into).collect(),
        )))
    }

    /// Read a small file whole
    #[oai(path = "/v1/files/:id", method = "get", operation_id = "getFile")]
    async fn get(
        &self,
        auth: Authenticated,
        id: Path<String>,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
    ) -> Result<FileContentResponse, ApiError> {
        let secret = required_secret(secret.0, USER_SECRET_HEADER)?;
        let (info, content) = self.files.read_whole(&auth.0, &id.0, &secret).await?;
        Ok(FileContentResponse::Ok(Json(FileContent {
            file_name: info.name,
            content_b64: b64(&content),
            content_type: info.file.content_type,
        })))
    }

    /// Delete a file
    #[oai(path = "/v1/files/:id", method = "delete", operation_id = "deleteFile")]
    async fn delete(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<FileDeletedResponse, ApiError> {
        self.files
            .delete(&auth.0, &id.0, request_context(req))
            .await?;
        Ok(FileDeletedResponse::Deleted)
    }

    /// Start an upload of any size
    ///
    /// Checks the size against the file size limit (413 `PAYLOAD_TOO_LARGE`) and the
    /// organization's quota (413 `QUOTA_EXCEEDED`) before any byte is sent.
    #[oai(
        path = "/v1/files/presign",
        method = "post",
        operation_id = "presignUpload"
    )]
    async fn presign(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<PresignRequest>,
    ) -> Result<PresignResponse, ApiError> {
        let body = body.0;
        let encryption = parse_encryption(body.encryption.as_deref())?;
        let created = self
            .files
            .create_upload(
                &auth.0,
                NewUpload {
                    filename: body.filename,
                    content_type: body.content_type,
                    size: body.size,
                    encryption,
                    metadata: None,
                },
                request_context(req),
            )
            .await?;
        Ok(PresignResponse::Created(Json(Presigned {
            file_id: created.file_id.to_string(),
            upload_url: format!(
                "{}{UPLOADS_PATH}/{}",
                self.public_url,
                created.token.as_str()
            ),
            expires_in: created.expires_in.as_secs(),
        })))
    }

    /// Finish an upload
    ///
    /// Stores the BLAKE3 of the bytes, moves them into storage and records the file. An
    /// upload missing bytes is discarded (400).
    #[oai(
        path = "/v1/files/:id/finalize",
        method = "post",
        operation_id = "finalizeUpload"
    )]
    async fn finalize(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<FinalizedResponse, ApiError> {
        let file = self
            .files
            .finalize(&auth.0, &id.0, request_context(req))
            .await?;
        Ok(FinalizedResponse::Ok(Json(file.into())))
    }

    /// Get a download link
    ///
    /// A short-lived URL that streams the file with `Range` support; for files sealbox
    /// encrypted, `X-User-Secret` is needed to unlock them. Besides your own files: a
    /// client-encrypted file named in the `attachments` of a message you can see in one of
    /// your chats, while that message lives (docs/messaging.md).
    #[oai(
        path = "/v1/files/:id/download",
        method = "get",
        operation_id = "downloadFile"
    )]
    async fn download(
        &self,
        auth: Authenticated,
        id: Path<String>,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
    ) -> Result<DownloadLinkResponse, ApiError> {
        let secret = optional_secret(secret.0);
        let (token, ttl) = self
            .files
            .download_link(&auth.0, &id.0, secret.as_ref())
            .await?;
        Ok(DownloadLinkResponse::Ok(Json(DownloadLink {
            url: format!("{}{DOWNLOADS_PATH}/{}", self.public_url, token.as_str()),
            expires_in: ttl.as_secs(),
        })))
    }
}

/// `server` (the default) or `client`; 422 otherwise.
pub fn parse_encryption(value: Option<&str>) -> Result<Encryption, ApiError> {
    match value {
        None | Some("server") => Ok(Encryption::Server),
        Some("client") => Ok(Encryption::Client),
        Some(_) => Err(ApiError::validation("the request is invalid")
            .with_detail("encryption", "must be `server` or `client`")),
    }
}
