//! Plans over HTTP (docs/billing.md): `GET /v1/subscriptions/{organizationId}` (the
//! communication reference's path), `PUT /admin/orgs/{orgId}/plan` for instance admins,
//! and [`PlanGate`], the per-request gate of API-key calls with its `X-Quota-*` headers.

use poem::http::{HeaderMap, HeaderValue};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::authn::{Authenticated, authenticate_once};
use super::error::{ApiError, error_response};
use super::{ApiTags, path_id, request_context};
use crate::auth::Credential;
use crate::ids::OrgId;
use crate::service::plans::{PlanChange, PlanService, Quota, Subscription};

/// The daily quota the request was counted against (the tighter one when a key's and its
/// organization's both apply).
pub const QUOTA_LIMIT_HEADER: &str = "x-quota-limit";
/// What is left of it today.
pub const QUOTA_REMAINING_HEADER: &str = "x-quota-remaining";
/// The next UTC midnight, unix seconds, when it starts again.
pub const QUOTA_RESET_HEADER: &str = "x-quota-reset";

pub struct PlansApi {
    pub plans: PlanService,
}

/// A plan to assign.
#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SetPlanRequest {
    /// A configured plan's id (`[[plans]]`).
    #[oai(validator(min_length = 1, max_length = 64))]
    pub plan: String,
    /// When the plan ends and the default plan applies again (RFC 3339, in the future);
    /// absent: until the next assignment.
    #[oai(validator(max_length = 64))]
    pub ends_at: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PlanChangeView {
    pub organization_id: String,
    pub plan: String,
    /// The plan that applied before (possibly the default).
    pub previous_plan: String,
    pub ends_at: Option<String>,
}

impl From<PlanChange> for PlanChangeView {
    fn from(change: PlanChange) -> Self {
        Self {
            organization_id: change.org.to_string(),
            plan: change.to,
            previous_plan: change.from,
            ends_at: change.ends_at,
        }
    }
}

/// A plan's limits; absent: no limit.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PlanLimitsView {
    pub storage_bytes: Option<u64>,
    pub max_file_bytes: Option<u64>,
    pub transfers_per_day: Option<u64>,
    pub conversions_per_day: Option<u64>,
    pub api_requests_per_day_per_key: Option<u64>,
    pub api_requests_per_day_per_org: Option<u64>,
    pub members: Option<u64>,
    pub webhooks: Option<u64>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UsageView {
    /// Bytes stored (files and uploads in progress).
    pub storage_bytes: u64,
    /// Active members.
    pub members: u64,
    pub webhooks: u64,
    /// Transfers created today (UTC), counted while the plan limits them.
    pub transfers_today: u64,
    /// Requests made today (UTC) with the organization's API keys, counted while the plan
    /// limits them.
    pub api_requests_today: u64,
    /// The UTC day of the counts, `YYYY-MM-DD`.
    pub day: String,
    /// When the daily counts start again (the next UTC midnight).
    pub resets_at: String,
}

/// An organization's subscription: its plan now, and its usage.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SubscriptionView {
    pub organization_id: String,
    /// The plan's id: `unlimited` on an instance without plans.
    pub plan: String,
    pub plan_name: String,
    /// `active` (an assigned plan), `default` (none assigned, or it ended) or `unlimited`.
    pub status: String,
    /// When the assigned plan ends and the default applies again.
    pub ends_at: Option<String>,
    pub limits: PlanLimitsView,
    /// The plan's features (`api_access`, `e2e_transfers`, `sso`).
    pub features: Vec<String>,
    pub usage: UsageView,
}

impl SubscriptionView {
    fn new(org: OrgId, subscription: Subscription) -> Self {
        let plan = &subscription.current.plan;
        let limit = |n: u64| (n > 0).then_some(n);
        let l = plan.limits;
        let usage = subscription.usage;
        Self {
            organization_id: org.to_string(),
            plan: plan.id.clone(),
            plan_name: plan.name.clone(),
            status: subscription.current.status.to_owned(),
            ends_at: subscription.current.ends_at.clone(),
            limits: PlanLimitsView {
                storage_bytes: limit(l.storage_bytes),
                max_file_bytes: limit(l.max_file_bytes),
                transfers_per_day: limit(l.transfers_per_day),
                conversions_per_day: limit(l.conversions_per_day),
                api_requests_per_day_per_key: limit(l.api_requests_per_day_per_key),
                api_requests_per_day_per_org: limit(l.api_requests_per_day_per_org),
                members: limit(l.members),
                webhooks: limit(l.webhooks),
            },
            features: plan.features.iter().map(|f| f.key().to_owned()).collect(),
            usage: UsageView {
                storage_bytes: usage.storage_bytes,
                members: usage.members,
                webhooks: usage.webhooks,
                transfers_today: usage.transfers_today,
                api_requests_today: usage.api_requests_today,
                day: usage.day,
                resets_at: usage.resets_at,
            },
        }
    }
}

#[derive(ApiResponse)]
pub enum PlanChangeResponse {
    #[oai(status = 200)]
    Ok(Json<PlanChangeView>),
}

#[derive(ApiResponse)]
pub enum SubscriptionResponse {
    #[oai(status = 200)]
    Ok(Json<SubscriptionView>),
}

#[OpenApi]
impl PlansApi {
    /// The organization's subscription
    ///
    /// Its plan now (id, name, limits, features, end), and its usage: storage, members,
    /// webhooks and today's counts. Owners and roles holding `billing:read` only.
    #[oai(
        path = "/v1/subscriptions/:organization_id",
        method = "get",
        operation_id = "getSubscription",
        tag = "ApiTags::Billing"
    )]
    async fn subscription(
        &self,
        auth: Authenticated,
        organization_id: Path<String>,
    ) -> Result<SubscriptionResponse, ApiError> {
        let org: OrgId = path_id(&organization_id.0, "organization")?;
        let subscription = self.plans.subscription(&auth.0, org).await?;
        Ok(SubscriptionResponse::Ok(Json(SubscriptionView::new(
            org,
            subscription,
        ))))
    }

    /// Assign an organization's plan
    ///
    /// Instance admins only. Takes effect on the organization's next request; with
    /// `endsAt`, the default plan applies again from then. Audited as `plan.changed`.
    #[oai(
        path = "/admin/orgs/:org_id/plan",
        method = "put",
        operation_id = "adminSetPlan",
        tag = "ApiTags::Admin"
    )]
    async fn set_plan(
        &self,
        req: &Request,
        auth: Authenticated,
        org_id: Path<String>,
        body: super::json_body::JsonBody<SetPlanRequest>,
    ) -> Result<PlanChangeResponse, ApiError> {
        let org: OrgId = path_id(&org_id.0, "organization")?;
        let body = body.0;
        let change = self
            .plans
            .assign(&auth.0, org, body.plan, body.ends_at, request_context(req))
            .await?;
        Ok(PlanChangeResponse::Ok(Json(change.into())))
    }
}

/// Sets the `X-Quota-*` headers of a daily quota.
pub fn set_quota_headers(headers: &mut HeaderMap, quota: &Quota) {
    for (name, value) in [
        (QUOTA_LIMIT_HEADER, quota.limit),
        (QUOTA_REMAINING_HEADER, quota.remaining),
        (QUOTA_RESET_HEADER, quota.reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
}

/// The plan gate of API-key requests ([`PlanService::admit_key`]): authenticates the key
/// once (the handler reuses the principal), refuses what the plan does not allow, and
/// adds the quota's headers to the answer. Requests with a session, or none, or a key that
/// does not authenticate pass through to the handler, which answers them as always.
#[derive(Clone)]
pub struct PlanGate(pub PlanService);

impl<E: Endpoint> Middleware<E> for PlanGate {
    type Output = PlanGateEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        PlanGateEndpoint {
            inner,
            plans: self.0.clone(),
        }
    }
}

pub struct PlanGateEndpoint<E> {
    inner: E,
    plans: PlanService,
}

impl<E: Endpoint> Endpoint for PlanGateEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let mut quota = None;
        if !self.plans.rules().unlimited() && presents_api_key(&req) {
            // A refused key is the handler's to answer, as without plans.
            if let Ok(principal) = authenticate_once(&mut req).await
                && matches!(principal.credential, Credential::ApiKey(_))
            {
                match self.plans.admit_key(&principal).await {
                    Ok(standing) => quota = standing,
                    Err(refused) => {
                        return Ok(poem::error::ResponseError::as_response(&ApiError::from(
                            refused,
                        )));
                    }
                }
            }
        }
        let mut response = match self.inner.call(req).await {
            Ok(output) => output.into_response(),
            Err(err) => error_response(err),
        };
        if let Some(quota) = quota {
            set_quota_headers(response.headers_mut(), &quota);
        }
        Ok(response)
    }
}

fn presents_api_key(req: &Request) -> bool {
    use crate::auth::api_key::KEY_MARKER;
    match req.headers().get(poem::http::header::AUTHORIZATION) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(_, token)| token.trim().starts_with(KEY_MARKER)),
        None => req.headers().contains_key(super::authn::API_KEY_HEADER),
    }
}
