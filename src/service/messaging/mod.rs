//! Messaging (issue 19; the communication reference's Devices, Chats and Messages): the
//! server moves ciphertext and per-device envelopes and never holds a key that opens
//! them. See docs/messaging.md for the rules this module keeps.
//!
//! - `devices`: key bundles, one-time pre-key claims, removal.
//! - `chats`: one-to-one and group chats, participants, leaving.
//! - `messages`: sending (the envelope-coverage rule), listing, edits, tombstones,
//!   reactions, self-destruct (`sweeper`).
//! - `attachments`: files a message names, and who may download them through it.
//! - `stream`: the per-device event log and the hub that wakes open streams.
//!
//! Every call acts as one device of the caller (`X-Device-Id`), checked in the call's
//! own transaction: a removed device is `401` on its next call.

pub mod attachments;
pub mod chats;
pub mod devices;
pub mod limits;
pub mod messages;
pub mod stream;
pub mod sweeper;

use rusqlite::Connection;

use super::access::{self, Access};
use super::{ServiceError, write};
use crate::auth::{Permission, Principal};
use crate::ids::{ChatId, DeviceId, UserId};
use crate::store::Store;
use crate::store::messaging::{chats as chat_store, devices as device_store, events};

pub use stream::{Hub, StreamEvent};

/// Devices, chats, messages and their real-time stream.
#[derive(Clone)]
pub struct MessagingService {
    store: Store,
    hub: Hub,
}

impl std::fmt::Debug for MessagingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagingService").finish_non_exhaustive()
    }
}

/// The caller acting as one of its devices in an organization.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub access: Access,
    pub device: DeviceId,
}

impl Actor {
    pub fn user(&self) -> UserId {
        self.access.user_id
    }
}

/// The `401` of a device id that names no device of the caller (removed, or never one).
pub fn unknown_device() -> ServiceError {
    ServiceError::Unauthorized(
        "X-Device-Id names no device of yours in this organization (removed, or never registered)",
    )
}

impl MessagingService {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            hub: Hub::default(),
        }
    }

    /// The hub of open streams (the server ends them all at shutdown).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Runs `f` in one write transaction, then wakes the streams of the devices it wrote
    /// events for (only once the events are committed, so a woken stream finds them).
    pub(crate) async fn write_and_wake<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &mut Vec<DeviceId>) -> Result<T, ServiceError>
            + Send
            + 'static,
    {
        let (value, woken) = write(&self.store, move |tx| {
            let mut woken = Vec::new();
            let value = f(tx, &mut woken)?;
            Ok((value, woken))
        })
        .await?;
        self.hub.wake(&woken);
        Ok(value)
    }
}

/// The caller in the organization it acts in, holding `permission`.
pub(crate) fn member(
    conn: &Connection,
    principal: &Principal,
    permission: Permission,
) -> Result<Access, ServiceError> {
    let access = access::in_requested_org(conn, principal)?;
    access.require(permission)?;
    Ok(access)
}

/// The caller acting as `device`, which must be one of its devices in the organization:
/// otherwise `401`. Missing header: `400`.
pub(crate) fn acting(
    conn: &Connection,
    principal: &Principal,
    device: Option<DeviceId>,
    permission: Permission,
) -> Result<Actor, ServiceError> {
    let access = member(conn, principal, permission)?;
    let device = device.ok_or_else(|| {
        ServiceError::BadRequest(
            "send X-Device-Id: the id of the device this call acts as (POST /v1/devices)".into(),
        )
    })?;
    if !device_store::exists(conn, access.org_id, access.user_id, device)? {
        return Err(unknown_device());
    }
    Ok(Actor { access, device })
}

/// When `device` is sent on a devices call, it must still be one of the caller's.
pub(crate) fn check_optional_device(
    conn: &Connection,
    access: &Access,
    device: Option<DeviceId>,
) -> Result<(), ServiceError> {
    match device {
        Some(device) if !device_store::exists(conn, access.org_id, access.user_id, device)? => {
            Err(unknown_device())
        }
        _ => Ok(()),
    }
}

/// The current devices of a chat's members (ids and owners), by owner then id.
pub(crate) fn chat_devices(
    conn: &Connection,
    access: &Access,
    chat: ChatId,
) -> Result<Vec<(DeviceId, UserId)>, ServiceError> {
    let users: Vec<UserId> = chat_store::members(conn, chat)?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    Ok(device_store::ids_of_users(conn, access.org_id, &users)?)
}

/// Appends one event to the logs of `devices` and remembers them for waking.
pub(crate) fn notify_devices(
    conn: &Connection,
    woken: &mut Vec<DeviceId>,
    devices: &[DeviceId],
    event_type: &str,
    data: &serde_json::Value,
    now: &str,
) -> Result<(), ServiceError> {
    events::append(conn, devices, event_type, data, now)?;
    woken.extend_from_slice(devices);
    Ok(())
}
