//! Headers and encodings shared by the vault routes (`/v1/keys`, `/v1/kv`, recovery).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::error::ApiError;
use crate::service::keys::UserSecret;

/// The header carrying the secret that unlocks the caller's private keys.
pub const USER_SECRET_HEADER: &str = "X-User-Secret";
/// The header carrying the new secret of a rekey.
pub const NEW_USER_SECRET_HEADER: &str = "X-New-User-Secret";

/// A required secret header: 401 when it is missing or empty (the reference's answer).
pub fn required_secret(value: Option<String>, header: &str) -> Result<UserSecret, ApiError> {
    optional_secret(value).ok_or_else(|| {
        ApiError::new(
            poem::http::StatusCode::UNAUTHORIZED,
            super::error::code::UNAUTHORIZED,
            format!("the {header} header is required for this operation"),
        )
    })
}

/// An optional secret header; empty counts as absent.
pub fn optional_secret(value: Option<String>) -> Option<UserSecret> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| UserSecret::new(v.into_bytes()))
}

pub fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}
