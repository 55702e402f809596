//! Plans over HTTP (docs/billing.md): `GET /v1/subscriptions/{organizationId}` (the
//! communication reference's path); for instance admins `GET /admin/plans` and
//! `GET`/`PUT /admin/orgs/{orgId}/plan`; and [`PlanGate`], the per-request gate of API-key calls with its `X-Quota-*` headers.

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
use crate::service::plans::{
    CurrentPlan, Plan, PlanChange, PlanLimitsConfig, PlanService, Quota, Subscription,
};

/// The daily quota the request was counted against (the tighter one when a key's and its
/// organization's both apply).
pub const QUOTA_LIMIT_HEADER: &str = "x-quota-limit";
/// What is left of it today.
pub const QUOTA_REMAINING_HEADER: &str = "x-quota-remaining";
/// The next UTC midnight, unix seconds, when it starts again.
pub const QUOTA_RESET_HEADER: &str = "x-quota-reset";

pub struct PlansApi {
    pub plans: PlanService,
    /// What checkout sells here (configuration: the same for every request).
    pub offers: Vec<crate::service::billing::Offer>,
}

/// A plan a checkout can buy (`POST /v1/subscriptions/{organizationId}/checkout`).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct OfferView {
    pub plan: String,
    pub plan_name: String,
    /// `stripe`, `paystack` or `flutterwave`.
    pub provider: String,
    /// As the processor writes it (Paystack: the currency's subunit); absent for Stripe,
    /// whose price holds it.
    pub amount: Option<String>,
    pub currency: Option<String>,
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
    /// The plans a checkout can buy here, by processor: empty without a configured one.
    pub offers: Vec<OfferView>,
}

impl From<PlanLimitsConfig> for PlanLimitsView {
    fn from(l: PlanLimitsConfig) -> Self {
        let limit = |n: u64| (n > 0).then_some(n);
        Self {
            storage_bytes: limit(l.storage_bytes),
            max_file_bytes: limit(l.max_file_bytes),
            transfers_per_day: limit(l.transfers_per_day),
            conversions_per_day: limit(l.conversions_per_day),
            api_requests_per_day_per_key: limit(l.api_requests_per_day_per_key),
            api_requests_per_day_per_org: limit(l.api_requests_per_day_per_org),
            members: limit(l.members),
            webhooks: limit(l.webhooks),
        }
    }
}

/// A configured plan (`[[plans]]`), for the admin console.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct PlanView {
    pub id: String,
    pub name: String,
    /// Whether organizations without an assignment have it (`billing.default_plan`).
    pub default: bool,
    pub features: Vec<String>,
    pub limits: PlanLimitsView,
}

impl PlanView {
    fn new(plan: &Plan, default: &Plan) -> Self {
        Self {
            id: plan.id.clone(),
            name: plan.name.clone(),
            default: plan.id == default.id,
            features: plan.features.iter().map(|f| f.key().to_owned()).collect(),
            limits: plan.limits.into(),
        }
    }
}

/// An organization's plan as an instance admin sees it: what applies and the assignment
/// behind it.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct OrgPlanView {
    pub organization_id: String,
    /// The plan that applies now.
    pub plan: String,
    pub plan_name: String,
    /// `active` (an assigned plan), `default` (none assigned, or it ended) or `unlimited`.
    pub status: String,
    pub ends_at: Option<String>,
    /// The stored assignment, also when it has ended: its plan, who made it
    /// (`admin_api`, `cli`, or a payment processor) and when.
    pub assigned_plan: Option<String>,
    pub set_via: Option<String>,
    pub set_at: Option<String>,
}

impl OrgPlanView {
    fn new(org: OrgId, current: CurrentPlan) -> Self {
        let assignment = current.assignment;
        Self {
            organization_id: org.to_string(),
            plan: current.plan.id.clone(),
            plan_name: current.plan.name.clone(),
            status: current.status.to_owned(),
            ends_at: current.ends_at,
            assigned_plan: assignment.as_ref().map(|a| a.plan_id.clone()),
            set_via: assignment.as_ref().map(|a| a.set_via.clone()),
            set_at: assignment.map(|a| a.set_at),
        }
    }
}

#[derive(ApiResponse)]
pub enum PlansResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<PlanView>>),
}

#[derive(ApiResponse)]
pub enum OrgPlanResponse {
    #[oai(status = 200)]
    Ok(Json<OrgPlanView>),
}

impl SubscriptionView {
    fn new(
        org: OrgId,
        subscription: Subscription,
        offers: &[crate::service::billing::Offer],
    ) -> Self {
        let plan = &subscription.current.plan;
        let usage = subscription.usage;
        Self {
            organization_id: org.to_string(),
            plan: plan.id.clone(),
            plan_name: plan.name.clone(),
            status: subscription.current.status.to_owned(),
            ends_at: subscription.current.ends_at.clone(),
            limits: plan.limits.into(),
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
            offers: offers
                .iter()
                .map(|o| OfferView {
                    plan: o.plan.clone(),
                    plan_name: o.plan_name.clone(),
                    provider: o.provider.clone(),
                    amount: Some(o.amount.clone()).filter(|a| !a.is_empty()),
                    currency: Some(o.currency.clone()).filter(|c| !c.is_empty()),
                })
                .collect(),
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
            &self.offers,
        ))))
    }

    /// List the configured plans
    ///
    /// Instance admins only: the `[[plans]]` of the configuration, in its order, and which
    /// is the default. Empty on an instance without plans (nothing is limited).
    #[oai(
        path = "/admin/plans",
        method = "get",
        operation_id = "adminListPlans",
        tag = "ApiTags::Admin"
    )]
    async fn list_plans(&self, auth: Authenticated) -> Result<PlansResponse, ApiError> {
        let plans = self.plans.catalog(&auth.0)?;
        let default = self.plans.rules().default_plan();
        Ok(PlansResponse::Ok(Json(
            plans.iter().map(|p| PlanView::new(p, &default)).collect(),
        )))
    }

    /// An organization's plan
    ///
    /// Instance admins only: the plan that applies now and the assignment behind it (who
    /// made it, when, until when).
    #[oai(
        path = "/admin/orgs/:org_id/plan",
        method = "get",
        operation_id = "adminGetPlan",
        tag = "ApiTags::Admin"
    )]
    async fn get_plan(
        &self,
        auth: Authenticated,
        org_id: Path<String>,
    ) -> Result<OrgPlanResponse, ApiError> {
        let org: OrgId = path_id(&org_id.0, "organization")?;
        let current = self.plans.of_org(&auth.0, org).await?;
        Ok(OrgPlanResponse::Ok(Json(OrgPlanView::new(org, current))))
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
