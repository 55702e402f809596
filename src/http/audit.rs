//! `/v1/audit`, `/v1/audit-logs` and `/v1/audit/verify`: reading an organization's audit
//! log and checking its hash chain. Owners, admins and auditors (and API keys with
//! `audit:read`) may read it.

use poem::Request;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::authn::Authenticated;
use super::error::ApiError;
use super::pagination::next_link;
use super::{ApiTags, path_id};
use crate::ids::{OrgId, now_rfc3339};
use crate::service::AuditService;
use crate::service::audit::{AuditQuery, ChainReport};
use crate::service::page::PageRequest;
use crate::store::audit::StoredEntry;

pub struct AuditApi {
    pub audit: AuditService,
}

/// One audit entry. `hash` covers `prevHash` and the entry's fields (docs/audit.md).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AuditEntryView {
    pub id: String,
    pub created_at: String,
    /// What happened, such as `auth.login` or `api_key.revoked`.
    pub action: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub actor_user_id: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub organization_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Action-specific facts (never secrets).
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<StoredEntry> for AuditEntryView {
    fn from(e: StoredEntry) -> Self {
        Self {
            details: serde_json::from_str(&e.details)
                .unwrap_or_else(|_| serde_json::Value::String(e.details.clone())),
            id: e.id,
            created_at: e.at,
            action: e.action,
            outcome: e.outcome,
            actor_user_id: e.actor_user_id,
            target_type: e.target_type,
            target_id: e.target_id,
            organization_id: e.org_id,
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// The outcome of checking an organization's audit chain.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AuditVerification {
    /// True when every entry recomputes to its hash and follows the one before it.
    pub valid: bool,
    pub organization_id: String,
    /// Entries checked.
    pub entries: u64,
    /// Where the check started: all zeros, or the hash of the last entry retention pruned.
    pub anchor_hash: String,
    /// The newest entry's hash. Keep a copy elsewhere to detect a rewritten history.
    pub head_hash: String,
    /// The entry where the chain breaks, when one can be named.
    pub broken_at: Option<String>,
    /// What is wrong, when something is.
    pub problem: Option<String>,
    pub checked_at: String,
}

impl From<ChainReport> for AuditVerification {
    fn from(r: ChainReport) -> Self {
        Self {
            valid: r.is_valid(),
            organization_id: r.org_id.unwrap_or_default(),
            entries: r.entries,
            anchor_hash: r.anchor_hash,
            head_hash: r.head_hash,
            broken_at: r.problem.as_ref().and_then(|p| p.entry_id.clone()),
            problem: r.problem.map(|p| p.reason),
            checked_at: now_rfc3339(),
        }
    }
}

#[derive(ApiResponse)]
pub enum AuditEntriesResponse {
    /// Newest first. `Link` points at the next (older) page when there is one.
    #[oai(status = 200)]
    Ok(
        Json<Vec<AuditEntryView>>,
        #[oai(header = "Link")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum AuditVerificationResponse {
    /// The chain was checked; `valid` says whether it holds.
    #[oai(status = 200)]
    Ok(Json<AuditVerification>),
}

#[OpenApi(tag = "ApiTags::Audit")]
impl AuditApi {
    /// Query the organization's audit log
    ///
    /// Entries of the organization the call acts in, newest first. Filters combine;
    /// `since` is inclusive and `until` exclusive (RFC 3339).
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/v1/audit", method = "get", operation_id = "queryAudit")]
    async fn query(
        &self,
        req: &Request,
        auth: Authenticated,
        /// Only this action, such as `auth.login`.
        action: Query<Option<String>>,
        /// Only entries by this user id.
        actor: Query<Option<String>>,
        /// Only entries about this target id.
        target: Query<Option<String>>,
        since: Query<Option<String>>,
        until: Query<Option<String>>,
        /// Page size: 1 to 200, default 50.
        limit: Query<Option<i64>>,
        /// The id of the last entry seen: continue with older entries.
        before: Query<Option<String>>,
        /// An entry id: list entries newer than it.
        after: Query<Option<String>>,
    ) -> Result<AuditEntriesResponse, ApiError> {
        let query = AuditQuery {
            action: action.0,
            actor: actor.0,
            target: target.0,
            since: since.0,
            until: until.0,
        };
        let page = PageRequest::parse(limit.0, before.0, after.0)?;
        self.list(req, &auth, None, query, page).await
    }

    /// List audit events for an organization
    ///
    /// The same entries as `/v1/audit`, for the organization named in the query.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/v1/audit-logs",
        method = "get",
        operation_id = "listAuditLogs"
    )]
    async fn audit_logs(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "organizationId")] organization_id: Query<String>,
        action: Query<Option<String>>,
        actor: Query<Option<String>>,
        target: Query<Option<String>>,
        since: Query<Option<String>>,
        until: Query<Option<String>>,
        limit: Query<Option<i64>>,
        before: Query<Option<String>>,
        after: Query<Option<String>>,
    ) -> Result<AuditEntriesResponse, ApiError> {
        let org: OrgId = path_id(&organization_id.0, "organization")?;
        let query = AuditQuery {
            action: action.0,
            actor: actor.0,
            target: target.0,
            since: since.0,
            until: until.0,
        };
        let page = PageRequest::parse(limit.0, before.0, after.0)?;
        self.list(req, &auth, Some(org), query, page).await
    }

    /// Verify the organization's audit chain
    ///
    /// Recomputes every entry's BLAKE3 hash from the chain's anchor to its head and
    /// reports the first entry that was edited, deleted, inserted or moved.
    #[oai(
        path = "/v1/audit/verify",
        method = "get",
        operation_id = "verifyAudit"
    )]
    async fn verify(&self, auth: Authenticated) -> Result<AuditVerificationResponse, ApiError> {
        let report = self.audit.verify(&auth.0).await?;
        Ok(AuditVerificationResponse::Ok(Json(report.into())))
    }
}

impl AuditApi {
    async fn list(
        &self,
        req: &Request,
        auth: &Authenticated,
        org: Option<OrgId>,
        query: AuditQuery,
        page: PageRequest,
    ) -> Result<AuditEntriesResponse, ApiError> {
        let page = self.audit.list(&auth.0, org, query, page).await?;
        let link = next_link(req, page.next.as_ref());
        Ok(AuditEntriesResponse::Ok(
            Json(page.items.into_iter().map(Into::into).collect()),
            link,
        ))
    }
}
