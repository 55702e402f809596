//! `/v1/organizations`: the tenant, its members and its suspension.

use std::collections::BTreeMap;

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::Deserialize;

use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::{ApiTags, path_id, request_context};
use crate::ids::{OrgId, UserId};
use crate::service::OrgService;
use crate::service::organizations::{
    MemberUpdate, OrgUpdate, OrgWithRole, SUSPENDED_BY_INSTANCE_ADMIN,
};
use crate::store::organizations::Member;

pub struct OrganizationsApi {
    pub orgs: OrgService,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct OrganizationView {
    pub id: String,
    pub name: String,
    /// Lower-case letters, digits and hyphens; unique on this server.
    pub slug: String,
    /// `active` or `suspended`.
    pub status: String,
    /// While suspended: `owner` (its owners suspended it and may lift it) or
    /// `instanceAdmin` (only an instance admin may lift it).
    pub suspended_by: Option<String>,
    /// Settings and branding: a JSON object the organization's admins keep.
    pub settings: serde_json::Value,
    /// The caller's role in the organization (absent for an instance admin who is not a
    /// member).
    pub role: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<OrgWithRole> for OrganizationView {
    fn from(o: OrgWithRole) -> Self {
        Self {
            id: o.org.id.to_string(),
            name: o.org.name,
            slug: o.org.slug,
            status: o.org.status,
            suspended_by: o.org.suspended_by.map(|by| match by.as_str() {
                SUSPENDED_BY_INSTANCE_ADMIN => "instanceAdmin".to_owned(),
                _ => by,
            }),
            settings: serde_json::from_str(&o.org.settings).unwrap_or_default(),
            role: o.role,
            created_at: o.org.created_at,
            updated_at: o.org.updated_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    /// A built-in role (`owner`, `admin`, `member`, `auditor`) or a custom role's id.
    pub role: String,
    /// `active` or `disabled`.
    pub status: String,
    pub joined_at: String,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        Self {
            user_id: m.user_id.to_string(),
            email: m.email,
            display_name: m.display_name,
            avatar_url: m.avatar_url,
            role: m.role,
            status: m.status,
            joined_at: m.joined_at,
        }
    }
}

/// A new organization; the caller becomes its owner.
#[derive(Object, Deserialize)]
pub struct CreateOrganizationRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// Derived from the name when absent.
    #[oai(validator(min_length = 2, max_length = 63))]
    pub slug: Option<String>,
}

#[derive(Object, Deserialize)]
pub struct UpdateOrganizationRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    #[oai(validator(min_length = 2, max_length = 63))]
    pub slug: Option<String>,
    /// Replaces the settings object.
    pub settings: Option<BTreeMap<String, serde_json::Value>>,
}

/// Whether a member may act in the organization.
#[derive(Debug, Clone, Copy, Enum, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    Active,
    /// Cannot act in the organization until made active again.
    Disabled,
}

#[derive(Object, Deserialize)]
pub struct UpdateMemberRequest {
    /// A built-in role or a custom role's id; never one that grants more than yours.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub role: Option<String>,
    pub status: Option<MemberStatus>,
}

#[derive(ApiResponse)]
pub enum OrganizationResponse {
    #[oai(status = 200)]
    Ok(Json<OrganizationView>),
}

#[derive(ApiResponse)]
pub enum CreatedOrganizationResponse {
    #[oai(status = 201)]
    Created(Json<OrganizationView>),
}

#[derive(ApiResponse)]
pub enum OrganizationsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<OrganizationView>>),
}

#[derive(ApiResponse)]
pub enum MembersResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<MemberView>>),
}

#[derive(ApiResponse)]
pub enum MemberResponse {
    #[oai(status = 200)]
    Ok(Json<MemberView>),
}

#[derive(ApiResponse)]
pub enum RemovedResponse {
    /// Removed.
    #[oai(status = 204)]
    Removed,
}

#[OpenApi(tag = "ApiTags::Organizations")]
impl OrganizationsApi {
    /// Create an organization
    ///
    /// The caller becomes its owner.
    #[oai(
        path = "/v1/organizations",
        method = "post",
        operation_id = "createOrganization"
    )]
    async fn create(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<CreateOrganizationRequest>,
    ) -> Result<CreatedOrganizationResponse, ApiError> {
        let body = body.0;
        let org = self
            .orgs
            .create(&auth.0, body.name, body.slug, request_context(req))
            .await?;
        Ok(CreatedOrganizationResponse::Created(Json(org.into())))
    }

    /// List the organizations you belong to
    #[oai(
        path = "/v1/organizations",
        method = "get",
        operation_id = "listOrganizations"
    )]
    async fn list(&self, auth: Authenticated) -> Result<OrganizationsResponse, ApiError> {
        let orgs = self.orgs.list_mine(&auth.0).await?;
        Ok(OrganizationsResponse::Ok(Json(
            orgs.into_iter().map(Into::into).collect(),
        )))
    }

    /// Fetch an organization
    #[oai(
        path = "/v1/organizations/:id",
        method = "get",
        operation_id = "getOrganization"
    )]
    async fn get(
        &self,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<OrganizationResponse, ApiError> {
        let org: OrgId = path_id(&id.0, "organization")?;
        let org = self.orgs.get(&auth.0, org).await?;
        Ok(OrganizationResponse::Ok(Json(org.into())))
    }

    /// Update name, slug or settings
    #[oai(
        path = "/v1/organizations/:id",
        method = "patch",
        operation_id = "updateOrganization"
    )]
    async fn update(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        body: JsonBody<UpdateOrganizationRequest>,
    ) -> Result<OrganizationResponse, ApiError> {
        let org: OrgId = path_id(&id.0, "organization")?;
        let body = body.0;
        let update = OrgUpdate {
            name: body.name,
            slug: body.slug,
            settings: body
                .settings
                .map(|m| serde_json::Value::Object(m.into_iter().collect())),
        };
        let org = self
            .orgs
            .update(&auth.0, org, update, request_context(req))
            .await?;
        Ok(OrganizationResponse::Ok(Json(org.into())))
    }

    /// List members and their roles
    #[oai(
        path = "/v1/organizations/:id/members",
        method = "get",
        operation_id = "listMembers"
    )]
    async fn members(
        &self,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<MembersResponse, ApiError> {
        let org: OrgId = path_id(&id.0, "organization")?;
        let members = self.orgs.members(&auth.0, org).await?;
        Ok(MembersResponse::Ok(Json(
            members.into_iter().map(Into::into).collect(),
        )))
    }

    /// Change a member's role or status
    ///
    /// Nobody acts on a member whose role grants more than their own or grants a role
    /// above their own (403); the last owner cannot be demoted or disabled (409).
    #[oai(
        path = "/v1/organizations/:id/members/:user_id",
        method = "patch",
        operation_id = "updateMember"
    )]
    async fn update_member(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        user_id: Path<String>,
        body: JsonBody<UpdateMemberRequest>,
    ) -> Result<MemberResponse, ApiError> {
        let org: OrgId = path_id(&id.0, "organization")?;
        let user: UserId = path_id(&user_id.0, "member")?;
        let body = body.0;
        let update = MemberUpdate {
            role: body.role,
            status: body.status.map(|status| {
                match status {
                    MemberStatus::Active => "active",
                    MemberStatus::Disabled => "disabled",
                }
                .to_owned()
            }),
        };
        let member = self
            .orgs
            .update_member(&auth.0, org, user, update, request_context(req))
            .await?;
        Ok(MemberResponse::Ok(Json(member.into())))
    }

    /// Remove a member, or leave
    ///
    /// Members may remove themselves; removing others needs `members:write`. The last
    /// owner cannot be removed (409).
    #[oai(
        path = "/v1/organizations/:id/members/:user_id",
        method = "delete",
        operation_id = "removeMember"
    )]
    async fn remove_member(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        user_id: Path<String>,
    ) -> Result<RemovedResponse, ApiError> {
        let org: OrgId = path_id(&id.0, "organization")?;
        let user: UserId = path_id(&user_id.0, "member")?;
        self.orgs
            .remove_member(&auth.0, org, user, request_context(req))
            .await?;
        Ok(RemovedResponse::Removed)
    }

    /// Suspend the organization
    ///
    /// Owners (`org:suspend`, signed in: no API key scope grants it) or an instance
    /// admin (signed in, or with a key carrying the `admin` scope). Every call on the
    /// organization's behalf is then `403 ORG_SUSPENDED` (its API keys included) until
    /// it is unsuspended.
    #[oai(
        path = "/v1/organizations/:id/suspend",
        method = "post",
        operation_id = "suspendOrganization"
    )]
    async fn suspend(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<OrganizationResponse, ApiError> {
        let org: OrgId = path_id(&id.0, "organization")?;
        let org = self
            .orgs
            .set_suspended(&auth.0, org, true, request_context(req))
            .await?;
        Ok(OrganizationResponse::Ok(Json(org.into())))
    }

    /// Unsuspend the organization
    ///
    /// Owners lift their own suspension, signed in (the organization's keys are
    /// stopped); a suspension an instance admin made (`suspendedBy: instanceAdmin`) only
    /// an instance admin can lift (403 otherwise).
    #[oai(
        path = "/v1/organizations/:id/unsuspend",
        method = "post",
        operation_id = "unsuspendOrganization"
    )]
    async fn unsuspend(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<OrganizationResponse, ApiError> {
        let org: OrgId = path_id(&id.0, "organization")?;
        let org = self
            .orgs
            .set_suspended(&auth.0, org, false, request_context(req))
            .await?;
        Ok(OrganizationResponse::Ok(Json(org.into())))
    }
}
