//! Authentication of API requests: the `Authenticated` extractor, documented as two
//! security schemes, that yields a `Principal`.
//!
//! - `Authorization: Bearer <token>`: an access token (JWT), or an API key when the token
//!   starts with `sbx_`.
//! - `X-Api-Key: <API key>`, considered only when no `Authorization` header is sent:
//!   Bearer wins when both are present.
//!
//! `X-Organization-Id` names the organization the call acts in.

use poem::Request;
use poem::http::header;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use super::error::ApiError;
use crate::auth::Principal;
use crate::auth::api_key::KEY_MARKER;
use crate::ids::OrgId;
use crate::service::{ApiKeyService, IdentityService};

/// The header that picks the organization a call acts in (else the default organization).
pub const ORGANIZATION_HEADER: &str = "X-Organization-Id";
/// The header that carries an API key when `Authorization` is not used.
pub const API_KEY_HEADER: &str = "X-Api-Key";
const BEARER_SCHEME: &str = "Authenticated";
const API_KEY_SCHEME: &str = "ApiKeyAuth";

/// An authenticated caller. As a handler argument it makes the operation require one.
pub struct Authenticated(pub Principal);

impl<'a> ApiExtractor<'a> for Authenticated {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            BEARER_SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "An access token from sign-in, or an API key (`sbx_live_...`). Wins over \
                     X-Api-Key when both are sent.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("JWT or API key"),
                flows: None,
                openid_connect_url: None,
            },
        );
        registry.create_security_scheme(
            API_KEY_SCHEME,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some("An API key (`sbx_live_...`)."),
                name: Some(API_KEY_HEADER),
                key_in: Some("header"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![BEARER_SCHEME, API_KEY_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut poem::RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        authenticate(req).await.map(Self).map_err(Into::into)
    }
}

/// Authenticates the request and keeps the principal in its extensions, so the handler's
/// `Authenticated` reuses it instead of checking the credential (and spending a use of a
/// limited API key) a second time. For middleware that must know the caller.
pub async fn authenticate_once(req: &mut Request) -> Result<Principal, ApiError> {
    let principal = authenticate(req).await?;
    req.extensions_mut().insert(principal.clone());
    Ok(principal)
}

/// Authenticates the request (reusing a principal `authenticate_once` left).
pub(crate) async fn authenticate(req: &Request) -> Result<Principal, ApiError> {
    if let Some(known) = req.extensions().get::<Principal>() {
        return Ok(known.clone());
    }
    const MISSING: &str = "authentication required: send Authorization: Bearer <access token \
                           or API key>, or X-Api-Key: <API key>";
    let requested_org = requested_org(req)?;
    let mut principal = match credential(req)? {
        Presented::AccessToken(token) => {
            let identity = req
                .data::<IdentityService>()
                .expect("the identity service is attached to every route");
            identity.authenticate(token).await?
        }
        Presented::ApiKey(key) => {
            let keys = req
                .data::<ApiKeyService>()
                .expect("the API key service is attached to every route");
            keys.authenticate(key, super::client_ip::client_ip(req))
                .await?
        }
        Presented::Nothing => {
            return Err(ApiError::new(
                poem::http::StatusCode::UNAUTHORIZED,
                super::error::code::UNAUTHORIZED,
                MISSING,
            ));
        }
    };
    principal.requested_org = requested_org;
    Ok(principal)
}

enum Presented<'a> {
    AccessToken(&'a str),
    ApiKey(&'a str),
    Nothing,
}

fn credential(req: &Request) -> Result<Presented<'_>, ApiError> {
    let unauthorized = |message: &str| {
        ApiError::new(
            poem::http::StatusCode::UNAUTHORIZED,
            super::error::code::UNAUTHORIZED,
            message,
        )
    };
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not readable text"))?;
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        return Ok(if token.starts_with(KEY_MARKER) {
            Presented::ApiKey(token)
        } else {
            Presented::AccessToken(token)
        });
    }
    match req.headers().get(API_KEY_HEADER) {
        Some(value) => value
            .to_str()
            .map(|key| Presented::ApiKey(key.trim()))
            .map_err(|_| unauthorized("the X-Api-Key header is not readable text")),
        None => Ok(Presented::Nothing),
    }
}

fn requested_org(req: &Request) -> Result<Option<OrgId>, ApiError> {
    let Some(value) = req.headers().get(ORGANIZATION_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<OrgId>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request(format!("{ORGANIZATION_HEADER} must be a UUID")))
}
