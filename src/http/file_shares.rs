//! `/v1/files/{id}/shares` and `/v1/files/shared`: read-only shares of files (the proxy
//! reference's File Sharing section: routes, fields and error statuses as written there),
//! plus a download link for shared files too large to send whole as JSON.
//!
//! `/v1/files/shared` is a static segment, so it wins over `/v1/files/{id}` (file ids are
//! UUIDs, never `shared`).

use poem::Request;
use poem::http::StatusCode;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::authn::Authenticated;
use super::error::{ApiError, code};
use super::files::{DOWNLOADS_PATH, DownloadLink, DownloadLinkResponse};
use super::json_body::JsonBody;
use super::kv::{
    OwnerSharesResponse, RemovedResponse, RemovedView, RevokedResponse, RevokedView,
    ShareCreatedResponse,
};
use super::vault::{SecretHeader, USER_SECRET_HEADER, b64, required_secret};
use super::{ApiTags, request_context};
use crate::service::file_shares::{NewFileShare, ReceivedFile};
use crate::service::{FileShareService, ServiceError};

pub struct FileSharesApi {
    pub shares: FileShareService,
    /// The public base URL download links are built on.
    pub public_url: String,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateFileShareRequest {
    pub recipient_user_id: String,
    /// Only `read`.
    pub permission: String,
    /// RFC 3339, in the future.
    pub expires_utc: Option<String>,
}

/// A file shared with the caller.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct SharedFileView {
    pub share_id: String,
    pub file_id: String,
    pub owner_user_id: String,
    pub owner_name: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub updated_utc: String,
    #[oai(nullable)]
    pub expires_utc: Option<String>,
}

impl From<ReceivedFile> for SharedFileView {
    fn from(r: ReceivedFile) -> Self {
        Self {
            share_id: r.share.id.to_string(),
            file_id: r.file.id.to_string(),
            owner_user_id: r.share.owner_id.to_string(),
            owner_name: r.owner_name,
            file_name: r.name,
            content_type: r.file.content_type,
            size_bytes: r.file.size,
            updated_utc: r.file.updated_at,
            expires_utc: r.share.expires_at,
        }
    }
}

/// A shared file's content, decrypted.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct SharedFileContent {
    pub share_id: String,
    pub file_id: String,
    pub owner_user_id: String,
    pub file_name: String,
    pub content_type: String,
    pub content_b64: String,
    #[oai(nullable)]
    pub expires_utc: Option<String>,
}

#[derive(ApiResponse)]
pub enum SharedFilesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<SharedFileView>>),
}

#[derive(ApiResponse)]
pub enum SharedFileContentResponse {
    #[oai(status = 200)]
    Ok(Json<SharedFileContent>),
}

#[OpenApi(tag = "ApiTags::Files")]
impl FileSharesApi {
    /// Share a file read-only
    ///
    /// Re-seals the file's key to the recipient, a member of your organization (404
    /// otherwise). 400 if `permission` is not `read`, `expiresUtc` is not in the future,
    /// either of you lacks keys, or the file was encrypted by your client (sealbox holds
    /// no key to it); 401 for a wrong secret; 409 if the recipient already has an active
    /// share of this file.
    #[oai(
        path = "/v1/files/:id/shares",
        method = "post",
        operation_id = "shareFile"
    )]
    async fn share(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
        body: JsonBody<CreateFileShareRequest>,
    ) -> Result<ShareCreatedResponse, ApiError> {
        let secret = required_secret(secret.0, USER_SECRET_HEADER)?;
        let body = body.0;
        let input = NewFileShare {
            recipient_user_id: body.recipient_user_id,
            permission: body.permission,
            expires_utc: body.expires_utc,
        };
        let share = self
            .shares
            .share(&auth.0, &id.0, input, secret, request_context(req))
            .await?;
        Ok(ShareCreatedResponse::Created(Json(share.into())))
    }

    /// List a file's active shares
    #[oai(
        path = "/v1/files/:id/shares",
        method = "get",
        operation_id = "listFileShares"
    )]
    async fn shares(
        &self,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<OwnerSharesResponse, ApiError> {
        let shares = self.shares.shares_of(&auth.0, &id.0).await?;
        Ok(OwnerSharesResponse::Ok(Json(
            shares.into_iter().map(Into::into).collect(),
        )))
    }

    /// Revoke a recipient's file share
    #[oai(
        path = "/v1/files/:id/shares/:recipientUserId",
        method = "delete",
        operation_id = "revokeFileShare"
    )]
    async fn revoke(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        #[oai(name = "recipientUserId")] recipient_user_id: Path<String>,
    ) -> Result<RevokedResponse, ApiError> {
        let (share_id, at) = self
            .shares
            .revoke(&auth.0, &id.0, &recipient_user_id.0, request_context(req))
            .await?;
        Ok(RevokedResponse::Ok(Json(RevokedView {
            revoked: true,
            share_id: share_id.to_string(),
            revoked_utc: at,
        })))
    }

    /// Files shared with you
    ///
    /// Active shares your current keys can still open, with the files' names decrypted;
    /// expired ones are left out.
    #[oai(
        path = "/v1/files/shared",
        method = "get",
        operation_id = "listSharedFiles"
    )]
    async fn received(
        &self,
        auth: Authenticated,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
    ) -> Result<SharedFilesResponse, ApiError> {
        let secret = required_secret(secret.0, USER_SECRET_HEADER)?;
        let files = self.shares.received(&auth.0, &secret).await?;
        Ok(SharedFilesResponse::Ok(Json(
            files.into_iter().map(Into::into).collect(),
        )))
    }

    /// Read a file shared with you
    ///
    /// The file whole, decrypted, up to `limits.json_file_bytes` (413 beyond: get a
    /// download link instead). The access is recorded for the owner. 401 for a wrong
    /// secret, 403 if your current keys can no longer open the share, 404 if it does not
    /// exist, expired or is not yours.
    #[oai(
        path = "/v1/files/shared/:shareId",
        method = "get",
        operation_id = "readSharedFile"
    )]
    async fn read_shared(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "shareId")] share_id: Path<String>,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
    ) -> Result<SharedFileContentResponse, ApiError> {
        let secret = required_secret(secret.0, USER_SECRET_HEADER)?;
        let shared = self
            .shares
            .read_shared(&auth.0, &share_id.0, &secret, request_context(req))
            .await
            .map_err(|e| match e {
                ServiceError::TooLarge(limit) => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    code::PAYLOAD_TOO_LARGE,
                    format!(
                        "the file is larger than the {limit} bytes sent whole as JSON; get a \
                         download link instead: GET /v1/files/shared/{}/download",
                        share_id.0
                    ),
                ),
                other => other.into(),
            })?;
        Ok(SharedFileContentResponse::Ok(Json(SharedFileContent {
            share_id: shared.share.id.to_string(),
            file_id: shared.file.id.to_string(),
            owner_user_id: shared.share.owner_id.to_string(),
            file_name: shared.name.clone(),
            content_type: shared.file.content_type.clone(),
            content_b64: b64(&shared.content),
            expires_utc: shared.share.expires_at.clone(),
        })))
    }

    /// Get a download link to a file shared with you
    ///
    /// A short-lived URL that streams the file, decrypted, with `Range` support: for files
    /// of any size. Issuing it is recorded as an access. Errors as reading the file.
    #[oai(
        path = "/v1/files/shared/:shareId/download",
        method = "get",
        operation_id = "downloadSharedFile"
    )]
    async fn download_shared(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "shareId")] share_id: Path<String>,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
    ) -> Result<DownloadLinkResponse, ApiError> {
        let secret = required_secret(secret.0, USER_SECRET_HEADER)?;
        let (token, ttl) = self
            .shares
            .download_link(&auth.0, &share_id.0, &secret, request_context(req))
            .await?;
        Ok(DownloadLinkResponse::Ok(Json(DownloadLink {
            url: format!("{}{DOWNLOADS_PATH}/{}", self.public_url, token.as_str()),
            expires_in: ttl.as_secs(),
        })))
    }

    /// Give up a file shared with you
    #[oai(
        path = "/v1/files/shared/:shareId",
        method = "delete",
        operation_id = "removeSharedFile"
    )]
    async fn remove_shared(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "shareId")] share_id: Path<String>,
    ) -> Result<RemovedResponse, ApiError> {
        let (share_id, at) = self
            .shares
            .remove_received(&auth.0, &share_id.0, request_context(req))
            .await?;
        Ok(RemovedResponse::Ok(Json(RemovedView {
            removed: true,
            share_id: share_id.to_string(),
            revoked_utc: at,
        })))
    }
}
