//! `/v1/invites`: invitations into an organization and their acceptance.

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::{ApiTags, path_id, request_context};
use crate::ids::{InviteId, OrgId};
use crate::service::InviteService;
use crate::store::invites::Invite;

pub struct InvitesApi {
    pub invites: InviteService,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct InviteView {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    /// The role the invitee gets on accepting.
    pub role: String,
    pub created_at: String,
    pub expires_at: String,
    /// True when the invite was mailed to the invitee; `token` and `inviteUrl` are then
    /// absent, since only the invitee should hold them.
    pub mailed: Option<bool>,
    /// Single-use token for `POST /v1/invites/accept` (or registration), returned only
    /// when mail is off and only in this response.
    pub token: Option<String>,
    pub invite_url: Option<String>,
}

impl From<Invite> for InviteView {
    fn from(i: Invite) -> Self {
        Self {
            id: i.id.to_string(),
            organization_id: i.org_id.to_string(),
            email: i.email,
            role: i.role,
            created_at: i.created_at,
            expires_at: i.expires_at,
            mailed: None,
            token: None,
            invite_url: None,
        }
    }
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateInviteRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// A built-in role or a custom role's id; `member` when absent. Never above yours.
    pub role: Option<String>,
    /// Hours until the invite expires (default `auth.invite_ttl_hours`, at most 720).
    pub expires_in_hours: Option<u32>,
}

#[derive(Object, Deserialize)]
pub struct AcceptInviteRequest {
    pub token: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AcceptedInvite {
    pub organization_id: String,
    pub role: String,
}

#[derive(ApiResponse)]
pub enum CreatedInviteResponse {
    #[oai(status = 201)]
    Created(Json<InviteView>),
}

#[derive(ApiResponse)]
pub enum InvitesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<InviteView>>),
}

#[derive(ApiResponse)]
pub enum AcceptInviteResponse {
    /// Joined the organization.
    #[oai(status = 200)]
    Ok(Json<AcceptedInvite>),
}

#[derive(ApiResponse)]
pub enum RevokedInviteResponse {
    #[oai(status = 204)]
    Revoked,
}

#[OpenApi(tag = "ApiTags::Organizations")]
impl InvitesApi {
    /// Create an invite for an organization
    ///
    /// Mailed to the address when SMTP is configured; otherwise the token and link come
    /// back in this response, once.
    #[oai(
        path = "/v1/invites/:organization_id",
        method = "post",
        operation_id = "createInvite"
    )]
    async fn create(
        &self,
        req: &Request,
        auth: Authenticated,
        organization_id: Path<String>,
        body: JsonBody<CreateInviteRequest>,
    ) -> Result<CreatedInviteResponse, ApiError> {
        let org: OrgId = path_id(&organization_id.0, "organization")?;
        let body = body.0;
        let issued = self
            .invites
            .create(
                &auth.0,
                org,
                body.email,
                body.role,
                body.expires_in_hours,
                request_context(req),
            )
            .await?;
        let mut view = InviteView::from(issued.invite);
        view.mailed = Some(issued.mailed);
        view.token = issued.token.map(|t| t.to_string());
        view.invite_url = issued.link.map(|l| l.to_string());
        Ok(CreatedInviteResponse::Created(Json(view)))
    }

    /// List open invites of an organization
    #[oai(
        path = "/v1/invites/:organization_id",
        method = "get",
        operation_id = "listInvites"
    )]
    async fn list(
        &self,
        auth: Authenticated,
        organization_id: Path<String>,
    ) -> Result<InvitesResponse, ApiError> {
        let org: OrgId = path_id(&organization_id.0, "organization")?;
        let invites = self.invites.list(&auth.0, org).await?;
        Ok(InvitesResponse::Ok(Json(
            invites.into_iter().map(Into::into).collect(),
        )))
    }

    /// Withdraw an invite
    #[oai(
        path = "/v1/invites/:organization_id/:invite_id",
        method = "delete",
        operation_id = "revokeInvite"
    )]
    async fn revoke(
        &self,
        req: &Request,
        auth: Authenticated,
        organization_id: Path<String>,
        invite_id: Path<String>,
    ) -> Result<RevokedInviteResponse, ApiError> {
        let org: OrgId = path_id(&organization_id.0, "organization")?;
        let invite: InviteId = path_id(&invite_id.0, "invite")?;
        self.invites
            .revoke(&auth.0, org, invite, request_context(req))
            .await?;
        Ok(RevokedInviteResponse::Revoked)
    }

    /// Accept an invite by token and join the organization
    ///
    /// The invite must have been sent to the caller's email address.
    #[oai(
        path = "/v1/invites/accept",
        method = "post",
        operation_id = "acceptInvite"
    )]
    async fn accept(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<AcceptInviteRequest>,
    ) -> Result<AcceptInviteResponse, ApiError> {
        let (org, role) = self
            .invites
            .accept(&auth.0, body.0.token, request_context(req))
            .await?;
        Ok(AcceptInviteResponse::Ok(Json(AcceptedInvite {
            organization_id: org.to_string(),
            role,
        })))
    }
}
