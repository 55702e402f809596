//! `/v1/webhooks`: the organization's webhooks (the transfer reference's Webhooks section
//! and webhook conventions), their event catalog, secret rotation, test and replayed
//! deliveries, and the delivery log.
//!
//! The reference spells a few request fields in snake_case (`event_type`,
//! `retry_policy.disable_after_consecutive_failures`, `delivery_id`); requests accept those
//! spellings as aliases of the camelCase names, and responses are camelCase.

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::Deserialize;

use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::pagination::next_link;
use super::{ApiTags, path_id, request_context};
use crate::ids::{DeliveryId, WebhookId};
use crate::service::event_catalog::{self, EmittedBy};
use crate::service::page::PageRequest;
use crate::service::webhooks::{
    DeliveryDetail, IssuedSecret, TestInput, WebhookInput, WebhookService, format_ms, now_ms,
};
use crate::store::webhooks::{Attempt, Delivery, DeliveryStatus, Webhook};

pub struct WebhooksApi {
    pub webhooks: WebhookService,
}

/// When to give up on a delivery, and on the endpoint.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct RetryPolicyView {
    /// Attempts per delivery (1 to 30, default 10), on the schedule 60 s, 5 min, 30 min,
    /// 2 h, 6 h, 12 h, then daily, each ±20%.
    pub max_attempts: u32,
    /// Failed attempts in a row that disable the webhook (1 to 10000, default 50).
    pub disable_after_consecutive_failures: u32,
}

/// A webhook. `secret` is present only in the answers that create it or rotate it.
#[derive(Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookView {
    pub id: String,
    pub organization_id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    pub description: String,
    pub enabled: bool,
    /// Event filters: exact types, `resource.*`, or `*`.
    pub events: Vec<String>,
    pub retry_policy: RetryPolicyView,
    /// Why sealbox disabled it: `endpoint_gone` (it answered 410) or
    /// `consecutive_failures`. Absent when enabled, or disabled by a person.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// While a rotated-out secret still signs deliveries: until when.
    pub previous_secret_expires_at: Option<String>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The signing secret (`whsec_...`): shown in this answer only. Store it now.
    pub secret: Option<String>,
}

impl std::fmt::Debug for WebhookView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the secret nor the URL, whose path and query often carry a token.
        f.debug_struct("WebhookView")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        let now = now_ms();
        Self {
            id: w.id.to_string(),
            organization_id: w.org_id.to_string(),
            url: w.url,
            description: w.description,
            enabled: w.enabled,
            events: w.events,
            retry_policy: RetryPolicyView {
                max_attempts: w.max_attempts,
                disable_after_consecutive_failures: w.disable_after_failures,
            },
            disabled_reason: w.disabled_reason,
            disabled_at: w.disabled_at,
            consecutive_failures: w.consecutive_failures,
            previous_secret_expires_at: w
                .previous_secret_expires_at
                .filter(|until| *until > now)
                .map(format_ms),
            created_by: w.created_by.map(|id| id.to_string()),
            created_at: w.created_at,
            updated_at: w.updated_at,
            secret: None,
        }
    }
}

impl From<IssuedSecret> for WebhookView {
    fn from(issued: IssuedSecret) -> Self {
        let mut view = WebhookView::from(issued.webhook);
        view.secret = Some(issued.secret.expose().as_str().to_owned());
        view
    }
}

/// `retryPolicy` as sent; an absent or `null` field keeps its value (the default, when
/// creating).
#[derive(Object, Deserialize, Default)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicyInput {
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "30")))]
    #[serde(alias = "max_attempts")]
    pub max_attempts: Option<i64>,
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "10000")))]
    #[serde(alias = "disable_after_consecutive_failures")]
    pub disable_after_consecutive_failures: Option<i64>,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateWebhookRequest {
    /// An `http` or `https` URL without credentials. Loopback, link-local, private and
    /// reserved addresses are refused unless `webhooks.allowed_networks` lists them;
    /// cloud metadata addresses always.
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub url: String,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Event filters: exact types, `resource.*`, or `*` (the default).
    #[oai(validator(min_items = 1, max_items = 100))]
    pub events: Option<Vec<String>>,
    #[serde(alias = "retry_policy")]
    pub retry_policy: Option<RetryPolicyInput>,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct UpdateWebhookRequest {
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub url: Option<String>,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    /// Disabling gives up pending deliveries; enabling clears `disabledReason` and the
    /// count of failures.
    pub enabled: Option<bool>,
    #[oai(validator(min_items = 1, max_items = 100))]
    pub events: Option<Vec<String>>,
    #[serde(alias = "retry_policy")]
    pub retry_policy: Option<RetryPolicyInput>,
}

/// `PATCH /v1/webhooks`: the change, with the webhook's id in the body.
#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct UpdateWebhookByIdRequest {
    pub id: String,
    #[oai(flatten)]
    #[serde(flatten)]
    pub change: UpdateWebhookRequest,
}

/// `DELETE /v1/webhooks`: the webhook's id in the body.
#[derive(Object, Deserialize)]
pub struct WebhookIdRequest {
    pub id: String,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RotateSecretRequest {
    /// Hours the previous secret keeps signing (default 24, at most 168; 0 stops it now).
    #[oai(validator(minimum(value = "0"), maximum(value = "168")))]
    #[serde(alias = "grace_hours")]
    pub grace_hours: Option<i64>,
}

/// What the test endpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum TestAction {
    /// Send a test delivery (the default).
    Test,
    /// Send a past delivery (`deliveryId`) again, with its `webhook-id` and bytes.
    Replay,
}

/// `POST /v1/webhooks/{id}/test`. With `action: "replay"` and a `deliveryId`, replays that
/// delivery instead (`event_type` and `data` do not apply).
#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct TestWebhookRequest {
    /// The webhook's id, as the reference's sandbox sends it; if present it must be the
    /// id in the path.
    pub id: Option<String>,
    /// A catalog type (`GET /v1/webhooks/events`); default `ping`. Spelled `event_type`
    /// as the reference's sandbox does (`eventType` is accepted too).
    #[oai(rename = "event_type", validator(max_length = 100))]
    #[serde(rename = "event_type", alias = "eventType")]
    pub event_type: Option<String>,
    /// The payload's `data` (a JSON object); default the catalog's example.
    pub data: Option<serde_json::Value>,
    pub action: Option<TestAction>,
    /// For `replay`: the delivery to send again.
    #[serde(alias = "delivery_id")]
    pub delivery_id: Option<String>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next attempt, or being attempted.
    Pending,
    /// An attempt got a 2xx.
    Succeeded,
    /// Out of attempts, or its last failure disabled the webhook.
    Failed,
    /// Given up because the webhook was disabled.
    Cancelled,
}

impl From<DeliveryStatus> for DeliveryState {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending => DeliveryState::Pending,
            DeliveryStatus::Succeeded => DeliveryState::Succeeded,
            DeliveryStatus::Failed => DeliveryState::Failed,
            DeliveryStatus::Cancelled => DeliveryState::Cancelled,
        }
    }
}

impl From<DeliveryState> for DeliveryStatus {
    fn from(state: DeliveryState) -> Self {
        match state {
            DeliveryState::Pending => DeliveryStatus::Pending,
            DeliveryState::Succeeded => DeliveryStatus::Succeeded,
            DeliveryState::Failed => DeliveryStatus::Failed,
            DeliveryState::Cancelled => DeliveryStatus::Cancelled,
        }
    }
}

/// One delivery of one message to the webhook, with its latest attempt.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DeliveryView {
    pub id: String,
    pub webhook_id: String,
    /// The `webhook-id` header: the same for every attempt and replay of this message.
    pub message_id: String,
    pub event_type: String,
    pub status: DeliveryState,
    /// Sent with `X-Sealbox-Test-Delivery: true`.
    pub is_test: bool,
    /// For a replay: the delivery it sent again.
    pub original_delivery_id: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    /// While pending: when the next attempt is due.
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// The HTTP status of the latest attempt's response.
    pub response_status_code: Option<u16>,
    /// How long the latest attempt took, in milliseconds.
    pub duration_ms: Option<i64>,
    /// The first 4 KiB of the latest response body.
    pub response_body: Option<String>,
    /// Why the latest attempt failed without a usable response.
    pub error: Option<String>,
    /// The payload sent, exactly as signed (`{"type", "timestamp", "data"}`).
    pub payload: serde_json::Value,
    pub created_at: String,
    pub completed_at: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            payload: serde_json::from_str(&d.body).unwrap_or(serde_json::Value::String(d.body)),
            id: d.id.to_string(),
            webhook_id: d.webhook_id.to_string(),
            message_id: d.message_id,
            event_type: d.event_type,
            status: d.status.into(),
            is_test: d.is_test,
            original_delivery_id: d.original_delivery_id.map(|id| id.to_string()),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(format_ms),
            last_attempt_at: d.last_attempt_at,
            response_status_code: d.last_status_code,
            duration_ms: d.last_duration_ms,
            response_body: d.last_response_body,
            error: d.last_error,
            created_at: d.created_at,
            completed_at: d.completed_at,
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AttemptView {
    /// 1 for the first attempt.
    pub attempt: u32,
    pub started_at: String,
    pub response_status_code: Option<u16>,
    pub duration_ms: i64,
    /// The first 4 KiB of the response body.
    pub response_body: Option<String>,
    pub error: Option<String>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        Self {
            attempt: a.attempt,
            started_at: a.started_at,
            response_status_code: a.status_code,
            duration_ms: a.duration_ms,
            response_body: a.response_body,
            error: a.error,
        }
    }
}

/// A delivery with every attempt made, first first.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DeliveryDetailView {
    #[oai(flatten)]
    pub delivery: DeliveryView,
    pub attempt_log: Vec<AttemptView>,
}

impl From<DeliveryDetail> for DeliveryDetailView {
    fn from(d: DeliveryDetail) -> Self {
        Self {
            delivery: d.delivery.into(),
            attempt_log: d.attempts.into_iter().map(Into::into).collect(),
        }
    }
}

/// One event type a webhook can subscribe to.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EventTypeView {
    /// The type, as in `events` filters and the payload's `type`.
    #[oai(rename = "type")]
    pub event_type: String,
    pub description: String,
    /// An example payload as delivered: `{"type", "timestamp", "data"}`.
    pub example: serde_json::Value,
    /// False for types of features not built yet: subscribing works, nothing is sent yet.
    pub emitted: bool,
}

/// The timestamp of the catalog's example payloads.
const EXAMPLE_TIMESTAMP: &str = "2026-11-24T18:30:00.000Z";

#[derive(ApiResponse)]
pub enum WebhooksResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<WebhookView>>),
}

#[derive(ApiResponse)]
pub enum WebhookResponse {
    #[oai(status = 200)]
    Ok(Json<WebhookView>),
}

#[derive(ApiResponse)]
pub enum CreatedWebhookResponse {
    /// Created; `secret` is shown this once.
    #[oai(status = 201)]
    Created(Json<WebhookView>),
}

#[derive(ApiResponse)]
pub enum DeletedWebhookResponse {
    /// Deleted, with its deliveries.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
pub enum EventTypesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<EventTypeView>>),
}

#[derive(ApiResponse)]
pub enum QueuedDeliveryResponse {
    /// Queued; the delivery worker sends it shortly.
    #[oai(status = 202)]
    Accepted(Json<DeliveryView>),
}

#[derive(ApiResponse)]
pub enum DeliveriesResponse {
    /// Newest first. `Link` points at the next (older) page when there is one.
    #[oai(status = 200)]
    Ok(
        Json<Vec<DeliveryView>>,
        #[oai(header = "Link")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum DeliveryResponse {
    #[oai(status = 200)]
    Ok(Json<DeliveryDetailView>),
}

#[OpenApi(tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// List webhooks
    #[oai(path = "/v1/webhooks", method = "get", operation_id = "listWebhooks")]
    async fn list(&self, auth: Authenticated) -> Result<WebhooksResponse, ApiError> {
        let hooks = self.webhooks.list(&auth.0).await?;
        Ok(WebhooksResponse::Ok(Json(
            hooks.into_iter().map(Into::into).collect(),
        )))
    }

    /// Create a webhook
    ///
    /// Returns the signing secret (`secret`, `whsec_...`) in this answer only; it is
    /// stored sealed by the master key.
    #[oai(path = "/v1/webhooks", method = "post", operation_id = "createWebhook")]
    async fn create(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<CreateWebhookRequest>,
    ) -> Result<CreatedWebhookResponse, ApiError> {
        let body = body.0;
        let retry = body.retry_policy.unwrap_or_default();
        let input = WebhookInput {
            url: Some(body.url),
            description: body.description,
            enabled: body.enabled,
            events: body.events,
            max_attempts: retry.max_attempts,
            disable_after_failures: retry.disable_after_consecutive_failures,
        };
        let issued = self
            .webhooks
            .create(&auth.0, input, request_context(req))
            .await?;
        Ok(CreatedWebhookResponse::Created(Json(issued.into())))
    }

    /// Update a webhook (id in the body)
    #[oai(
        path = "/v1/webhooks",
        method = "patch",
        operation_id = "updateWebhookByBody"
    )]
    async fn update_by_body(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<UpdateWebhookByIdRequest>,
    ) -> Result<WebhookResponse, ApiError> {
        let id = body_id(&body.0.id)?;
        self.update_webhook(req, auth, id, body.0.change).await
    }

    /// Delete a webhook (id in the body)
    #[oai(
        path = "/v1/webhooks",
        method = "delete",
        operation_id = "deleteWebhookByBody"
    )]
    async fn delete_by_body(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<WebhookIdRequest>,
    ) -> Result<DeletedWebhookResponse, ApiError> {
        let id = body_id(&body.0.id)?;
        self.webhooks
            .delete(&auth.0, id, request_context(req))
            .await?;
        Ok(DeletedWebhookResponse::Deleted)
    }

    /// List the event catalog
    ///
    /// Every event type a webhook can subscribe to, with a description and an example
    /// payload.
    #[oai(
        path = "/v1/webhooks/events",
        method = "get",
        operation_id = "listWebhookEvents"
    )]
    async fn events(&self, _auth: Authenticated) -> Result<EventTypesResponse, ApiError> {
        let types = event_catalog::catalog()
            .iter()
            .map(|kind| EventTypeView {
                event_type: kind.name.to_owned(),
                description: kind.description.to_owned(),
                example: serde_json::json!({
                    "type": kind.name,
                    "timestamp": EXAMPLE_TIMESTAMP,
                    "data": kind.example(),
                }),
                emitted: kind.emitted_by == EmittedBy::Now,
            })
            .collect();
        Ok(EventTypesResponse::Ok(Json(types)))
    }

    /// Get a webhook
    #[oai(path = "/v1/webhooks/:id", method = "get", operation_id = "getWebhook")]
    async fn get(
        &self,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<WebhookResponse, ApiError> {
        let id: WebhookId = path_id(&id.0, "webhook")?;
        let hook = self.webhooks.get(&auth.0, id).await?;
        Ok(WebhookResponse::Ok(Json(hook.into())))
    }

    /// Update a webhook
    #[oai(
        path = "/v1/webhooks/:id",
        method = "patch",
        operation_id = "updateWebhook"
    )]
    async fn update(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        body: JsonBody<UpdateWebhookRequest>,
    ) -> Result<WebhookResponse, ApiError> {
        let id: WebhookId = path_id(&id.0, "webhook")?;
        self.update_webhook(req, auth, id, body.0).await
    }

    /// Delete a webhook
    #[oai(
        path = "/v1/webhooks/:id",
        method = "delete",
        operation_id = "deleteWebhook"
    )]
    async fn delete(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<DeletedWebhookResponse, ApiError> {
        let id: WebhookId = path_id(&id.0, "webhook")?;
        self.webhooks
            .delete(&auth.0, id, request_context(req))
            .await?;
        Ok(DeletedWebhookResponse::Deleted)
    }

    /// Rotate a webhook's signing secret
    ///
    /// Returns the new secret in this answer only. The previous one keeps signing for
    /// `graceHours` (default 24, at most 168), so both signatures are sent meanwhile.
    #[oai(
        path = "/v1/webhooks/:id/rotate-secret",
        method = "post",
        operation_id = "rotateWebhookSecret"
    )]
    async fn rotate_secret(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        body: JsonBody<RotateSecretRequest>,
    ) -> Result<WebhookResponse, ApiError> {
        let id: WebhookId = path_id(&id.0, "webhook")?;
        let issued = self
            .webhooks
            .rotate_secret(&auth.0, id, body.0.grace_hours, request_context(req))
            .await?;
        Ok(WebhookResponse::Ok(Json(issued.into())))
    }

    /// Send a test delivery, or replay a past one
    ///
    /// Queues a delivery of `ping` (or any catalog type, with the example data or yours)
    /// under a fresh `webhook-id`, sent with `X-Sealbox-Test-Delivery: true`. With
    /// `action: "replay"` and a `deliveryId`, queues that delivery again instead: the
    /// same bytes under the same `webhook-id`, recording `originalDeliveryId`.
    #[oai(
        path = "/v1/webhooks/:id/test",
        method = "post",
        operation_id = "testWebhook"
    )]
    async fn test(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        body: JsonBody<TestWebhookRequest>,
    ) -> Result<QueuedDeliveryResponse, ApiError> {
        let id: WebhookId = path_id(&id.0, "webhook")?;
        let body = body.0;
        if body
            .id
            .as_deref()
            .is_some_and(|sent| sent.trim() != id.to_string())
        {
            return Err(ApiError::validation("the request is invalid")
                .with_detail("id", "must be the webhook id of the path, or left out"));
        }
        let ctx = request_context(req);
        let delivery = match body.action.unwrap_or(TestAction::Test) {
            TestAction::Test => {
                let input = TestInput {
                    event_type: body.event_type,
                    data: body.data,
                };
                self.webhooks.test(&auth.0, id, input, ctx).await?
            }
            TestAction::Replay => {
                let Some(raw) = body.delivery_id else {
                    return Err(ApiError::validation("the request is invalid")
                        .with_detail("deliveryId", "is required to replay a delivery"));
                };
                let original: DeliveryId = raw.trim().parse().map_err(|_| {
                    ApiError::validation("the request is invalid")
                        .with_detail("deliveryId", "must be a delivery id (a UUID)")
                })?;
                self.webhooks.replay(&auth.0, id, original, ctx).await?
            }
        };
        Ok(QueuedDeliveryResponse::Accepted(Json(delivery.into())))
    }

    /// List a webhook's deliveries
    ///
    /// Newest first, each with its latest attempt: status, response code, duration, the
    /// first 4 KiB of the response body and, while pending, the next attempt's time.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/v1/webhooks/:id/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    async fn deliveries(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        /// Only deliveries in this state.
        status: Query<Option<DeliveryState>>,
        /// Page size: 1 to 200, default 50.
        limit: Query<Option<i64>>,
        /// The id of the last delivery seen: continue with older deliveries.
        before: Query<Option<String>>,
        /// A delivery id: list deliveries newer than it.
        after: Query<Option<String>>,
    ) -> Result<DeliveriesResponse, ApiError> {
        let id: WebhookId = path_id(&id.0, "webhook")?;
        let page = PageRequest::parse(limit.0, before.0, after.0)?;
        let page = self
            .webhooks
            .deliveries(&auth.0, id, status.0.map(Into::into), page)
            .await?;
        let link = next_link(req, page.next.as_ref());
        Ok(DeliveriesResponse::Ok(
            Json(page.items.into_iter().map(Into::into).collect()),
            link,
        ))
    }

    /// Get a delivery with every attempt
    #[oai(
        path = "/v1/webhooks/:id/deliveries/:deliveryId",
        method = "get",
        operation_id = "getWebhookDelivery"
    )]
    async fn delivery(
        &self,
        auth: Authenticated,
        id: Path<String>,
        #[oai(name = "deliveryId")] delivery_id: Path<String>,
    ) -> Result<DeliveryResponse, ApiError> {
        let id: WebhookId = path_id(&id.0, "webhook")?;
        let delivery_id: DeliveryId = path_id(&delivery_id.0, "delivery")?;
        let detail = self.webhooks.delivery(&auth.0, id, delivery_id).await?;
        Ok(DeliveryResponse::Ok(Json(detail.into())))
    }
}

impl WebhooksApi {
    async fn update_webhook(
        &self,
        req: &Request,
        auth: Authenticated,
        id: WebhookId,
        body: UpdateWebhookRequest,
    ) -> Result<WebhookResponse, ApiError> {
        let retry = body.retry_policy.unwrap_or_default();
        let input = WebhookInput {
            url: body.url,
            description: body.description,
            enabled: body.enabled,
            events: body.events,
            max_attempts: retry.max_attempts,
            disable_after_failures: retry.disable_after_consecutive_failures,
        };
        let hook = self
            .webhooks
            .update(&auth.0, id, input, request_context(req))
            .await?;
        Ok(WebhookResponse::Ok(Json(hook.into())))
    }
}

/// A webhook id sent in a body: malformed is a validation error; well-formed but unknown
/// (or another organization's) is the service's 404.
fn body_id(raw: &str) -> Result<WebhookId, ApiError> {
    raw.trim().parse().map_err(|_| {
        ApiError::validation("the request is invalid")
            .with_detail("id", "must be a webhook id (a UUID)")
    })
}
