//! `/v1/recovery`: recovery material left with trustees, handed back, and restored (the
//! proxy reference's Recovery APIs: routes, fields and error statuses as written there).

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::vault::b64;
use super::{ApiTags, request_context};
use crate::service::RecoveryService;
use crate::service::recovery::{RestoreInput, ShareInput};
use crate::store::recovery::{RecoveryShare, RecoveryShareWithName};

pub struct RecoveryApi {
    pub recovery: RecoveryService,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct PutTrusteeRequest {
    /// The share of the private key for the trustee, base64 (standard alphabet, padding
    /// optional); opaque to the server. At most 16 KiB decoded.
    pub encrypted_private_key_ecc_share_b64: String,
    /// The second share, base64; opaque to the server. At most 16 KiB decoded.
    pub encrypted_private_key_kyber_share_b64: String,
    /// Whether the owner XORed the shares with a value derived from a salt only they know.
    pub xor_applied: bool,
    /// A reminder of that salt for the owner (not the salt itself).
    #[oai(validator(max_length = 256))]
    pub xor_salt_hint: Option<String>,
}

/// A trustee as the owner sees them.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct TrusteeView {
    pub trustee_user_id: String,
    /// The trustee's display name.
    pub trustee_name: String,
    pub xor_applied: bool,
    #[oai(nullable)]
    pub xor_salt_hint: Option<String>,
    pub created_utc: String,
    pub updated_utc: String,
}

impl From<RecoveryShareWithName> for TrusteeView {
    fn from(t: RecoveryShareWithName) -> Self {
        Self {
            trustee_user_id: t.share.trustee_id.to_string(),
            trustee_name: t.name,
            xor_applied: t.share.xor_applied,
            xor_salt_hint: t.share.xor_salt_hint,
            created_utc: t.share.created_at,
            updated_utc: t.share.updated_at,
        }
    }
}

/// An owner whose recovery material the caller holds.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct HeldShareView {
    pub owner_user_id: String,
    /// The owner's display name.
    pub owner_name: String,
    pub xor_applied: bool,
    #[oai(nullable)]
    pub xor_salt_hint: Option<String>,
    pub updated_utc: String,
}

impl From<RecoveryShareWithName> for HeldShareView {
    fn from(t: RecoveryShareWithName) -> Self {
        Self {
            owner_user_id: t.share.owner_id.to_string(),
            owner_name: t.name,
            xor_applied: t.share.xor_applied,
            xor_salt_hint: t.share.xor_salt_hint,
            updated_utc: t.share.updated_at,
        }
    }
}

/// The material an owner left with the caller, byte for byte as the owner sent it.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ShareMaterialView {
    pub owner_user_id: String,
    pub encrypted_private_key_ecc_share_b64: String,
    pub encrypted_private_key_kyber_share_b64: String,
    pub xor_applied: bool,
    #[oai(nullable)]
    pub xor_salt_hint: Option<String>,
    pub updated_utc: String,
}

impl From<RecoveryShare> for ShareMaterialView {
    fn from(s: RecoveryShare) -> Self {
        Self {
            owner_user_id: s.owner_id.to_string(),
            encrypted_private_key_ecc_share_b64: b64(&s.ecc_share),
            encrypted_private_key_kyber_share_b64: b64(&s.kyber_share),
            xor_applied: s.xor_applied,
            xor_salt_hint: s.xor_salt_hint,
            updated_utc: s.updated_at,
        }
    }
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RestoreRequest {
    /// The 32-byte X-Wing seed sealed like the stored seed (61 bytes, see docs/crypto.md)
    /// under a KEK from the recovery secret with your stored salt and Argon2id costs
    /// (`kekSaltB64` and `kekParams` of `GET /v1/keys/status`), base64.
    pub encrypted_private_key_ecc_b64: String,
    /// The same bytes as `encryptedPrivateKeyEccB64`: one seed covers both key halves.
    pub encrypted_private_key_kyber_b64: String,
    /// Whether the client removed an XOR layer while rebuilding the seed (recorded in the
    /// audit log).
    pub used_xor: bool,
    #[oai(validator(max_length = 256))]
    pub xor_salt_hint: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct RestoredView {
    /// Always true: rekey with the recovery secret as `X-User-Secret` next.
    pub requires_rekey: bool,
}

#[derive(ApiResponse)]
pub enum PutTrusteeResponse {
    /// The trustee now holds your recovery material.
    #[oai(status = 201)]
    Created(Json<TrusteeView>),
    /// The trustee's material was replaced.
    #[oai(status = 200)]
    Updated(Json<TrusteeView>),
}

#[derive(ApiResponse)]
pub enum TrusteesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<TrusteeView>>),
}

#[derive(ApiResponse)]
pub enum TrusteeRemovedResponse {
    /// Removed: the trustee no longer holds your material.
    #[oai(status = 204)]
    Removed,
}

#[derive(ApiResponse)]
pub enum HeldSharesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<HeldShareView>>),
}

#[derive(ApiResponse)]
pub enum ShareMaterialResponse {
    #[oai(status = 200)]
    Ok(Json<ShareMaterialView>),
}

#[derive(ApiResponse)]
pub enum RestoredResponse {
    /// Kept for the next rekey, which verifies it.
    #[oai(status = 200)]
    Ok(Json<RestoredView>),
}

#[OpenApi(tag = "ApiTags::Recovery")]
impl RecoveryApi {
    /// Leave recovery material with a trustee
    ///
    /// Creates (201) or replaces (200) the two shares a member of your organization holds
    /// for you. Both are ciphertext your client made; the server stores them as bytes.
    /// 400 for invalid base64, yourself as trustee, or without key material; 404 if the
    /// trustee is not an active member; 413 if a share is over 16 KiB.
    #[oai(
        path = "/v1/recovery/trustees/:trusteeUserId",
        method = "put",
        operation_id = "putRecoveryTrustee"
    )]
    async fn put_trustee(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "trusteeUserId")] trustee_user_id: Path<String>,
        body: JsonBody<PutTrusteeRequest>,
    ) -> Result<PutTrusteeResponse, ApiError> {
        let body = body.0;
        let input = ShareInput {
            ecc_share_b64: body.encrypted_private_key_ecc_share_b64,
            kyber_share_b64: body.encrypted_private_key_kyber_share_b64,
            xor_applied: body.xor_applied,
            xor_salt_hint: body.xor_salt_hint,
        };
        let set = self
            .recovery
            .set_trustee(&auth.0, &trustee_user_id.0, input, request_context(req))
            .await?;
        let view = set.trustee.into();
        Ok(if set.created {
            PutTrusteeResponse::Created(Json(view))
        } else {
            PutTrusteeResponse::Updated(Json(view))
        })
    }

    /// List your recovery trustees
    #[oai(
        path = "/v1/recovery/trustees",
        method = "get",
        operation_id = "listRecoveryTrustees"
    )]
    async fn trustees(&self, auth: Authenticated) -> Result<TrusteesResponse, ApiError> {
        let trustees = self.recovery.trustees(&auth.0).await?;
        Ok(TrusteesResponse::Ok(Json(
            trustees.into_iter().map(Into::into).collect(),
        )))
    }

    /// Remove a recovery trustee
    #[oai(
        path = "/v1/recovery/trustees/:trusteeUserId",
        method = "delete",
        operation_id = "deleteRecoveryTrustee"
    )]
    async fn delete_trustee(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "trusteeUserId")] trustee_user_id: Path<String>,
    ) -> Result<TrusteeRemovedResponse, ApiError> {
        self.recovery
            .remove_trustee(&auth.0, &trustee_user_id.0, request_context(req))
            .await?;
        Ok(TrusteeRemovedResponse::Removed)
    }

    /// Recovery material you hold for others
    ///
    /// The owners who chose you as a trustee in the organization the call acts in.
    #[oai(
        path = "/v1/recovery/shares",
        method = "get",
        operation_id = "listHeldRecoveryShares"
    )]
    async fn held(&self, auth: Authenticated) -> Result<HeldSharesResponse, ApiError> {
        let held = self.recovery.held(&auth.0).await?;
        Ok(HeldSharesResponse::Ok(Json(
            held.into_iter().map(Into::into).collect(),
        )))
    }

    /// Fetch an owner's recovery material
    ///
    /// The raw encrypted shares an owner left with you, to hand back to them. 404 if you
    /// are not their trustee in this organization.
    #[oai(
        path = "/v1/recovery/shares/:ownerUserId",
        method = "get",
        operation_id = "getHeldRecoveryShare"
    )]
    async fn held_share(
        &self,
        auth: Authenticated,
        #[oai(name = "ownerUserId")] owner_user_id: Path<String>,
    ) -> Result<ShareMaterialResponse, ApiError> {
        let share = self.recovery.held_share(&auth.0, &owner_user_id.0).await?;
        Ok(ShareMaterialResponse::Ok(Json(share.into())))
    }

    /// Restore your private key
    ///
    /// For the recovered user themself (`ownerUserId` is you; 404 otherwise). An X-Wing
    /// key pair has one 32-byte private seed covering both halves, so
    /// `encryptedPrivateKeyEccB64` is that seed sealed exactly like the stored seed (the
    /// 61-byte sealed-seed layout of docs/crypto.md) under a KEK derived from a recovery
    /// secret R with your stored salt and Argon2id costs (`kekSaltB64` and `kekParams` of
    /// `GET /v1/keys/status`), and `encryptedPrivateKeyKyberB64` carries the same bytes.
    /// 400 if they differ, are not base64, or are not a sealed seed; 400 without key
    /// material.
    ///
    /// The server cannot check the seed yet, as it does not know R: it keeps it beside your
    /// current seal, drops unlocked copies of your keys, and answers `requiresRekey`. The
    /// next `POST /v1/keys/rekey` with `X-User-Secret: R` and a new `X-New-User-Secret`
    /// opens it, checks that it derives your public key (400 otherwise), and re-seals it
    /// under the new secret. Until then the previous secret still works, so a bad restore
    /// loses nothing.
    #[oai(
        path = "/v1/recovery/restore/:ownerUserId",
        method = "post",
        operation_id = "restoreKeys"
    )]
    async fn restore(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "ownerUserId")] owner_user_id: Path<String>,
        body: JsonBody<RestoreRequest>,
    ) -> Result<RestoredResponse, ApiError> {
        let body = body.0;
        let input = RestoreInput {
            ecc_b64: body.encrypted_private_key_ecc_b64,
            kyber_b64: body.encrypted_private_key_kyber_b64,
            used_xor: body.used_xor,
            xor_salt_hint: body.xor_salt_hint,
        };
        self.recovery
            .restore(&auth.0, &owner_user_id.0, input, request_context(req))
            .await?;
        Ok(RestoredResponse::Ok(Json(RestoredView {
            requires_rekey: true,
        })))
    }
}
