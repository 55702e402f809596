//! Headers and encodings shared by the vault routes (`/v1/keys`, `/v1/kv`, recovery).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaParamIn, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use super::error::ApiError;
use crate::service::keys::UserSecret;

/// The header carrying the secret that unlocks the caller's private keys.
pub const USER_SECRET_HEADER: &str = "X-User-Secret";
/// The header carrying the new secret of a rekey.
pub const NEW_USER_SECRET_HEADER: &str = "X-New-User-Secret";

/// A secret header (`#[oai(name = "X-User-Secret")] secret: SecretHeader`), documented as
/// an optional string header.
///
/// The value is the header's bytes exactly as received, which must be UTF-8: poem-openapi's
/// own `Header<String>` only sees visible ASCII, so a secret such as `pässwort-ü` looked
/// absent. A value that is not UTF-8 is refused with 400 saying so. The secret also
/// carries a digest of the credential the request presented, which the unlock throttle
/// counts wrong guesses against.
pub struct SecretHeader(pub Option<UserSecret>);

impl<'a> ApiExtractor<'a> for SecretHeader {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];
    const PARAM_IS_REQUIRED: bool = false;

    type ParamType = Option<String>;
    type ParamRawType = String;

    fn register(registry: &mut Registry) {
        <Option<String> as Type>::register(registry);
    }

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Header)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(<Option<String> as Type>::schema_ref())
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let Some(value) = request.headers().get(param_opts.name) else {
            return Ok(Self(None));
        };
        let text = std::str::from_utf8(value.as_bytes()).map_err(|_| {
            ApiError::bad_request(format!(
                "the {} header is not UTF-8: send the secret's UTF-8 bytes",
                param_opts.name
            ))
            .with_detail(param_opts.name, "must be UTF-8")
        })?;
        let credential = super::rate_limit::credential_digest(request).map(hex);
        Ok(Self(Some(UserSecret::presented(
            text.as_bytes().to_vec(),
            credential,
        ))))
    }
}

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A required secret header: 401 when it is missing or empty (the reference's answer).
pub fn required_secret(value: Option<UserSecret>, header: &str) -> Result<UserSecret, ApiError> {
    optional_secret(value).ok_or_else(|| {
        ApiError::new(
            poem::http::StatusCode::UNAUTHORIZED,
            super::error::code::UNAUTHORIZED,
            format!("the {header} header is required for this operation"),
        )
    })
}

/// An optional secret header; empty counts as absent.
pub fn optional_secret(value: Option<UserSecret>) -> Option<UserSecret> {
    value.filter(|v| !v.as_bytes().is_empty())
}

pub fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}
