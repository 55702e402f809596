//! The messaging routes (issue 19; the communication reference's Devices, Chats and
//! Messages), one `#[OpenApi]` struct per resource: `devices` (`/v1/devices`,
//! `/v1/users/{id}/devices`), `chats` (`/v1/chats`, participants), `messages`
//! (`/v1/messages`, reactions) and `stream` (`/v1/stream`, the per-device Server-Sent
//! Events). Every call may name the device it acts as in `X-Device-Id`; chats, messages
//! and the stream require it. See docs/messaging.md.

pub mod chats;
pub mod devices;
pub mod messages;
pub mod stream;

use super::error::ApiError;
use crate::ids::DeviceId;
use crate::service::messaging::unknown_device;

/// The header naming the device a call acts as.
pub const DEVICE_HEADER: &str = "X-Device-Id";

/// Parses `X-Device-Id`: a malformed id names no device of the caller, so it is the same
/// `401` as a removed one.
pub fn device_header(raw: Option<&str>) -> Result<Option<DeviceId>, ApiError> {
    match raw {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| unknown_device().into()),
    }
}
