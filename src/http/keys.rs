//! `/v1/keys`: the caller's X-Wing key pair: generate, status, rekey.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::authn::Authenticated;
use super::error::ApiError;
use super::vault::{
    NEW_USER_SECRET_HEADER, SecretHeader, USER_SECRET_HEADER, b64, required_secret,
};
use super::{ApiTags, request_context};
use crate::crypto::{Argon2Params, UserPublicKey};
use crate::service::KeyService;
use crate::service::keys::KeyStatus;

pub struct KeysApi {
    pub keys: KeyService,
}

/// A user's public key: the X-Wing key whole, its two halves as the reference names them,
/// and a fingerprint to compare out of band.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct PublicKeys {
    /// The X25519 half of the X-Wing key (the reference's ECC key).
    pub public_key_b64: String,
    /// The ML-KEM-768 half of the X-Wing key (the reference's Kyber key).
    pub public_key_kyber_b64: String,
    /// The whole X-Wing public key (ML-KEM-768 || X25519, 1216 bytes).
    pub public_key_x_wing_b64: String,
    /// 32 hex characters: the first 16 bytes of SHA-256("sealbox/v1/fingerprint" || key).
    pub fingerprint: String,
}

impl From<&UserPublicKey> for PublicKeys {
    fn from(key: &UserPublicKey) -> Self {
        Self {
            public_key_b64: b64(key.x25519()),
            public_key_kyber_b64: b64(key.ml_kem_768()),
            public_key_x_wing_b64: b64(key.as_bytes()),
            fingerprint: key.fingerprint(),
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct KeyStatusView {
    pub has_ecc: bool,
    pub has_kyber: bool,
    /// A recovery restored the private key: rekey with the recovery secret as
    /// X-User-Secret and a fresh X-New-User-Secret.
    pub requires_rekey: bool,
    pub fingerprint: Option<String>,
    pub created_utc: Option<String>,
    pub updated_utc: Option<String>,
    /// The Argon2id salt of your sealed seed, base64: with `kekParams`, what a client
    /// needs to seal a restored seed (`POST /v1/recovery/restore/{ownerUserId}`).
    pub kek_salt_b64: Option<String>,
    pub kek_params: Option<KekParamsView>,
}

/// The Argon2id costs of your sealed seed's KEK.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct KekParamsView {
    /// Memory in KiB (Argon2 `m`).
    pub m_cost_kib: u32,
    /// Passes over memory (Argon2 `t`).
    pub t_cost: u32,
    /// Lanes (Argon2 `p`).
    pub p_cost: u32,
}

impl From<Argon2Params> for KekParamsView {
    fn from(p: Argon2Params) -> Self {
        Self {
            m_cost_kib: p.m_cost_kib,
            t_cost: p.t_cost,
            p_cost: p.p_cost,
        }
    }
}

impl From<KeyStatus> for KeyStatusView {
    fn from(status: KeyStatus) -> Self {
        let has = status.public_key.is_some();
        Self {
            has_ecc: has,
            has_kyber: has,
            requires_rekey: status.requires_rekey,
            fingerprint: status.public_key.as_ref().map(UserPublicKey::fingerprint),
            created_utc: status.created_at,
            updated_utc: status.updated_at,
            kek_salt_b64: status.kek_salt.as_deref().map(b64),
            kek_params: status.kek_params.map(Into::into),
        }
    }
}

#[derive(ApiResponse)]
pub enum GeneratedResponse {
    /// Created; the private key is stored only sealed under the user secret.
    #[oai(status = 201)]
    Created(Json<PublicKeys>),
}

#[derive(ApiResponse)]
pub enum StatusResponse {
    #[oai(status = 200)]
    Ok(Json<KeyStatusView>),
}

#[derive(ApiResponse)]
pub enum RekeyedResponse {
    /// Re-sealed: the old secret no longer opens the private key.
    #[oai(status = 204)]
    Rekeyed,
}

#[OpenApi(tag = "ApiTags::Keys")]
impl KeysApi {
    /// Generate your key pair
    ///
    /// Creates an X-Wing key pair (ML-KEM-768 + X25519). The private key is sealed with a
    /// key derived from `X-User-Secret` (Argon2id); the server cannot use it without that
    /// secret. 409 if you already have one: change the secret with rekey.
    #[oai(
        path = "/v1/keys/generate",
        method = "post",
        operation_id = "generateKeys"
    )]
    async fn generate(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
    ) -> Result<GeneratedResponse, ApiError> {
        let secret = required_secret(secret.0, USER_SECRET_HEADER)?;
        let public = self
            .keys
            .generate(&auth.0, secret, request_context(req))
            .await?;
        Ok(GeneratedResponse::Created(Json((&public).into())))
    }

    /// Whether you have a key pair
    #[oai(path = "/v1/keys/status", method = "get", operation_id = "keyStatus")]
    async fn status(&self, auth: Authenticated) -> Result<StatusResponse, ApiError> {
        let status = self.keys.status(&auth.0).await?;
        Ok(StatusResponse::Ok(Json(status.into())))
    }

    /// Change your user secret
    ///
    /// Re-seals the private key under `X-New-User-Secret`; `X-User-Secret` must open it
    /// (401 otherwise). 400 without key material. The key pair itself stays, so everything
    /// sealed to it stays readable.
    #[oai(path = "/v1/keys/rekey", method = "post", operation_id = "rekey")]
    async fn rekey(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
        #[oai(name = "X-New-User-Secret")] new_secret: SecretHeader,
    ) -> Result<RekeyedResponse, ApiError> {
        let old = required_secret(secret.0, USER_SECRET_HEADER)?;
        let new = required_secret(new_secret.0, NEW_USER_SECRET_HEADER)?;
        self.keys
            .rekey(&auth.0, old, new, request_context(req))
            .await?;
        Ok(RekeyedResponse::Rekeyed)
    }
}
