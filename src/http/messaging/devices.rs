//! `/v1/devices` (the caller's devices: list, register, top up one-time pre-keys, remove)
//! and `/v1/users/{id}/devices` (a colleague's bundles, one one-time pre-key claimed each).

use poem::Request;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::device_header;
use crate::http::error::ApiError;
use crate::http::json_body::JsonBody;
use crate::http::{ApiTags, authn::Authenticated, path_id, request_context};
use crate::service::messaging::MessagingService;
use crate::service::messaging::devices::{
    Bundle, DeviceRecord, KeyInput, NewDevice, PreKeyInput, SignedPreKeyInput,
};
use crate::store::messaging::devices::{Device, PreKey};

pub struct DevicesApi {
    pub messaging: MessagingService,
}

/// A public key with its algorithm label.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// `ed25519`, `x25519`, `ml-dsa-65` or `x-wing` for an identity key; `x25519`,
    /// `x-wing` or `ml-kem-768` for pre-keys.
    pub alg: String,
    /// Standard base64 of the public key (its exact size for the algorithm).
    pub public_key: String,
}

/// The signed pre-key: a key agreement key signed by the identity key. The server stores
/// the signature; clients verify it.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SignedPreKey {
    pub key_id: i64,
    pub alg: String,
    pub public_key: String,
    /// Standard base64 of the identity key's signature over the public key bytes.
    pub signature: String,
}

/// A one-time pre-key, handed out to one sender only.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct OneTimePreKey {
    pub key_id: i64,
    pub alg: String,
    pub public_key: String,
}

impl OneTimePreKey {
    fn input(self) -> PreKeyInput {
        PreKeyInput {
            key_id: self.key_id,
            alg: self.alg,
            public_key: self.public_key,
        }
    }
}

impl From<PreKey> for OneTimePreKey {
    fn from(k: PreKey) -> Self {
        Self {
            key_id: k.key_id,
            alg: k.alg,
            public_key: k.public_key,
        }
    }
}

/// More one-time pre-keys for one of your devices.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct AddPreKeysRequest {
    /// 1 to 100 keys under ids the device has never used; the device holds at most 200
    /// unclaimed keys.
    pub one_time_pre_keys: Vec<OneTimePreKey>,
}

/// A public key bundle to register.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RegisterDeviceRequest {
    /// A label for the owner, such as "Ada's laptop" (at most 100 characters).
    pub name: String,
    pub identity_key: PublicKey,
    pub signed_pre_key: SignedPreKey,
    /// Up to 100 one-time pre-keys.
    pub one_time_pre_keys: Option<Vec<OneTimePreKey>>,
}

/// A device and its public key bundle.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DeviceView {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub identity_key: PublicKey,
    pub signed_pre_key: SignedPreKey,
    /// One-time pre-keys not yet claimed (the owner's listing only).
    pub one_time_pre_keys_left: Option<i64>,
    /// The one-time pre-key claimed for the caller by this request (bundle fetches only;
    /// absent when the device has run out).
    pub one_time_pre_key: Option<OneTimePreKey>,
    pub created_at: String,
    pub last_seen_at: Option<String>,
}

impl DeviceView {
    fn of(d: Device) -> Self {
        Self {
            id: d.id.to_string(),
            user_id: d.user_id.to_string(),
            name: d.name,
            identity_key: PublicKey {
                alg: d.identity_key_alg,
                public_key: d.identity_key,
            },
            signed_pre_key: SignedPreKey {
                key_id: d.signed_prekey_id,
                alg: d.signed_prekey_alg,
                public_key: d.signed_prekey,
                signature: d.signed_prekey_signature,
            },
            one_time_pre_keys_left: None,
            one_time_pre_key: None,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
        }
    }
}

impl From<DeviceRecord> for DeviceView {
    fn from(r: DeviceRecord) -> Self {
        Self {
            one_time_pre_keys_left: Some(r.one_time_prekeys_left),
            ..Self::of(r.device)
        }
    }
}

impl From<Bundle> for DeviceView {
    fn from(b: Bundle) -> Self {
        Self {
            one_time_pre_key: b.one_time_prekey.map(Into::into),
            ..Self::of(b.device)
        }
    }
}

#[derive(ApiResponse)]
pub enum DevicesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<DeviceView>>),
}

#[derive(ApiResponse)]
pub enum RegisteredResponse {
    /// Registered; use its `id` as `X-Device-Id`.
    #[oai(status = 201)]
    Created(Json<DeviceView>),
}

#[derive(ApiResponse)]
pub enum DeviceResponse {
    /// The device as its owner sees it, with `oneTimePreKeysLeft`.
    #[oai(status = 200)]
    Ok(Json<DeviceView>),
}

#[derive(ApiResponse)]
pub enum RemovedResponse {
    /// Removed: it receives nothing more, and its pending envelopes are gone.
    #[oai(status = 204)]
    Removed,
}

#[OpenApi(tag = "ApiTags::Messaging")]
impl DevicesApi {
    /// List your registered devices and their public keys
    #[oai(path = "/v1/devices", method = "get", operation_id = "listDevices")]
    async fn list(
        &self,
        auth: Authenticated,
        /// The device this call acts as (optional here; checked when sent).
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
    ) -> Result<DevicesResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let devices = self.messaging.list_devices(&auth.0, device).await?;
        Ok(DevicesResponse::Ok(Json(
            devices.into_iter().map(Into::into).collect(),
        )))
    }

    /// Register a device with its public key bundle
    #[oai(path = "/v1/devices", method = "post", operation_id = "registerDevice")]
    async fn register(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<RegisterDeviceRequest>,
    ) -> Result<RegisteredResponse, ApiError> {
        let body = body.0;
        let input = NewDevice {
            name: body.name,
            identity_key: KeyInput {
                alg: body.identity_key.alg,
                public_key: body.identity_key.public_key,
            },
            signed_prekey: SignedPreKeyInput {
                key_id: body.signed_pre_key.key_id,
                alg: body.signed_pre_key.alg,
                public_key: body.signed_pre_key.public_key,
                signature: body.signed_pre_key.signature,
            },
            one_time_prekeys: body
                .one_time_pre_keys
                .unwrap_or_default()
                .into_iter()
                .map(OneTimePreKey::input)
                .collect(),
        };
        let device = self
            .messaging
            .register_device(&auth.0, input, request_context(req))
            .await?;
        Ok(RegisteredResponse::Created(Json(device.into())))
    }

    /// Add one-time pre-keys to one of your devices
    ///
    /// A device tops up when `oneTimePreKeysLeft` (in `GET /v1/devices`) runs low. The
    /// device's owner only (404 for anyone else's). A key id the device holds or had
    /// claimed, or more than 200 unclaimed keys in all: 409. Malformed keys: 422.
    #[oai(
        path = "/v1/devices/:id/prekeys",
        method = "post",
        operation_id = "addPreKeys"
    )]
    async fn add_prekeys(
        &self,
        auth: Authenticated,
        id: Path<String>,
        /// The device this call acts as (optional here; checked when sent).
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
        body: JsonBody<AddPreKeysRequest>,
    ) -> Result<DeviceResponse, ApiError> {
        let acting = device_header(device.0.as_deref())?;
        let id = path_id(&id.0, "device")?;
        let keys = body
            .0
            .one_time_pre_keys
            .into_iter()
            .map(OneTimePreKey::input)
            .collect();
        let device = self
            .messaging
            .add_prekeys(&auth.0, id, acting, keys)
            .await?;
        Ok(DeviceResponse::Ok(Json(device.into())))
    }

    /// Remove a device and revoke its keys
    ///
    /// Its open streams end, its undelivered envelopes are dropped, and calls naming it
    /// in `X-Device-Id` answer 401 from now on.
    #[oai(
        path = "/v1/devices/:id",
        method = "delete",
        operation_id = "removeDevice"
    )]
    async fn remove(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        /// The device this call acts as (optional here; checked when sent).
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
    ) -> Result<RemovedResponse, ApiError> {
        let acting = device_header(device.0.as_deref())?;
        let id = path_id(&id.0, "device")?;
        self.messaging
            .remove_device(&auth.0, id, acting, request_context(req))
            .await?;
        Ok(RemovedResponse::Removed)
    }

    /// Fetch a user's device bundles, claiming one one-time pre-key of each
    ///
    /// The user must be an active member of the organization the call acts in. Each
    /// claimed one-time pre-key is removed in the same transaction and never handed out
    /// again; a device that has run out is listed without one.
    #[oai(
        path = "/v1/users/:id/devices",
        method = "get",
        operation_id = "getUserDevices"
    )]
    async fn bundles(
        &self,
        auth: Authenticated,
        id: Path<String>,
        /// The device this call acts as (optional; it is left out of its own user's list).
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
    ) -> Result<DevicesResponse, ApiError> {
        let acting = device_header(device.0.as_deref())?;
        let user = path_id(&id.0, "user")?;
        let bundles = self.messaging.claim_bundles(&auth.0, user, acting).await?;
        Ok(DevicesResponse::Ok(Json(
            bundles.into_iter().map(Into::into).collect(),
        )))
    }
}
