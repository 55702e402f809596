//! Sign-in with identity providers (`service::sso`, docs/sso.md): the public provider
//! list, `GET /v1/auth/oauth/{provider}` and its callback, the page's pick-up of the
//! outcome, and the account page's linked providers.
//!
//! The browser carries one cookie, `sbx_sso`: HttpOnly (no script reads it), `SameSite=Lax`
//! (sent on the provider's top-level redirect back to the callback, never on cross-site
//! subrequests or POSTs), `Path=/v1/auth`, short-lived, `Secure` when the server is
//! reached over https. First it binds the state, nonce and PKCE verifier of a sign-in to
//! this browser; the callback replaces it with the key of the outcome, which the page
//! collects with a same-origin POST, so the token pair never appears in a URL.

use poem::Request;
use poem::http::header;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::TokenPair;
use super::authn::Authenticated;
use super::error::ApiError;
use super::{path_id, request_context};
use crate::service::SsoService;
use crate::service::sso::pending::{self, Completed};
use crate::service::sso::{CallbackQuery, Redirect};
use crate::store::identities::Identity;

/// The cookie of a sign-in in progress.
pub const COOKIE: &str = "sbx_sso";
const COOKIE_PATH: &str = "/v1/auth";

pub struct SsoApi {
    pub sso: SsoService,
    /// `auth.sso_only`: passwords sign in instance admins only.
    pub sso_only: bool,
}

/// A configured identity provider.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ProviderView {
    /// In the sign-in URL: `/v1/auth/oauth/{id}`.
    pub id: String,
    /// The button's label.
    pub display_name: String,
    /// `oidc` (OpenID Connect, Google included) or `github`.
    pub kind: String,
    /// Where the sign-in button sends the browser.
    pub sign_in_url: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ProviderList {
    pub providers: Vec<ProviderView>,
    /// Password sign-in is off but for instance admins (`auth.sso_only`).
    pub sso_only: bool,
}

/// What a finished sign-in or link left for the page.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SsoCompletion {
    /// `signedIn` (with `tokens`) or `linked` (the account page's link).
    pub outcome: String,
    pub tokens: Option<TokenPair>,
    /// The provider's display name, for `linked`.
    pub provider: Option<String>,
}

/// The account page's link request: where to send the browser.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct LinkStart {
    pub authorization_url: String,
}

/// A provider account linked to the caller.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct IdentityView {
    pub id: String,
    /// The provider's id (`google`, `github`, an `[[auth.oidc]]` id).
    pub provider: String,
    /// The provider's display name, while it is configured.
    pub provider_name: Option<String>,
    /// The e-mail address the provider gave at the last sign-in.
    pub email: String,
    pub linked_at: String,
    pub last_login_at: Option<String>,
}

#[derive(Debug, Object)]
pub struct IdentityList {
    pub identities: Vec<IdentityView>,
}

#[derive(ApiResponse)]
pub enum ProvidersResponse {
    #[oai(status = 200)]
    Ok(Json<ProviderList>),
}

#[derive(ApiResponse)]
pub enum BeginResponse {
    /// To the identity provider, with the `sbx_sso` cookie that binds this sign-in to
    /// the browser.
    #[oai(status = 302)]
    Found(
        #[oai(header = "Location")] String,
        #[oai(header = "Set-Cookie")] String,
        #[oai(header = "Cache-Control")] String,
    ),
}

#[derive(ApiResponse)]
pub enum CallbackResponse {
    /// To the page that shows the outcome (`/login?sso=1`, or the account page after a
    /// link), with the `sbx_sso` cookie now naming that outcome.
    #[oai(status = 303)]
    SeeOther(
        #[oai(header = "Location")] String,
        #[oai(header = "Set-Cookie")] String,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Referrer-Policy")] String,
    ),
}

#[derive(ApiResponse)]
pub enum CompleteResponse {
    /// The outcome; the cookie is cleared.
    #[oai(status = 200)]
    Ok(Json<SsoCompletion>, #[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
pub enum LinkResponse {
    /// Send the browser to `authorizationUrl`; the cookie binds the link to it.
    #[oai(status = 200)]
    Ok(Json<LinkStart>, #[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
pub enum IdentitiesResponse {
    #[oai(status = 200)]
    Ok(Json<IdentityList>),
}

#[derive(ApiResponse)]
pub enum UnlinkResponse {
    /// Unlinked: that provider account no longer signs in to this one.
    #[oai(status = 204)]
    Unlinked,
}

#[OpenApi]
impl SsoApi {
    /// The configured identity providers
    ///
    /// Public: the sign-in page shows a button for each.
    #[oai(
        path = "/v1/auth/providers",
        method = "get",
        operation_id = "listIdentityProviders",
        tag = "ApiTags::Auth"
    )]
    async fn providers(&self) -> Result<ProvidersResponse, ApiError> {
        let providers = self
            .sso
            .providers()
            .into_iter()
            .map(|p| ProviderView {
                sign_in_url: format!("/v1/auth/oauth/{}", p.id),
                id: p.id,
                display_name: p.display_name,
                kind: p.kind.into(),
            })
            .collect();
        Ok(ProvidersResponse::Ok(Json(ProviderList {
            providers,
            sso_only: self.sso_only,
        })))
    }

    /// Sign in with an identity provider
    ///
    /// `google`, `github` or the id of an `[[auth.oidc]]` entry: redirects the browser to
    /// the provider (authorization code with PKCE S256, a state and, for OpenID Connect, a
    /// nonce), bound to this browser by an HttpOnly `sbx_sso` cookie. Unknown provider: 404.
    #[oai(
        path = "/v1/auth/oauth/:provider",
        method = "get",
        operation_id = "beginOAuth",
        tag = "ApiTags::Auth"
    )]
    async fn begin(&self, provider: Path<String>) -> Result<BeginResponse, ApiError> {
        let Redirect { location, cookie } = self.sso.begin(&provider.0, None).await?;
        Ok(BeginResponse::Found(
            location,
            self.cookie(&cookie, pending::FLOW_TTL.as_secs()),
            "no-store".into(),
        ))
    }

    /// The identity provider's callback
    ///
    /// Checks the state against this browser's cookie, exchanges the code, checks the ID
    /// token, finds or creates the account, then redirects to the page, which collects
    /// the outcome with `POST /v1/auth/sso/complete`. A refusal is recorded in the audit
    /// log and shown by that page. Unknown provider: 404.
    #[oai(
        path = "/v1/auth/oauth/:provider/callback",
        method = "get",
        operation_id = "oauthCallback",
        tag = "ApiTags::Auth"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn callback(
        &self,
        req: &Request,
        provider: Path<String>,
        code: Query<Option<String>>,
        state: Query<Option<String>>,
        error: Query<Option<String>>,
        error_description: Query<Option<String>>,
    ) -> Result<CallbackResponse, ApiError> {
        let query = CallbackQuery {
            code: code.0,
            state: state.0,
            error: error.0,
            error_description: error_description.0,
        };
        let cookie = read_cookie(req);
        let Redirect { location, cookie } = self
            .sso
            .callback(&provider.0, query, cookie.as_deref(), request_context(req))
            .await?;
        Ok(CallbackResponse::SeeOther(
            location,
            self.cookie(&cookie, pending::OUTCOME_TTL.as_secs()),
            "no-store".into(),
            // The callback's URL carries the code and state: never send it on.
            "no-referrer".into(),
        ))
    }

    /// Collect a finished sign-in
    ///
    /// The page the callback redirected to calls this once: it returns the token pair
    /// (the same as `POST /v1/auth/login`) or, after the account page's link, `linked`.
    /// A refused sign-in answers 401 with a code naming why (`SSO_STATE_MISMATCH`,
    /// `SSO_ID_TOKEN_AUDIENCE`, ... docs/sso.md) and a message for the page.
    #[oai(
        path = "/v1/auth/sso/complete",
        method = "post",
        operation_id = "completeOAuth",
        tag = "ApiTags::Auth"
    )]
    async fn complete(&self, req: &Request) -> Result<CompleteResponse, ApiError> {
        let cookie = read_cookie(req);
        let completion = match self.sso.complete(cookie.as_deref())? {
            Completed::SignedIn(signed_in) => SsoCompletion {
                outcome: "signedIn".into(),
                tokens: Some((*signed_in).into()),
                provider: None,
            },
            Completed::Linked { provider } => SsoCompletion {
                outcome: "linked".into(),
                tokens: None,
                provider: Some(provider),
            },
        };
        Ok(CompleteResponse::Ok(Json(completion), self.cookie("", 0)))
    }

    /// Link an identity provider to your account
    ///
    /// Returns the provider's authorization URL for the browser to open, and sets the
    /// `sbx_sso` cookie binding the link to this browser; the callback links the provider
    /// account to the caller. Sessions only, not API keys.
    #[oai(
        path = "/v1/auth/oauth/:provider/link",
        method = "post",
        operation_id = "linkIdentityProvider",
        tag = "ApiTags::Auth"
    )]
    async fn link(
        &self,
        auth: Authenticated,
        provider: Path<String>,
    ) -> Result<LinkResponse, ApiError> {
        let Redirect { location, cookie } = self.sso.begin(&provider.0, Some(&auth.0)).await?;
        Ok(LinkResponse::Ok(
            Json(LinkStart {
                authorization_url: location,
            }),
            self.cookie(&cookie, pending::FLOW_TTL.as_secs()),
        ))
    }

    /// Your linked identity providers
    #[oai(
        path = "/v1/me/identities",
        method = "get",
        operation_id = "listMyIdentities",
        tag = "ApiTags::Users"
    )]
    async fn identities(&self, auth: Authenticated) -> Result<IdentitiesResponse, ApiError> {
        let names = self.sso.providers();
        let identities = self
            .sso
            .identities(&auth.0)
            .await?
            .into_iter()
            .map(|identity: Identity| IdentityView {
                provider_name: names
                    .iter()
                    .find(|p| p.id == identity.provider)
                    .map(|p| p.display_name.clone()),
                id: identity.id.to_string(),
                provider: identity.provider,
                email: identity.email,
                linked_at: identity.created_at,
                last_login_at: identity.last_login_at,
            })
            .collect();
        Ok(IdentitiesResponse::Ok(Json(IdentityList { identities })))
    }

    /// Unlink an identity provider
    ///
    /// That provider account can no longer sign in to yours, and is not linked again by
    /// its e-mail address; link it again from the account page to undo.
    #[oai(
        path = "/v1/me/identities/:id",
        method = "delete",
        operation_id = "unlinkMyIdentity",
        tag = "ApiTags::Users"
    )]
    async fn unlink(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<UnlinkResponse, ApiError> {
        let id = path_id(&id.0, "linked identity")?;
        self.sso.unlink(&auth.0, id, request_context(req)).await?;
        Ok(UnlinkResponse::Unlinked)
    }
}

impl SsoApi {
    /// The `Set-Cookie` value for `value` (empty with `max_age` 0: cleared).
    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.sso.secure_cookies() {
            "; Secure"
        } else {
            ""
        };
        format!(
            "{COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        )
    }
}

/// This browser's `sbx_sso` cookie.
fn read_cookie(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}
