//! `/v1/kv`: the caller's KV secrets and their read-only shares (the proxy reference's
//! KV and KV Sharing sections: routes, fields and error statuses as written there).

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
use crate::service::KvService;
use crate::service::kv::{NewShare, ReceivedShare};
use crate::store::shares::{Share, ShareWithName};

pub struct KvApi {
    pub kv: KvService,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct PutValueRequest {
    /// The value, base64 (standard alphabet, padding optional).
    pub value_b64: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct StoredValue {
    pub key: String,
    /// 1 for a new secret, then one more at each overwrite.
    pub version: i64,
    pub updated_utc: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ValueView {
    pub value_b64: String,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateShareRequest {
    pub recipient_user_id: String,
    /// Only `read`.
    pub permission: String,
    /// A name for the recipient to see, stored encrypted.
    pub alias: Option<String>,
    /// RFC 3339, in the future.
    pub expires_utc: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ShareCreated {
    pub share_id: String,
    pub recipient_user_id: String,
    pub permission: String,
    pub created_utc: String,
    #[oai(nullable)]
    pub expires_utc: Option<String>,
}

impl From<Share> for ShareCreated {
    fn from(s: Share) -> Self {
        Self {
            share_id: s.id.to_string(),
            recipient_user_id: s.recipient_id.to_string(),
            permission: s.permission,
            created_utc: s.created_at,
            expires_utc: s.expires_at,
        }
    }
}

/// An owner's view of one active share.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct OwnerShareView {
    pub share_id: String,
    pub recipient_user_id: String,
    pub recipient_name: String,
    pub permission: String,
    pub created_utc: String,
    pub updated_utc: String,
    #[oai(nullable)]
    pub expires_utc: Option<String>,
    #[oai(nullable)]
    pub first_access_utc: Option<String>,
    #[oai(nullable)]
    pub last_access_utc: Option<String>,
}

impl From<ShareWithName> for OwnerShareView {
    fn from(s: ShareWithName) -> Self {
        Self {
            share_id: s.share.id.to_string(),
            recipient_user_id: s.share.recipient_id.to_string(),
            recipient_name: s.name,
            permission: s.share.permission,
            created_utc: s.share.created_at,
            updated_utc: s.share.updated_at,
            expires_utc: s.share.expires_at,
            first_access_utc: s.share.first_access_at,
            last_access_utc: s.share.last_access_at,
        }
    }
}

/// A recipient's view of a share made to them.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ReceivedShareView {
    pub share_id: String,
    pub owner_user_id: String,
    pub owner_name: String,
    pub permission: String,
    #[oai(nullable)]
    pub alias: Option<String>,
    pub updated_utc: String,
    #[oai(nullable)]
    pub expires_utc: Option<String>,
}

impl From<ReceivedShare> for ReceivedShareView {
    fn from(r: ReceivedShare) -> Self {
        Self {
            share_id: r.share.id.to_string(),
            owner_user_id: r.share.owner_id.to_string(),
            owner_name: r.owner_name,
            permission: r.share.permission,
            alias: r.alias,
            updated_utc: r.share.updated_at,
            expires_utc: r.share.expires_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct SharedValueView {
    pub share_id: String,
    pub owner_user_id: String,
    pub value_b64: String,
    #[oai(nullable)]
    pub expires_utc: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct RevokedView {
    pub revoked: bool,
    pub share_id: String,
    pub revoked_utc: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct RemovedView {
    pub removed: bool,
    pub share_id: String,
    pub revoked_utc: String,
}

#[derive(ApiResponse)]
pub enum PutResponse {
    /// Stored as a new secret.
    #[oai(status = 201)]
    Created(Json<StoredValue>),
    /// Stored as a new version of the secret.
    #[oai(status = 200)]
    Updated(Json<StoredValue>),
}

#[derive(ApiResponse)]
pub enum ValueResponse {
    #[oai(status = 200)]
    Ok(Json<ValueView>),
}

#[derive(ApiResponse)]
pub enum DeletedResponse {
    /// Deleted, with every share of it.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
pub enum NamesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<String>>),
}

#[derive(ApiResponse)]
pub enum ShareCreatedResponse {
    #[oai(status = 201)]
    Created(Json<ShareCreated>),
}

#[derive(ApiResponse)]
pub enum OwnerSharesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<OwnerShareView>>),
}

#[derive(ApiResponse)]
pub enum RevokedResponse {
    #[oai(status = 200)]
    Ok(Json<RevokedView>),
}

#[derive(ApiResponse)]
pub enum ReceivedSharesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<ReceivedShareView>>),
}

#[derive(ApiResponse)]
pub enum SharedValueResponse {
    #[oai(status = 200)]
    Ok(Json<SharedValueView>),
}

#[derive(ApiResponse)]
pub enum RemovedResponse {
    #[oai(status = 200)]
    Ok(Json<RemovedView>),
}

#[OpenApi(tag = "ApiTags::Kv")]
impl KvApi {
    /// Store a secret
    ///
    /// Seals the value under a fresh key sealed to your public key: no secret is needed.
    /// With `X-User-Secret`, an overwrite keeps the secret's key, so existing shares see
    /// the new value; without it, existing shares can no longer be read until you share
    /// again. 400 without key material or for invalid base64; 413 over the size limit.
    #[oai(path = "/v1/kv/:key", method = "put", operation_id = "putSecret")]
    async fn put(
        &self,
        req: &Request,
        auth: Authenticated,
        key: Path<String>,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
        body: JsonBody<PutValueRequest>,
    ) -> Result<PutResponse, ApiError> {
        let stored = self
            .kv
            .put(
                &auth.0,
                key.0,
                &body.0.value_b64,
                optional_secret(secret.0),
                request_context(req),
            )
            .await?;
        let view = StoredValue {
            key: stored.name,
            version: stored.version,
            updated_utc: stored.updated_at,
        };
        Ok(if stored.created {
            PutResponse::Created(Json(view))
        } else {
            PutResponse::Updated(Json(view))
        })
    }

    /// Read a secret
    ///
    /// 401 for a missing or wrong `X-User-Secret`, 400 if the stored envelope or value was
    /// tampered with, 404 if there is no such key.
    #[oai(path = "/v1/kv/:key", method = "get", operation_id = "getSecret")]
    async fn get(
        &self,
        auth: Authenticated,
        key: Path<String>,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
    ) -> Result<ValueResponse, ApiError> {
        let secret = required_secret(secret.0, USER_SECRET_HEADER)?;
        let value = self.kv.get(&auth.0, key.0, &secret).await?;
        Ok(ValueResponse::Ok(Json(ValueView {
            value_b64: b64(&value),
        })))
    }

    /// Delete a secret
    #[oai(path = "/v1/kv/:key", method = "delete", operation_id = "deleteSecret")]
    async fn delete(
        &self,
        req: &Request,
        auth: Authenticated,
        key: Path<String>,
    ) -> Result<DeletedResponse, ApiError> {
        self.kv.delete(&auth.0, key.0, request_context(req)).await?;
        Ok(DeletedResponse::Deleted)
    }

    /// List your secrets' names
    #[oai(path = "/v1/kv", method = "get", operation_id = "listSecrets")]
    async fn list(&self, auth: Authenticated) -> Result<NamesResponse, ApiError> {
        Ok(NamesResponse::Ok(Json(self.kv.names(&auth.0).await?)))
    }

    /// Share a secret read-only
    ///
    /// Re-seals the secret's key to the recipient, a member of your organization (404
    /// otherwise). 400 if `permission` is not `read`, `expiresUtc` is not in the future,
    /// or either of you lacks keys; 401 for a wrong secret; 409 if the recipient already
    /// has an active share of this key.
    #[oai(
        path = "/v1/kv/:key/shares",
        method = "post",
        operation_id = "shareSecret"
    )]
    async fn share(
        &self,
        req: &Request,
        auth: Authenticated,
        key: Path<String>,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
        body: JsonBody<CreateShareRequest>,
    ) -> Result<ShareCreatedResponse, ApiError> {
        let secret = required_secret(secret.0, USER_SECRET_HEADER)?;
        let body = body.0;
        let input = NewShare {
            recipient_user_id: body.recipient_user_id,
            permission: body.permission,
            alias: body.alias,
            expires_utc: body.expires_utc,
        };
        let share = self
            .kv
            .share(&auth.0, key.0, input, secret, request_context(req))
            .await?;
        Ok(ShareCreatedResponse::Created(Json(share.into())))
    }

    /// List a secret's active shares
    #[oai(
        path = "/v1/kv/:key/shares",
        method = "get",
        operation_id = "listSecretShares"
    )]
    async fn shares(
        &self,
        auth: Authenticated,
        key: Path<String>,
    ) -> Result<OwnerSharesResponse, ApiError> {
        let shares = self.kv.shares_of(&auth.0, key.0).await?;
        Ok(OwnerSharesResponse::Ok(Json(
            shares.into_iter().map(Into::into).collect(),
        )))
    }

    /// Revoke a recipient's share
    #[oai(
        path = "/v1/kv/:key/shares/:recipientUserId",
        method = "delete",
        operation_id = "revokeSecretShare"
    )]
    async fn revoke(
        &self,
        req: &Request,
        auth: Authenticated,
        key: Path<String>,
        #[oai(name = "recipientUserId")] recipient_user_id: Path<String>,
    ) -> Result<RevokedResponse, ApiError> {
        let (share_id, at) = self
            .kv
            .revoke(&auth.0, key.0, &recipient_user_id.0, request_context(req))
            .await?;
        Ok(RevokedResponse::Ok(Json(RevokedView {
            revoked: true,
            share_id: share_id.to_string(),
            revoked_utc: at,
        })))
    }

    /// Secrets shared with you
    ///
    /// Active shares your current keys can still open; expired ones are left out.
    #[oai(
        path = "/v1/kv/shared",
        method = "get",
        operation_id = "listSharedSecrets"
    )]
    async fn received(
        &self,
        auth: Authenticated,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
    ) -> Result<ReceivedSharesResponse, ApiError> {
        let secret = required_secret(secret.0, USER_SECRET_HEADER)?;
        let shares = self.kv.received(&auth.0, &secret).await?;
        Ok(ReceivedSharesResponse::Ok(Json(
            shares.into_iter().map(Into::into).collect(),
        )))
    }

    /// Read a secret shared with you
    ///
    /// The access is recorded for the owner. 401 for a wrong secret, 403 if your current
    /// keys can no longer open the share, 404 if it does not exist, expired or is not yours.
    #[oai(
        path = "/v1/kv/shared/:shareId",
        method = "get",
        operation_id = "readSharedSecret"
    )]
    async fn read_shared(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "shareId")] share_id: Path<String>,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
    ) -> Result<SharedValueResponse, ApiError> {
        let secret = required_secret(secret.0, USER_SECRET_HEADER)?;
        let shared = self
            .kv
            .read_shared(&auth.0, &share_id.0, &secret, request_context(req))
            .await?;
        Ok(SharedValueResponse::Ok(Json(SharedValueView {
            share_id: shared.share.id.to_string(),
            owner_user_id: shared.share.owner_id.to_string(),
            value_b64: b64(&shared.value),
            expires_utc: shared.share.expires_at.clone(),
        })))
    }

    /// Give up a secret shared with you
    #[oai(
        path = "/v1/kv/shared/:shareId",
        method = "delete",
        operation_id = "removeSharedSecret"
    )]
    async fn remove_shared(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "shareId")] share_id: Path<String>,
    ) -> Result<RemovedResponse, ApiError> {
        let (share_id, at) = self
            .kv
            .remove_received(&auth.0, &share_id.0, request_context(req))
            .await?;
        Ok(RemovedResponse::Ok(Json(RemovedView {
            removed: true,
            share_id: share_id.to_string(),
            revoked_utc: at,
        })))
    }
}
