//! `/v1/users`: the caller's profile and finding colleagues.

use std::collections::BTreeMap;

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::ApiTags;
use super::auth::UserView;
use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::keys::{KeyStatusView, PublicKeys};
use super::{patch_field, request_context};
use crate::crypto::UserPublicKey;
use crate::service::IdentityService;
use crate::service::UserService;
use crate::service::users::ProfileUpdate;
use crate::store::user_keys::Colleague;
use crate::store::users::User;

pub struct UsersApi {
    pub identity: IdentityService,
    pub users: UserService,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct UpdateMeRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub display_name: Option<String>,
    /// An http(s) URL; `null` removes the avatar.
    #[oai(nullable)]
    #[serde(default)]
    pub avatar_url: MaybeUndefined<String>,
    /// Replaces the preferences object.
    pub preferences: Option<BTreeMap<String, serde_json::Value>>,
    /// An organization you belong to, used when a call sends no `X-Organization-Id`.
    pub default_organization_id: Option<String>,
    /// A new password (needs `currentPassword`); signs out every other session.
    #[oai(validator(max_length = 1024))]
    pub password: Option<String>,
    #[oai(validator(max_length = 1024))]
    pub current_password: Option<String>,
}

/// Another user as search shows them.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
}

impl From<User> for UserSummary {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email,
            display_name: u.display_name,
            avatar_url: u.avatar_url,
        }
    }
}

/// What the credential of a request resolves to.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WhoAmI {
    pub user: UserSummary,
    pub organization: WhoAmIOrganization,
    /// `session` (an access token) or `api_key`.
    pub auth_type: String,
    pub api_key_id: Option<String>,
    /// Permissions in effect: the role's, and for an API key only those among its scopes.
    pub scopes: Vec<String>,
}

#[derive(Debug, Object)]
pub struct WhoAmIOrganization {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub role: String,
}

#[derive(ApiResponse)]
pub enum WhoAmIResponse {
    #[oai(status = 200)]
    Ok(Json<WhoAmI>),
}

#[derive(ApiResponse)]
pub enum ProfileResponse {
    #[oai(status = 200)]
    Ok(Json<UserView>),
}

/// Your profile, with the status of your vault key pair.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct MeView {
    #[oai(flatten)]
    pub profile: UserView,
    pub keys: KeyStatusView,
}

#[derive(ApiResponse)]
pub enum MeResponse {
    #[oai(status = 200)]
    Ok(Json<MeView>),
}

/// A member of your organization as everyone in it sees them, with their public key
/// (absent until they generate one) to share with them.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PublicProfile {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub role: String,
    pub has_keys: bool,
    /// The X25519 half of the X-Wing key (the reference's ECC key).
    pub public_key_b64: Option<String>,
    /// The ML-KEM-768 half (the reference's Kyber key).
    pub public_key_kyber_b64: Option<String>,
    /// The whole X-Wing public key.
    pub public_key_x_wing_b64: Option<String>,
    pub fingerprint: Option<String>,
}

impl From<Colleague> for PublicProfile {
    fn from(c: Colleague) -> Self {
        let key = c
            .public_key
            .as_deref()
            .and_then(|bytes| UserPublicKey::from_bytes(bytes).ok());
        let keys = key.as_ref().map(PublicKeys::from);
        Self {
            id: c.user_id.to_string(),
            email: c.email,
            display_name: c.display_name,
            avatar_url: c.avatar_url,
            role: c.role,
            has_keys: keys.is_some(),
            public_key_b64: keys.as_ref().map(|k| k.public_key_b64.clone()),
            public_key_kyber_b64: keys.as_ref().map(|k| k.public_key_kyber_b64.clone()),
            public_key_x_wing_b64: keys.as_ref().map(|k| k.public_key_x_wing_b64.clone()),
            fingerprint: keys.map(|k| k.fingerprint),
        }
    }
}

#[derive(ApiResponse)]
pub enum ColleaguesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<PublicProfile>>),
}

#[derive(ApiResponse)]
pub enum ColleagueResponse {
    #[oai(status = 200)]
    Ok(Json<PublicProfile>),
}

#[derive(ApiResponse)]
pub enum SearchResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<UserSummary>>),
}

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Fetch your profile and preferences
    #[oai(path = "/v1/users/me", method = "get", operation_id = "getProfile")]
    async fn me(&self, auth: Authenticated) -> Result<MeResponse, ApiError> {
        let profile = self.users.me(&auth.0).await?;
        let keys = self.users.key_status(auth.0.user_id).await?;
        Ok(MeResponse::Ok(Json(MeView {
            profile: profile.into(),
            keys: keys.into(),
        })))
    }

    /// Update your profile
    ///
    /// Display name, avatar, preferences and default organization. Changing the password
    /// needs the current one and signs out every other session.
    #[oai(
        path = "/v1/users/me",
        method = "patch",
        operation_id = "updateProfile"
    )]
    async fn update_me(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<UpdateMeRequest>,
    ) -> Result<ProfileResponse, ApiError> {
        let body = body.0;
        let update = ProfileUpdate {
            display_name: body.display_name,
            avatar_url: patch_field(body.avatar_url),
            preferences: body
                .preferences
                .map(|m| serde_json::Value::Object(m.into_iter().collect())),
            default_organization_id: body.default_organization_id,
            password: body.password.map(Zeroizing::new),
            current_password: body.current_password.map(Zeroizing::new),
        };
        let profile = self
            .users
            .update_me(&auth.0, update, request_context(req))
            .await?;
        Ok(ProfileResponse::Ok(Json(profile.into())))
    }

    /// Who am I
    ///
    /// Resolves the credential (access token or API key) into its user, the organization
    /// the call acts in, and the permissions in effect.
    #[oai(path = "/v1/me", method = "get", operation_id = "whoAmI")]
    async fn whoami(&self, auth: Authenticated) -> Result<WhoAmIResponse, ApiError> {
        let (user, org, access) = self.users.whoami(&auth.0).await?;
        let key = auth.0.key().map(|k| k.key_id.to_string());
        Ok(WhoAmIResponse::Ok(Json(WhoAmI {
            user: user.into(),
            organization: WhoAmIOrganization {
                id: org.id.to_string(),
                name: org.name,
                slug: org.slug,
                role: access.role,
            },
            auth_type: if key.is_some() { "api_key" } else { "session" }.into(),
            api_key_id: key,
            scopes: access.permissions.keys(),
        })))
    }

    /// Members of your organization
    ///
    /// Public profiles and public keys of the active members of the organization the call
    /// acts in.
    #[oai(
        path = "/v1/users/org",
        method = "get",
        operation_id = "listColleagues"
    )]
    async fn colleagues(&self, auth: Authenticated) -> Result<ColleaguesResponse, ApiError> {
        let colleagues = self.users.colleagues(&auth.0).await?;
        Ok(ColleaguesResponse::Ok(Json(
            colleagues.into_iter().map(Into::into).collect(),
        )))
    }

    /// One member of your organization
    ///
    /// 404 for anyone who is not an active member of the organization the call acts in.
    #[oai(
        path = "/v1/users/org/:userId",
        method = "get",
        operation_id = "getColleague"
    )]
    async fn colleague(
        &self,
        auth: Authenticated,
        #[oai(name = "userId")] user_id: Path<String>,
    ) -> Result<ColleagueResponse, ApiError> {
        let colleague = self.users.colleague(&auth.0, &user_id.0).await?;
        Ok(ColleagueResponse::Ok(Json(colleague.into())))
    }

    /// Search users by name or email
    ///
    /// Only active members of organizations you belong to; at most 20 results.
    #[oai(
        path = "/v1/users/search",
        method = "get",
        operation_id = "searchUsers"
    )]
    async fn search(
        &self,
        auth: Authenticated,
        #[oai(validator(min_length = 2, max_length = 254))] q: Query<String>,
    ) -> Result<SearchResponse, ApiError> {
        let users = self.users.search(&auth.0, q.0).await?;
        Ok(SearchResponse::Ok(Json(
            users.into_iter().map(Into::into).collect(),
        )))
    }
}
