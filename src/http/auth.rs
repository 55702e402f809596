//! The `/v1/setup` and `/v1/auth/*` operations.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::request_context;
use crate::service::IdentityService;
use crate::service::identity::{Profile, RegisterInput, SetupInput, SignedIn};

pub struct AuthApi {
    pub identity: IdentityService,
}

/// Creates the first instance admin and their organization.
#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SetupRequest {
    /// The one-time token printed by `sealbox serve` at first start.
    pub token: String,
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// At least 10 characters, not a common password.
    #[oai(validator(min_length = 10, max_length = 1024))]
    pub password: String,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub display_name: String,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub organization_name: String,
}

/// A new account, as `auth.registration` allows.
#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    #[oai(validator(max_length = 254, pattern = r"^[^@\s]+@[^@\s]+$"))]
    pub email: String,
    /// At least 10 characters, not a common password.
    #[oai(validator(min_length = 10, max_length = 1024))]
    pub password: String,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub display_name: String,
    /// An organization invite sent to `email`: required when registration is by invite
    /// (the default); joins the invite's organization.
    pub invite_token: Option<String>,
}

#[derive(Object, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    #[serde(alias = "refresh_token")]
    pub refresh_token: String,
}

/// A new access token and refresh token, and who they belong to.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer`, valid for `expiresIn` seconds.
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    /// Opaque, single use: exchange it at `/v1/auth/refresh` for the next pair.
    pub refresh_token: String,
    /// The session this pair belongs to (see `/v1/sessions`).
    pub session_id: String,
    pub user: UserView,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    /// `active` or `disabled`.
    pub status: String,
    pub is_instance_admin: bool,
    pub default_organization_id: Option<String>,
    /// A JSON object the client keeps for the user (theme, language, ...).
    pub preferences: serde_json::Value,
    pub created_at: String,
    pub organizations: Vec<MembershipView>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MembershipView {
    pub id: String,
    pub name: String,
    pub role: String,
    /// The membership's status: `active` or `disabled`.
    pub status: String,
    /// The organization's status: `active` or `suspended`.
    pub organization_status: String,
}

impl From<Profile> for UserView {
    fn from(profile: Profile) -> Self {
        let user = profile.user;
        Self {
            id: user.id.to_string(),
            email: user.email,
            display_name: user.display_name,
            avatar_url: user.avatar_url,
            status: user.status.as_str().into(),
            is_instance_admin: user.is_instance_admin,
            default_organization_id: user.default_org_id.map(|o| o.to_string()),
            preferences: serde_json::from_str(&user.preferences).unwrap_or_default(),
            created_at: user.created_at,
            organizations: profile
                .memberships
                .into_iter()
                .map(|m| MembershipView {
                    id: m.org_id.to_string(),
                    name: m.org_name,
                    role: m.role,
                    status: m.status,
                    organization_status: m.org_status,
                })
                .collect(),
        }
    }
}

impl From<SignedIn> for TokenPair {
    fn from(signed_in: SignedIn) -> Self {
        Self {
            access_token: signed_in.access_token,
            token_type: "Bearer".into(),
            expires_in: signed_in.expires_in,
            refresh_token: signed_in.refresh_token.to_string(),
            session_id: signed_in.session_id.to_string(),
            user: signed_in.profile.into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum SignedInResponse {
    /// Signed in.
    #[oai(status = 200)]
    Ok(Json<TokenPair>),
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// The account was created and is signed in.
    #[oai(status = 201)]
    Created(Json<TokenPair>),
}

#[derive(ApiResponse)]
pub enum SetupResponse {
    /// The first admin and organization were created; they are signed in.
    #[oai(status = 201)]
    Created(Json<TokenPair>),
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// The session is over.
    #[oai(status = 204)]
    LoggedOut,
}

#[derive(ApiResponse)]
pub enum MeResponse {
    #[oai(status = 200)]
    Ok(Json<UserView>),
}

#[OpenApi]
impl AuthApi {
    /// Create the first instance admin
    ///
    /// Works once, with the setup token `sealbox serve` prints while no user exists.
    #[oai(
        path = "/v1/setup",
        method = "post",
        operation_id = "setup",
        tag = "ApiTags::Auth"
    )]
    async fn setup(
        &self,
        req: &Request,
        body: JsonBody<SetupRequest>,
    ) -> Result<SetupResponse, ApiError> {
        let body = body.0;
        let input = SetupInput {
            token: body.token,
            email: body.email,
            password: body.password,
            display_name: body.display_name,
            organization_name: body.organization_name,
        };
        let signed_in = self.identity.setup(input, request_context(req)).await?;
        Ok(SetupResponse::Created(Json(signed_in.into())))
    }

    /// Create an account
    ///
    /// Obeys `auth.registration`: `closed` refuses (403), `invite` (the default) needs
    /// an invite token for the same address (403 without one, 401 for a dead one), `open`
    /// lets anyone in. Returns a token pair.
    #[oai(
        path = "/v1/auth/register",
        method = "post",
        operation_id = "register",
        tag = "ApiTags::Auth"
    )]
    async fn register(
        &self,
        req: &Request,
        body: JsonBody<RegisterRequest>,
    ) -> Result<RegisterResponse, ApiError> {
        let body = body.0;
        let input = RegisterInput {
            email: body.email,
            password: body.password,
            display_name: body.display_name,
            invite_token: body.invite_token,
        };
        let signed_in = self.identity.register(input, request_context(req)).await?;
        Ok(RegisterResponse::Created(Json(signed_in.into())))
    }

    /// Sign in with email and password
    ///
    /// Wrong email and wrong password get the same answer. Repeated failures, per account
    /// and per client address, are delayed with growing waits (429 with `Retry-After`).
    #[oai(
        path = "/v1/auth/login",
        method = "post",
        operation_id = "login",
        tag = "ApiTags::Auth"
    )]
    async fn login(
        &self,
        req: &Request,
        body: JsonBody<LoginRequest>,
    ) -> Result<SignedInResponse, ApiError> {
        let body = body.0;
        let signed_in = self
            .identity
            .login(body.email, body.password, request_context(req))
            .await?;
        Ok(SignedInResponse::Ok(Json(signed_in.into())))
    }

    /// Rotate the refresh token
    ///
    /// Returns a new pair and invalidates the presented refresh token. Presenting a
    /// refresh token a second time revokes its whole session.
    #[oai(
        path = "/v1/auth/refresh",
        method = "post",
        operation_id = "refresh",
        tag = "ApiTags::Auth"
    )]
    async fn refresh(
        &self,
        req: &Request,
        body: JsonBody<RefreshRequest>,
    ) -> Result<SignedInResponse, ApiError> {
        let signed_in = self
            .identity
            .refresh(body.0.refresh_token, request_context(req))
            .await?;
        Ok(SignedInResponse::Ok(Json(signed_in.into())))
    }

    /// Sign out
    ///
    /// Revokes the session of the presented refresh token; its access tokens stop working
    /// at once.
    #[oai(
        path = "/v1/auth/logout",
        method = "post",
        operation_id = "logout",
        tag = "ApiTags::Auth"
    )]
    async fn logout(
        &self,
        req: &Request,
        body: JsonBody<RefreshRequest>,
    ) -> Result<LogoutResponse, ApiError> {
        self.identity
            .logout(body.0.refresh_token, request_context(req))
            .await?;
        Ok(LogoutResponse::LoggedOut)
    }

    /// The authenticated account
    #[oai(
        path = "/v1/auth/me",
        method = "get",
        operation_id = "getMe",
        tag = "ApiTags::Auth"
    )]
    async fn me(&self, auth: Authenticated) -> Result<MeResponse, ApiError> {
        let profile = self.identity.profile(auth.0.user_id).await?;
        Ok(MeResponse::Ok(Json(profile.seen_by(&auth.0).into())))
    }
}
