//! `/v1/api-keys` and `/v1/me`: API keys of the caller in the organization they act in,
//! and what a credential resolves to.

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::{ApiTags, patch_field, path_id, request_context};
use crate::ids::{ApiKeyId, UserId};
use crate::service::ApiKeyService;
use crate::service::api_keys::{IssuedKey, KeyInput};
use crate::store::api_keys::ApiKey;

pub struct ApiKeysApi {
    pub keys: ApiKeyService,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ApiKeyView {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub name: String,
    /// The key's first 12 characters, to tell keys apart.
    pub key_prefix: String,
    pub scopes: Vec<String>,
    /// CIDRs the key may be used from; empty: anywhere.
    pub ip_allowlist: Vec<String>,
    pub max_uses: Option<i64>,
    pub use_count: i64,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    pub created_at: String,
    /// After a rotation: the key that replaced this one (which works until `expiresAt`).
    pub rotated_to: Option<String>,
    /// The key itself: present only in the answer that created it. Store it now.
    pub key: Option<String>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.to_string(),
            organization_id: k.org_id.to_string(),
            user_id: k.user_id.to_string(),
            name: k.name,
            key_prefix: k.key_prefix,
            scopes: k.scopes,
            ip_allowlist: k.ip_allowlist,
            max_uses: k.max_uses,
            use_count: k.use_count,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            last_used_ip: k.last_used_ip,
            created_at: k.created_at,
            rotated_to: k.rotated_to.map(|id| id.to_string()),
            key: None,
        }
    }
}

impl From<IssuedKey> for ApiKeyView {
    fn from(issued: IssuedKey) -> Self {
        let mut view = ApiKeyView::from(issued.key);
        view.key = Some(issued.value.to_string());
        view
    }
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateApiKeyRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// Default: `transfers:write`, `files:read`. Never more than your role grants.
    /// `admin` (instance-admin power for the key) only an instance admin may grant.
    #[oai(validator(max_items = 32))]
    pub scopes: Option<Vec<String>>,
    #[oai(validator(max_items = 100))]
    pub ip_allowlist: Option<Vec<String>>,
    #[serde(alias = "max_uses")]
    pub max_uses: Option<i64>,
    /// RFC 3339, in the future.
    pub expires_at: Option<String>,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct UpdateApiKeyRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    #[oai(validator(max_items = 32))]
    pub scopes: Option<Vec<String>>,
    #[oai(validator(max_items = 100))]
    pub ip_allowlist: Option<Vec<String>>,
    /// `null` removes the limit.
    #[oai(nullable)]
    #[serde(default, alias = "max_uses")]
    pub max_uses: MaybeUndefined<i64>,
    /// `null` removes the expiry.
    #[oai(nullable)]
    #[serde(default)]
    pub expires_at: MaybeUndefined<String>,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RotateApiKeyRequest {
    /// Hours the old value keeps working (default 24, at most 168).
    #[oai(validator(maximum(value = "168")))]
    pub grace_period_hours: Option<u32>,
}

#[derive(ApiResponse)]
pub enum ApiKeysResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<ApiKeyView>>),
}

#[derive(ApiResponse)]
pub enum ApiKeyResponse {
    #[oai(status = 200)]
    Ok(Json<ApiKeyView>),
}

#[derive(ApiResponse)]
pub enum CreatedApiKeyResponse {
    /// Created; `key` is shown this once.
    #[oai(status = 201)]
    Created(Json<ApiKeyView>),
}

#[derive(ApiResponse)]
pub enum RevokedApiKeyResponse {
    /// Revoked: refused from its next request on.
    #[oai(status = 204)]
    Revoked,
}

#[OpenApi(tag = "ApiTags::ApiKeys")]
impl ApiKeysApi {
    /// List your API keys
    ///
    /// With `userId`, another member's keys in the organization: for owners and admins
    /// (`api_keys:write` and `members:write`, and a role that grants everything the
    /// member's does).
    #[oai(path = "/v1/api-keys", method = "get", operation_id = "listApiKeys")]
    async fn list(
        &self,
        auth: Authenticated,
        /// A member of the organization whose keys to list (default: yours).
        #[oai(name = "userId")]
        user_id: Query<Option<String>>,
    ) -> Result<ApiKeysResponse, ApiError> {
        let of: Option<UserId> = user_id.0.map(|raw| path_id(&raw, "member")).transpose()?;
        let keys = self.keys.list(&auth.0, of).await?;
        Ok(ApiKeysResponse::Ok(Json(
            keys.into_iter().map(Into::into).collect(),
        )))
    }

    /// Create an API key
    ///
    /// The key (`key`) is in this answer only; only its SHA-256 is stored.
    #[oai(path = "/v1/api-keys", method = "post", operation_id = "createApiKey")]
    async fn create(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<CreateApiKeyRequest>,
    ) -> Result<CreatedApiKeyResponse, ApiError> {
        let body = body.0;
        let input = KeyInput {
            name: Some(body.name),
            scopes: body.scopes,
            ip_allowlist: body.ip_allowlist,
            max_uses: body.max_uses.map(Some),
            expires_at: body.expires_at.map(Some),
        };
        let issued = self
            .keys
            .create(&auth.0, input, request_context(req))
            .await?;
        Ok(CreatedApiKeyResponse::Created(Json(issued.into())))
    }

    /// Change an API key
    #[oai(
        path = "/v1/api-keys/:id",
        method = "patch",
        operation_id = "updateApiKey"
    )]
    async fn update(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        body: JsonBody<UpdateApiKeyRequest>,
    ) -> Result<ApiKeyResponse, ApiError> {
        let id: ApiKeyId = path_id(&id.0, "API key")?;
        let body = body.0;
        let input = KeyInput {
            name: body.name,
            scopes: body.scopes,
            ip_allowlist: body.ip_allowlist,
            max_uses: patch_field(body.max_uses),
            expires_at: patch_field(body.expires_at),
        };
        let key = self
            .keys
            .update(&auth.0, id, input, request_context(req))
            .await?;
        Ok(ApiKeyResponse::Ok(Json(key.into())))
    }

    /// Revoke an API key
    ///
    /// Needs `api_keys:write`, except for a key revoking itself (signing out), which any
    /// key may do whatever its scopes. Owners and admins may also revoke another member's
    /// key (`members:write` too, and a role that grants everything the member's does).
    #[oai(
        path = "/v1/api-keys/:id",
        method = "delete",
        operation_id = "revokeApiKey"
    )]
    async fn revoke(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<RevokedApiKeyResponse, ApiError> {
        let id: ApiKeyId = path_id(&id.0, "API key")?;
        self.keys.revoke(&auth.0, id, request_context(req)).await?;
        Ok(RevokedApiKeyResponse::Revoked)
    }

    /// Rotate an API key
    ///
    /// Returns a new key with the same settings; the old one keeps working for
    /// `gracePeriodHours` (default 24, at most 168).
    #[oai(
        path = "/v1/api-keys/:id/rotate",
        method = "post",
        operation_id = "rotateApiKey"
    )]
    async fn rotate(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        body: JsonBody<RotateApiKeyRequest>,
    ) -> Result<CreatedApiKeyResponse, ApiError> {
        let id: ApiKeyId = path_id(&id.0, "API key")?;
        let issued = self
            .keys
            .rotate(&auth.0, id, body.0.grace_period_hours, request_context(req))
            .await?;
        Ok(CreatedApiKeyResponse::Created(Json(issued.into())))
    }
}
