//! `/v1/sessions`: the caller's sessions (one per login) and their revocation.

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::authn::Authenticated;
use super::error::ApiError;
use super::request_context;
use crate::ids::SessionId;
use crate::service::IdentityService;

pub struct SessionsApi {
    pub identity: IdentityService,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SessionView {
    pub id: String,
    /// Client address of the latest sign-in or refresh.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: String,
    pub last_seen_at: String,
    /// True for the session of the access token making this request.
    pub current: bool,
}

#[derive(ApiResponse)]
pub enum ListSessionsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<SessionView>>),
}

#[derive(ApiResponse)]
pub enum RevokeSessionResponse {
    /// Revoked; its access and refresh tokens stop working at once.
    #[oai(status = 204)]
    Revoked,
}

#[OpenApi(tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// List active sessions
    #[oai(path = "/v1/sessions", method = "get", operation_id = "listSessions")]
    async fn list(&self, auth: Authenticated) -> Result<ListSessionsResponse, ApiError> {
        let current = auth.0.session_id();
        let sessions = self.identity.sessions(&auth.0).await?;
        Ok(ListSessionsResponse::Ok(Json(
            sessions
                .into_iter()
                .map(|s| SessionView {
                    current: Some(s.id) == current,
                    id: s.id.to_string(),
                    ip: s.ip,
                    user_agent: s.user_agent,
                    created_at: s.created_at,
                    last_seen_at: s.last_seen_at,
                })
                .collect(),
        )))
    }

    /// Revoke a session
    ///
    /// Signs that device out: the session's tokens are refused on their next use.
    #[oai(
        path = "/v1/sessions/:id",
        method = "delete",
        operation_id = "revokeSession"
    )]
    async fn revoke(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<RevokeSessionResponse, ApiError> {
        // A malformed id cannot name one of the caller's sessions.
        let session: SessionId =
            id.0.parse()
                .map_err(|_| ApiError::not_found("session not found"))?;
        self.identity
            .revoke_session(&auth.0, session, request_context(req))
            .await?;
        Ok(RevokeSessionResponse::Revoked)
    }
}
