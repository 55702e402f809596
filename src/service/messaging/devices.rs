//! Devices: register a public key bundle, list one's own, top up its one-time pre-keys,
//! remove one (it receives nothing more: its envelopes and pending events are dropped
//! with it), and fetch a colleague's bundles, claiming one one-time pre-key of each device
//! atomically.

use serde_json::json;

use super::limits::{self, IDENTITY_KEY_ALGS, PREKEY_ALGS};
use super::{MessagingService, check_optional_device, member, notify_devices};
use crate::auth::{Permission, Principal};
use crate::ids::{DeviceId, UserId};
use crate::service::{FieldError, Journal, RequestContext, ServiceError, invalid_if_any, read};
use crate::store::messaging::chats as chat_store;
use crate::store::messaging::devices::{self as device_store, Device, PreKey};
use crate::store::organizations;

/// A key bundle as registered.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub name: String,
    pub identity_key: KeyInput,
    pub signed_prekey: SignedPreKeyInput,
    pub one_time_prekeys: Vec<PreKeyInput>,
}

#[derive(Debug, Clone)]
pub struct KeyInput {
    pub alg: String,
    pub public_key: String,
}

#[derive(Debug, Clone)]
pub struct SignedPreKeyInput {
    pub key_id: i64,
    pub alg: String,
    pub public_key: String,
    pub signature: String,
}

#[derive(Debug, Clone)]
pub struct PreKeyInput {
    pub key_id: i64,
    pub alg: String,
    pub public_key: String,
}

/// A device with how many one-time pre-keys it has left.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub device: Device,
    pub one_time_prekeys_left: i64,
}

/// A colleague's device bundle, with the one-time pre-key claimed for the caller (none
/// when the device has run out).
#[derive(Debug, Clone)]
pub struct Bundle {
    pub device: Device,
    pub one_time_prekey: Option<PreKey>,
}

impl NewDevice {
    fn check(&self) -> Result<(), ServiceError> {
        let mut problems = Vec::new();
        limits::check_text(
            &self.name,
            limits::MAX_DEVICE_NAME_CHARS,
            "name",
            &mut problems,
        );
        limits::check_key(
            &self.identity_key.alg,
            &self.identity_key.public_key,
            IDENTITY_KEY_ALGS,
            "identityKey",
            &mut problems,
        );
        limits::check_key(
            &self.signed_prekey.alg,
            &self.signed_prekey.public_key,
            PREKEY_ALGS,
            "signedPreKey",
            &mut problems,
        );
        limits::check_b64(
            &self.signed_prekey.signature,
            limits::MAX_SIGNATURE_BYTES,
            "signedPreKey.signature",
            &mut problems,
        );
        if !(0..=u32::MAX as i64).contains(&self.signed_prekey.key_id) {
            problems.push(FieldError::new("signedPreKey.keyId", "0 to 4294967295"));
        }
        check_prekeys(&self.one_time_prekeys, &mut problems);
        invalid_if_any(problems)
    }
}

/// One-time pre-keys as uploaded (at registration or in a top-up): at most
/// [`limits::MAX_ONE_TIME_PREKEYS`], each a known label with a key of its size, key ids
/// in range and not listed twice. Problems are named `oneTimePreKeys[i]...`.
fn check_prekeys(keys: &[PreKeyInput], problems: &mut Vec<FieldError>) {
    if keys.len() > limits::MAX_ONE_TIME_PREKEYS {
        problems.push(FieldError::new(
            "oneTimePreKeys",
            format!("at most {} keys", limits::MAX_ONE_TIME_PREKEYS),
        ));
        return;
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, key) in keys.iter().enumerate() {
        let path = format!("oneTimePreKeys[{i}]");
        limits::check_key(&key.alg, &key.public_key, PREKEY_ALGS, &path, problems);
        if !(0..=u32::MAX as i64).contains(&key.key_id) {
            problems.push(FieldError::new(format!("{path}.keyId"), "0 to 4294967295"));
        } else if !seen.insert(key.key_id) {
            problems.push(FieldError::new(format!("{path}.keyId"), "is listed twice"));
        }
    }
}

fn stored_prekeys(keys: Vec<PreKeyInput>) -> Vec<PreKey> {
    keys.into_iter()
        .map(|k| PreKey {
            key_id: k.key_id,
            alg: k.alg,
            public_key: k.public_key,
        })
        .collect()
}

impl MessagingService {
    /// The caller's devices in the organization it acts in.
    pub async fn list_devices(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
    ) -> Result<Vec<DeviceRecord>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = member(conn, &principal, Permission::MessagesRead)?;
            check_optional_device(conn, &access, device)?;
            device_store::list_for_user(conn, access.org_id, access.user_id)?
                .into_iter()
                .map(|device| {
                    Ok(DeviceRecord {
                        one_time_prekeys_left: device_store::prekeys_left(conn, device.id)?,
                        device,
                    })
                })
                .collect()
        })
        .await
    }

    /// Registers a device. Audited; `device.registered` goes to webhooks and to the
    /// streams of the caller's other devices and of everyone sharing a chat with them,
    /// who must seal to it from now on.
    pub async fn register_device(
        &self,
        principal: &Principal,
        input: NewDevice,
        ctx: RequestContext,
    ) -> Result<DeviceRecord, ServiceError> {
        input.check()?;
        let principal = principal.clone();
        self.write_and_wake(move |tx, woken| {
            let access = member(tx, &principal, Permission::MessagesWrite)?;
            if device_store::count_for_user(tx, access.org_id, access.user_id)?
                >= limits::MAX_DEVICES_PER_USER
            {
                return Err(ServiceError::Conflict(format!(
                    "a user has at most {} devices in an organization; remove one first",
                    limits::MAX_DEVICES_PER_USER
                )));
            }
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let device = Device {
                id: DeviceId::new(),
                org_id: access.org_id,
                user_id: access.user_id,
                name: input.name.trim().to_owned(),
                identity_key_alg: input.identity_key.alg,
                identity_key: input.identity_key.public_key,
                signed_prekey_id: input.signed_prekey.key_id,
                signed_prekey_alg: input.signed_prekey.alg,
                signed_prekey: input.signed_prekey.public_key,
                signed_prekey_signature: input.signed_prekey.signature,
                created_at: journal.now().to_owned(),
                last_seen_at: None,
            };
            device_store::insert(tx, &device)?;
            let prekeys = stored_prekeys(input.one_time_prekeys);
            device_store::insert_prekeys(tx, device.id, &prekeys)?;
            journal.audit(
                "device.registered",
                "device",
                device.id,
                json!({"identityKeyAlg": device.identity_key_alg,
                       "signedPreKeyAlg": device.signed_prekey_alg}),
            )?;
            let data = json!({"deviceId": device.id, "userId": device.user_id});
            journal.event("device.registered", data.clone())?;
            let watchers = watchers_of(tx, &access, Some(device.id))?;
            notify_devices(
                tx,
                woken,
                &watchers,
                "device.registered",
                &data,
                journal.now(),
            )?;
            Ok(DeviceRecord {
                one_time_prekeys_left: prekeys.len() as i64,
                device,
            })
        })
        .await
    }

    /// Adds one-time pre-keys to one of the caller's own devices (another user's device,
    /// or one in another organization, is 404). A key id the device holds or has had
    /// claimed is `409` naming the ids; more than [`limits::MAX_PREKEYS_HELD`] unclaimed
    /// keys in all is `409`; malformed keys are `422`. Returns the device with its count.
    pub async fn add_prekeys(
        &self,
        principal: &Principal,
        id: DeviceId,
        acting_as: Option<DeviceId>,
        keys: Vec<PreKeyInput>,
    ) -> Result<DeviceRecord, ServiceError> {
        let mut problems = Vec::new();
        if keys.is_empty() {
            problems.push(FieldError::new(
                "oneTimePreKeys",
                format!("1 to {} keys", limits::MAX_ONE_TIME_PREKEYS),
            ));
        }
        check_prekeys(&keys, &mut problems);
        invalid_if_any(problems)?;
        let principal = principal.clone();
        crate::service::write(&self.store, move |tx| {
            let access = member(tx, &principal, Permission::MessagesWrite)?;
            check_optional_device(tx, &access, acting_as)?;
            let device = device_store::find_for_user(tx, access.org_id, access.user_id, id)?
                .ok_or(ServiceError::NotFound("device"))?;
            let ids: Vec<i64> = keys.iter().map(|k| k.key_id).collect();
            let known = device_store::known_prekey_ids(tx, device.id, &ids)?;
            if !known.is_empty() {
                let known: Vec<String> = known.iter().map(i64::to_string).collect();
                return Err(ServiceError::Conflict(format!(
                    "this device already uses one-time pre-key ids {} (held or claimed): \
                     upload keys under new ids",
                    known.join(", ")
                )));
            }
            let left = device_store::prekeys_left(tx, device.id)?;
            let total = left + keys.len() as i64;
            if total > limits::MAX_PREKEYS_HELD {
                return Err(ServiceError::Conflict(format!(
                    "a device holds at most {} unclaimed one-time pre-keys; it has {left}",
                    limits::MAX_PREKEYS_HELD
                )));
            }
            device_store::insert_prekeys(tx, device.id, &stored_prekeys(keys))?;
            Ok(DeviceRecord {
                device,
                one_time_prekeys_left: total,
            })
        })
        .await
    }

    /// Removes one of the caller's devices: its row, pre-keys, envelopes and pending
    /// events go in one transaction, and its open streams end at once. Audited.
    pub async fn remove_device(
        &self,
        principal: &Principal,
        id: DeviceId,
        acting_as: Option<DeviceId>,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let principal = principal.clone();
        self.write_and_wake(move |tx, woken| {
            let access = member(tx, &principal, Permission::MessagesWrite)?;
            check_optional_device(tx, &access, acting_as)?;
            if !device_store::delete(tx, access.org_id, access.user_id, id)? {
                return Err(ServiceError::NotFound("device"));
            }
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit("device.removed", "device", id, serde_json::Value::Null)?;
            let data = json!({"deviceId": id, "userId": access.user_id});
            journal.event("device.removed", data.clone())?;
            let watchers = watchers_of(tx, &access, None)?;
            notify_devices(tx, woken, &watchers, "device.removed", &data, journal.now())?;
            Ok(())
        })
        .await?;
        self.hub.close_device(id);
        Ok(())
    }

    /// The device bundles of `user` (an active member of the caller's organization, or
    /// the caller), each with one one-time pre-key taken for the caller: a claimed key is
    /// never handed out again.
    pub async fn claim_bundles(
        &self,
        principal: &Principal,
        user: UserId,
        acting_as: Option<DeviceId>,
    ) -> Result<Vec<Bundle>, ServiceError> {
        let principal = principal.clone();
        self.write_and_wake(move |tx, _| {
            let access = member(tx, &principal, Permission::MessagesWrite)?;
            check_optional_device(tx, &access, acting_as)?;
            let active = organizations::member_access(tx, access.org_id, user)?
                .is_some_and(|m| m.membership_status == "active");
            if !active {
                return Err(ServiceError::NotFound("user"));
            }
            let now = crate::ids::now_rfc3339();
            device_store::list_for_user(tx, access.org_id, user)?
                .into_iter()
                // The caller's own device needs no pre-key of itself.
                .filter(|d| Some(d.id) != acting_as)
                .map(|device| {
                    Ok(Bundle {
                        one_time_prekey: device_store::claim_prekey(tx, device.id, &now)?,
                        device,
                    })
                })
                .collect()
        })
        .await
    }
}

/// The devices that must learn about a change to the caller's devices: the caller's own
/// (but `except`) and those of everyone sharing a chat with the caller.
fn watchers_of(
    conn: &rusqlite::Connection,
    access: &crate::service::access::Access,
    except: Option<DeviceId>,
) -> Result<Vec<DeviceId>, ServiceError> {
    let mut users = chat_store::co_members(conn, access.org_id, access.user_id)?;
    users.push(access.user_id);
    Ok(device_store::ids_of_users(conn, access.org_id, &users)?
        .into_iter()
        .map(|(d, _)| d)
        .filter(|d| Some(*d) != except)
        .collect())
}
