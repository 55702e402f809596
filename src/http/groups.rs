//! `/v1/teams` and `/v1/departments`: named groups of members of the organization a call
//! acts in. The two resources behave alike, so one macro writes both APIs.

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::{path_id, request_context};
use crate::ids::GroupId;
use crate::service::GroupService;
use crate::service::groups::GroupInput;
use crate::store::groups::{Group, GroupKind};

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct GroupView {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub description: String,
    /// User ids of the members in this group; all are members of the organization.
    pub member_ids: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Group> for GroupView {
    fn from(g: Group) -> Self {
        Self {
            id: g.id.to_string(),
            organization_id: g.org_id.to_string(),
            name: g.name,
            description: g.description,
            member_ids: g.member_ids.iter().map(ToString::to_string).collect(),
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateGroupRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    /// User ids of organization members.
    #[oai(validator(max_items = 1000))]
    pub member_ids: Option<Vec<String>>,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct UpdateGroupRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    /// Replaces the group's members.
    #[oai(validator(max_items = 1000))]
    pub member_ids: Option<Vec<String>>,
}

#[derive(ApiResponse)]
pub enum GroupsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<GroupView>>),
}

#[derive(ApiResponse)]
pub enum GroupResponse {
    #[oai(status = 200)]
    Ok(Json<GroupView>),
}

#[derive(ApiResponse)]
pub enum CreatedGroupResponse {
    #[oai(status = 201)]
    Created(Json<GroupView>),
}

#[derive(ApiResponse)]
pub enum DeletedGroupResponse {
    #[oai(status = 204)]
    Deleted,
}

macro_rules! group_api {
    ($api:ident, $kind:expr, $what:literal, $tag:literal, $list:literal, $item:literal,
     $list_op:literal, $create_op:literal, $get_op:literal, $update_op:literal, $delete_op:literal) => {
        pub struct $api {
            pub groups: GroupService,
        }

        #[OpenApi(tag = $tag)]
        impl $api {
            #[doc = concat!("List ", $what, "s")]
            #[oai(path = $list, method = "get", operation_id = $list_op)]
            async fn list(&self, auth: Authenticated) -> Result<GroupsResponse, ApiError> {
                let groups = self.groups.list(&auth.0, $kind).await?;
                Ok(GroupsResponse::Ok(Json(
                    groups.into_iter().map(Into::into).collect(),
                )))
            }

            #[doc = concat!("Create a ", $what)]
            #[oai(path = $list, method = "post", operation_id = $create_op)]
            async fn create(
                &self,
                req: &Request,
                auth: Authenticated,
                body: JsonBody<CreateGroupRequest>,
            ) -> Result<CreatedGroupResponse, ApiError> {
                let body = body.0;
                let input = GroupInput {
                    name: Some(body.name),
                    description: body.description,
                    member_ids: body.member_ids,
                };
                let group = self
                    .groups
                    .create(&auth.0, $kind, input, request_context(req))
                    .await?;
                Ok(CreatedGroupResponse::Created(Json(group.into())))
            }

            #[doc = concat!("Fetch a ", $what)]
            #[oai(path = $item, method = "get", operation_id = $get_op)]
            async fn get(
                &self,
                auth: Authenticated,
                id: Path<String>,
            ) -> Result<GroupResponse, ApiError> {
                let id: GroupId = path_id(&id.0, $what)?;
                let group = self.groups.get(&auth.0, $kind, id).await?;
                Ok(GroupResponse::Ok(Json(group.into())))
            }

            #[doc = concat!("Change a ", $what)]
            #[oai(path = $item, method = "patch", operation_id = $update_op)]
            async fn update(
                &self,
                req: &Request,
                auth: Authenticated,
                id: Path<String>,
                body: JsonBody<UpdateGroupRequest>,
            ) -> Result<GroupResponse, ApiError> {
                let id: GroupId = path_id(&id.0, $what)?;
                let body = body.0;
                let input = GroupInput {
                    name: body.name,
                    description: body.description,
                    member_ids: body.member_ids,
                };
                let group = self
                    .groups
                    .update(&auth.0, $kind, id, input, request_context(req))
                    .await?;
                Ok(GroupResponse::Ok(Json(group.into())))
            }

            #[doc = concat!("Delete a ", $what)]
            #[oai(path = $item, method = "delete", operation_id = $delete_op)]
            async fn delete(
                &self,
                req: &Request,
                auth: Authenticated,
                id: Path<String>,
            ) -> Result<DeletedGroupResponse, ApiError> {
                let id: GroupId = path_id(&id.0, $what)?;
                self.groups
                    .delete(&auth.0, $kind, id, request_context(req))
                    .await?;
                Ok(DeletedGroupResponse::Deleted)
            }
        }
    };
}

group_api!(
    TeamsApi,
    GroupKind::Team,
    "team",
    "ApiTags::Teams",
    "/v1/teams",
    "/v1/teams/:id",
    "listTeams",
    "createTeam",
    "getTeam",
    "updateTeam",
    "deleteTeam"
);
group_api!(
    DepartmentsApi,
    GroupKind::Department,
    "department",
    "ApiTags::Teams",
    "/v1/departments",
    "/v1/departments/:id",
    "listDepartments",
    "createDepartment",
    "getDepartment",
    "updateDepartment",
    "deleteDepartment"
);
