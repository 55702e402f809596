//! `/admin/...`: the instance-admin routes of the proxy reference, unversioned as there.

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::api_keys::ApiKeyView;
use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::organizations::{MemberView, OrganizationView};
use super::{ApiTags, path_id, request_context};
use crate::ids::{OrgId, UserId};
use crate::service::admin::NewAccount;
use crate::service::organizations::OrgWithRole;
use crate::service::{AdminService, ApiKeyService, PasswordResetService};

pub struct AdminApi {
    pub admin: AdminService,
    pub password_reset: PasswordResetService,
    pub keys: ApiKeyService,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AdminOrganizationView {
    #[oai(flatten)]
    pub organization: OrganizationView,
    /// Active members.
    pub member_count: i64,
}

#[derive(Object, Deserialize)]
pub struct AdminCreateOrganizationRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    #[oai(validator(min_length = 2, max_length = 63))]
    pub slug: Option<String>,
}

/// A new account in the organization.
#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct AdminCreateUserRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub display_name: String,
    /// Without one, the answer carries a single-use link (valid 72 h) to choose it.
    #[oai(validator(min_length = 10, max_length = 1024))]
    pub password: Option<String>,
    /// A built-in role or a custom role's id; `member` when absent.
    pub role: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AdminCreatedUser {
    pub user: MemberView,
    pub organization_id: String,
    /// Single-use link to choose a password, when the account was created without one.
    /// Shown once.
    pub set_password_url: Option<String>,
}

#[derive(ApiResponse)]
pub enum AdminOrganizationsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<AdminOrganizationView>>),
}

#[derive(ApiResponse)]
pub enum AdminCreatedOrganizationResponse {
    #[oai(status = 201)]
    Created(Json<OrganizationView>),
}

#[derive(ApiResponse)]
pub enum AdminUsersResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<MemberView>>),
}

#[derive(ApiResponse)]
pub enum AdminRotatedKeyResponse {
    /// The new key, shown once.
    #[oai(status = 201)]
    Created(Json<ApiKeyView>),
}

#[derive(ApiResponse)]
pub enum AdminCreatedUserResponse {
    #[oai(status = 201)]
    Created(Json<AdminCreatedUser>),
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// Create an organization
    ///
    /// Instance admins only. The organization starts without members; add its owner with
    /// `POST /admin/orgs/{orgId}/users` and `role: owner`.
    #[oai(
        path = "/admin/orgs",
        method = "post",
        operation_id = "adminCreateOrganization"
    )]
    async fn create_org(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<AdminCreateOrganizationRequest>,
    ) -> Result<AdminCreatedOrganizationResponse, ApiError> {
        let body = body.0;
        let org = self
            .admin
            .create_org(&auth.0, body.name, body.slug, request_context(req))
            .await?;
        Ok(AdminCreatedOrganizationResponse::Created(Json(
            OrgWithRole { org, role: None }.into(),
        )))
    }

    /// List every organization
    #[oai(
        path = "/admin/orgs",
        method = "get",
        operation_id = "adminListOrganizations"
    )]
    async fn list_orgs(&self, auth: Authenticated) -> Result<AdminOrganizationsResponse, ApiError> {
        let orgs = self.admin.orgs(&auth.0).await?;
        Ok(AdminOrganizationsResponse::Ok(Json(
            orgs.into_iter()
                .map(|(org, member_count)| AdminOrganizationView {
                    organization: OrgWithRole { org, role: None }.into(),
                    member_count,
                })
                .collect(),
        )))
    }

    /// Create an account in an organization
    #[oai(
        path = "/admin/orgs/:org_id/users",
        method = "post",
        operation_id = "adminCreateUser"
    )]
    async fn create_user(
        &self,
        req: &Request,
        auth: Authenticated,
        org_id: Path<String>,
        body: JsonBody<AdminCreateUserRequest>,
    ) -> Result<AdminCreatedUserResponse, ApiError> {
        let org: OrgId = path_id(&org_id.0, "organization")?;
        let body = body.0;
        let account = NewAccount {
            email: body.email,
            display_name: body.display_name,
            password: body.password.map(Zeroizing::new),
            is_instance_admin: false,
        };
        let created = self
            .admin
            .add_user(&auth.0, org, account, body.role, request_context(req))
            .await?;
        let user = created.user;
        Ok(AdminCreatedUserResponse::Created(Json(AdminCreatedUser {
            user: MemberView {
                user_id: user.id.to_string(),
                email: user.email,
                display_name: user.display_name,
                avatar_url: user.avatar_url,
                role: created.role,
                status: "active".into(),
                joined_at: user.created_at,
            },
            organization_id: created.org_id.to_string(),
            set_password_url: created
                .set_password_token
                .map(|token| self.password_reset.link(&token).to_string()),
        })))
    }

    /// Rotate a user's API key
    ///
    /// Rotates the user's newest key in the organization (the old value keeps working for
    /// `gracePeriodHours`, default 24, at most 168), or issues their first key there.
    /// The answer carries the new key, once.
    #[oai(
        path = "/admin/orgs/:org_id/users/:user_id/apikey/rotate",
        method = "post",
        operation_id = "adminRotateUserApiKey"
    )]
    async fn rotate_user_key(
        &self,
        req: &Request,
        auth: Authenticated,
        org_id: Path<String>,
        user_id: Path<String>,
        #[oai(name = "gracePeriodHours", validator(maximum(value = "168")))]
        grace_period_hours: Query<Option<u32>>,
    ) -> Result<AdminRotatedKeyResponse, ApiError> {
        let org: OrgId = path_id(&org_id.0, "organization")?;
        let user: UserId = path_id(&user_id.0, "member")?;
        let issued = self
            .keys
            .admin_rotate(
                &auth.0,
                org,
                user,
                grace_period_hours.0,
                request_context(req),
            )
            .await?;
        Ok(AdminRotatedKeyResponse::Created(Json(issued.into())))
    }

    /// List the members of any organization
    #[oai(
        path = "/admin/orgs/:org_id/users",
        method = "get",
        operation_id = "adminListUsers"
    )]
    async fn list_users(
        &self,
        auth: Authenticated,
        org_id: Path<String>,
    ) -> Result<AdminUsersResponse, ApiError> {
        let org: OrgId = path_id(&org_id.0, "organization")?;
        let members = self.admin.org_users(&auth.0, org).await?;
        Ok(AdminUsersResponse::Ok(Json(
            members.into_iter().map(Into::into).collect(),
        )))
    }
}
