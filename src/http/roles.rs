//! `/v1/roles` and `/v1/permissions`: what members may do in the organization a call acts
//! in (`X-Organization-Id`, else the caller's default organization).

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::request_context;
use crate::auth::Permission;
use crate::service::OrgService;
use crate::service::organizations::{RoleInfo, RoleInput};

pub struct RolesApi {
    pub orgs: OrgService,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct RoleView {
    /// The built-in role's name (`owner`, `admin`, `member`, `auditor`) or a custom role's id.
    pub id: String,
    pub name: String,
    pub description: String,
    /// Permission keys from `GET /v1/permissions`.
    pub permissions: Vec<String>,
    pub built_in: bool,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl From<RoleInfo> for RoleView {
    fn from(r: RoleInfo) -> Self {
        Self {
            id: r.id,
            name: r.name,
            description: r.description,
            permissions: r.permissions.keys(),
            built_in: r.built_in,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct PermissionView {
    /// The key to put in a role's `permissions`.
    pub key: String,
    pub description: String,
}

#[derive(Object, Deserialize)]
pub struct CreateRoleRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    /// Permission keys; none may be one your own role lacks.
    #[oai(validator(max_items = 64))]
    pub permissions: Vec<String>,
}

#[derive(Object, Deserialize)]
pub struct UpdateRoleRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    /// Replaces the role's permissions.
    #[oai(validator(max_items = 64))]
    pub permissions: Option<Vec<String>>,
}

#[derive(ApiResponse)]
pub enum RolesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<RoleView>>),
}

#[derive(ApiResponse)]
pub enum RoleResponse {
    #[oai(status = 200)]
    Ok(Json<RoleView>),
}

#[derive(ApiResponse)]
pub enum CreatedRoleResponse {
    #[oai(status = 201)]
    Created(Json<RoleView>),
}

#[derive(ApiResponse)]
pub enum DeletedRoleResponse {
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
pub enum PermissionsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<PermissionView>>),
}

#[OpenApi(tag = "ApiTags::Roles")]
impl RolesApi {
    /// List assignable permission keys
    #[oai(
        path = "/v1/permissions",
        method = "get",
        operation_id = "listPermissions"
    )]
    async fn permissions(&self, _auth: Authenticated) -> Result<PermissionsResponse, ApiError> {
        Ok(PermissionsResponse::Ok(Json(
            Permission::ALL
                .into_iter()
                .map(|p| PermissionView {
                    key: p.key().into(),
                    description: p.description().into(),
                })
                .collect(),
        )))
    }

    /// List roles
    ///
    /// The four built-in roles, then the organization's custom roles.
    #[oai(path = "/v1/roles", method = "get", operation_id = "listRoles")]
    async fn list(&self, auth: Authenticated) -> Result<RolesResponse, ApiError> {
        let roles = self.orgs.roles(&auth.0).await?;
        Ok(RolesResponse::Ok(Json(
            roles.into_iter().map(Into::into).collect(),
        )))
    }

    /// Define a custom role
    #[oai(path = "/v1/roles", method = "post", operation_id = "createRole")]
    async fn create(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<CreateRoleRequest>,
    ) -> Result<CreatedRoleResponse, ApiError> {
        let body = body.0;
        let input = RoleInput {
            name: Some(body.name),
            description: body.description,
            permissions: Some(body.permissions),
        };
        let role = self
            .orgs
            .create_role(&auth.0, input, request_context(req))
            .await?;
        Ok(CreatedRoleResponse::Created(Json(role.into())))
    }

    /// Fetch a role
    #[oai(path = "/v1/roles/:id", method = "get", operation_id = "getRole")]
    async fn get(&self, auth: Authenticated, id: Path<String>) -> Result<RoleResponse, ApiError> {
        let role = self.orgs.role(&auth.0, id.0).await?;
        Ok(RoleResponse::Ok(Json(role.into())))
    }

    /// Change a custom role
    ///
    /// Built-in roles cannot be changed (403).
    #[oai(path = "/v1/roles/:id", method = "patch", operation_id = "updateRole")]
    async fn update(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        body: JsonBody<UpdateRoleRequest>,
    ) -> Result<RoleResponse, ApiError> {
        let body = body.0;
        let input = RoleInput {
            name: body.name,
            description: body.description,
            permissions: body.permissions,
        };
        let role = self
            .orgs
            .update_role(&auth.0, id.0, input, request_context(req))
            .await?;
        Ok(RoleResponse::Ok(Json(role.into())))
    }

    /// Delete a custom role
    ///
    /// Refused with 409 while a member holds it.
    #[oai(path = "/v1/roles/:id", method = "delete", operation_id = "deleteRole")]
    async fn delete(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<DeletedRoleResponse, ApiError> {
        self.orgs
            .delete_role(&auth.0, id.0, request_context(req))
            .await?;
        Ok(DeletedRoleResponse::Deleted)
    }
}
