//! Webhooks (SPEC §7), as an organization manages them: its endpoints, their signing
//! secrets, test and replayed deliveries, and the delivery log. The queue the delivery
//! worker drives is `webhook_queue`.
//!
//! Every management call is one transaction that writes the change, its audit entry and
//! its `webhook.*` event. The signing secret is shown once, when created or rotated, and
//! is stored only sealed by the master key, bound to the webhook's id.
//!
//! What is sent is decided once: fan-out (or the test and replay calls) writes the exact
//! payload bytes into the delivery row, so every retry and every replay signs and sends
//! the same body under the same `webhook-id`.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::event_catalog;
use super::page::{Cursor, Page, PageRequest};
use super::webhook_queue::DeliveryQueue;
use super::webhook_targets::{TargetPolicy, url_origin};
use super::{
    FieldError, Journal, RequestContext, ServiceError, access, invalid_if_any, read, write,
};
use crate::auth::{Permission, Principal};
use crate::crypto::MasterKey;
use crate::crypto::webhook_signature::WebhookSecret;
use crate::ids::{DeliveryId, WebhookId, format_rfc3339};
use crate::store::Store;
use crate::store::webhooks::{
    self, Attempt, Delivery, DeliveryCursor, DeliveryStatus, NewDelivery, Webhook,
};

/// Attempts per delivery unless the webhook says otherwise (SPEC §7).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// At most this many attempts per delivery: the retry schedule's delays add up to about
/// four days over the first ten attempts and a day more for each further one, so 30
/// attempts keep retrying for about three weeks; beyond that an endpoint is gone.
pub const MAX_MAX_ATTEMPTS: u32 = 30;
/// Consecutive failed attempts that disable a webhook unless it says otherwise.
pub const DEFAULT_DISABLE_AFTER: u32 = 50;
/// The range of `disableAfterConsecutiveFailures` (the transfer reference: 1-10000).
pub const MAX_DISABLE_AFTER: u32 = 10_000;
/// How long a rotated-out secret keeps signing unless told otherwise, and at most.
pub const DEFAULT_GRACE_HOURS: u32 = 24;
pub const MAX_GRACE_HOURS: u32 = 168;
/// Webhooks one organization may have: each event is fanned out to every one of them.
pub const MAX_WEBHOOKS_PER_ORG: i64 = 100;
/// Event filters one webhook may have.
pub const MAX_EVENT_FILTERS: usize = 100;
pub const MAX_DESCRIPTION_LEN: usize = 500;
/// The event type of a test delivery unless another is asked for.
pub const PING: &str = "ping";
/// The filters of a webhook created without any: every event.
const ALL_EVENTS: &str = event_catalog::WILDCARD;

/// Binds a sealed signing secret to its webhook, so a sealed value copied onto another
/// row does not open there.
const SECRET_AAD: &[u8] = b"sealbox/v1/webhook-secret\0";

/// A webhook's settings as created or patched; `None` keeps (or defaults) a field.
#[derive(Debug, Default, Clone)]
pub struct WebhookInput {
    pub url: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub events: Option<Vec<String>>,
    pub max_attempts: Option<i64>,
    pub disable_after_failures: Option<i64>,
}

/// A webhook and its signing secret, right after it was created or rotated: the one
/// time the secret is shown. `Debug` leaves the secret out.
pub struct IssuedSecret {
    pub webhook: Webhook,
    pub secret: WebhookSecret,
}

impl std::fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSecret")
            .field("webhook", &self.webhook.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// What `POST /v1/webhooks/{id}/test` asks for.
#[derive(Debug, Clone, Default)]
pub struct TestInput {
    /// A catalog type; `ping` when absent.
    pub event_type: Option<String>,
    /// The payload's `data`; the catalog example when absent.
    pub data: Option<Value>,
}

/// A delivery with its attempt log.
#[derive(Debug, Clone)]
pub struct DeliveryDetail {
    pub delivery: Delivery,
    pub attempts: Vec<Attempt>,
}

#[derive(Clone)]
pub struct WebhookService {
    store: Store,
    master_key: MasterKey,
    targets: Arc<TargetPolicy>,
    wake: Arc<Notify>,
    /// The webhooks limit of the organization's plan.
    plans: super::plans::PlanRules,
}

impl std::fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookService").finish_non_exhaustive()
    }
}

impl WebhookService {
    /// `targets` judges webhook URLs at creation (the SSRF rules of SPEC §7).
    pub fn new(store: Store, master_key: MasterKey, targets: TargetPolicy) -> Self {
        Self {
            store,
            master_key,
            targets: Arc::new(targets),
            wake: Arc::new(Notify::new()),
            plans: super::plans::PlanRules::default(),
        }
    }

    /// Checks new webhooks against the organization's plan.
    pub fn with_plans(mut self, plans: super::plans::PlanRules) -> Self {
        self.plans = plans;
        self
    }

    /// The delivery worker's handle on the queue these webhooks feed (sharing the
    /// wake-up that tests and replays signal).
    pub fn queue(&self) -> DeliveryQueue {
        DeliveryQueue::new(
            self.store.clone(),
            self.master_key.clone(),
            self.wake.clone(),
        )
    }

    /// The webhooks of the organization the caller acts in, oldest first.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<Webhook>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::WebhooksRead)?;
            Ok(webhooks::list_for_org(conn, access.org_id)?)
        })
        .await
    }

    pub async fn get(&self, principal: &Principal, id: WebhookId) -> Result<Webhook, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::WebhooksRead)?;
            found(webhooks::find_for_org(conn, access.org_id, id)?)
        })
        .await
    }

    /// Creates a webhook with a new signing secret, returned this once.
    pub async fn create(
        &self,
        principal: &Principal,
        input: WebhookInput,
        ctx: RequestContext,
    ) -> Result<IssuedSecret, ServiceError> {
        let settings = Settings::check(&self.targets, input, None)?;
        let id = WebhookId::new();
        let secret = WebhookSecret::generate();
        let sealed = self.seal(id, &secret);
        let principal = principal.clone();
        let plans = self.plans.clone();
        let webhook = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::WebhooksWrite)?;
            plans.check_webhooks_in(tx, access.org_id)?;
            if webhooks::count_for_org(tx, access.org_id)? >= MAX_WEBHOOKS_PER_ORG {
                return Err(ServiceError::Conflict(format!(
                    "an organization has at most {MAX_WEBHOOKS_PER_ORG} webhooks; delete one first"
                )));
            }
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let now = journal.now().to_owned();
            let webhook = Webhook {
                id,
                org_id: access.org_id,
                url: settings.url,
                description: settings.description,
                enabled: settings.enabled,
                disabled_reason: None,
                disabled_at: (!settings.enabled).then(|| now.clone()),
                events: settings.events,
                max_attempts: settings.max_attempts,
                disable_after_failures: settings.disable_after_failures,
                consecutive_failures: 0,
                previous_secret_expires_at: None,
                created_by: Some(access.user_id),
                created_at: now.clone(),
                updated_at: now,
            };
            webhooks::insert(tx, &webhook, &sealed)?;
            journal.audit(
                "webhook.created",
                "webhook",
                webhook.id,
                json!({"origin": url_origin(&webhook.url), "events": webhook.events,
                       "enabled": webhook.enabled}),
            )?;
            journal.event(
                "webhook.created",
                json!({"webhookId": webhook.id, "origin": url_origin(&webhook.url),
                       "events": webhook.events, "enabled": webhook.enabled}),
            )?;
            Ok(webhook)
        })
        .await?;
        Ok(IssuedSecret { webhook, secret })
    }

    /// Changes a webhook. Disabling it gives up its pending deliveries; enabling it again
    /// clears why it was disabled and its count of failures.
    pub async fn update(
        &self,
        principal: &Principal,
        id: WebhookId,
        input: WebhookInput,
        ctx: RequestContext,
    ) -> Result<Webhook, ServiceError> {
        let principal = principal.clone();
        let targets = self.targets.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::WebhooksWrite)?;
            let old = found(webhooks::find_for_org(tx, access.org_id, id)?)?;
            let settings = Settings::check(&targets, input, Some(&old))?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let now = journal.now().to_owned();
            let mut changed = Vec::new();
            let mut hook = old.clone();
            if settings.url != old.url {
                changed.push("url");
                hook.url = settings.url;
            }
            if settings.description != old.description {
                changed.push("description");
                hook.description = settings.description;
            }
            if settings.events != old.events {
                changed.push("events");
                hook.events = settings.events;
            }
            if (settings.max_attempts, settings.disable_after_failures)
                != (old.max_attempts, old.disable_after_failures)
            {
                changed.push("retryPolicy");
                hook.max_attempts = settings.max_attempts;
                hook.disable_after_failures = settings.disable_after_failures;
            }
            if settings.enabled != old.enabled {
                changed.push("enabled");
                hook.enabled = settings.enabled;
                if settings.enabled {
                    hook.disabled_reason = None;
                    hook.disabled_at = None;
                    hook.consecutive_failures = 0;
                } else {
                    hook.disabled_at = Some(now.clone());
                    webhooks::cancel_pending(tx, id, "the webhook was disabled", &now)?;
                }
            }
            if changed.is_empty() {
                return Ok(old);
            }
            hook.updated_at = now;
            webhooks::update(tx, &hook)?;
            journal.audit(
                "webhook.updated",
                "webhook",
                hook.id,
                json!({"changed": changed, "origin": url_origin(&hook.url),
                       "events": hook.events, "enabled": hook.enabled}),
            )?;
            journal.event(
                "webhook.updated",
                json!({"webhookId": hook.id, "changed": changed}),
            )?;
            Ok(hook)
        })
        .await
    }

    /// Deletes a webhook with its deliveries and their log.
    pub async fn delete(
        &self,
        principal: &Principal,
        id: WebhookId,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::WebhooksWrite)?;
            let hook = found(webhooks::find_for_org(tx, access.org_id, id)?)?;
            if !webhooks::delete(tx, access.org_id, id)? {
                return Err(ServiceError::NotFound("webhook"));
            }
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "webhook.deleted",
                "webhook",
                id,
                json!({"origin": url_origin(&hook.url)}),
            )?;
            journal.event("webhook.deleted", json!({"webhookId": id}))?;
            Ok(())
        })
        .await
    }

    /// Issues a new signing secret, returned this once. The secret it replaces keeps
    /// signing for `grace_hours` (default 24, at most 168; 0 stops it at once), so
    /// receivers can switch without losing a delivery. A secret rotated out earlier and
    /// still in its grace window stops now: at most two secrets sign.
    pub async fn rotate_secret(
        &self,
        principal: &Principal,
        id: WebhookId,
        grace_hours: Option<i64>,
        ctx: RequestContext,
    ) -> Result<IssuedSecret, ServiceError> {
        let grace_hours = match grace_hours {
            None => DEFAULT_GRACE_HOURS,
            Some(h) if (0..=i64::from(MAX_GRACE_HOURS)).contains(&h) => h as u32,
            Some(_) => {
                return Err(ServiceError::Invalid(vec![FieldError::new(
                    "graceHours",
                    format!("must be between 0 and {MAX_GRACE_HOURS}"),
                )]));
            }
        };
        let secret = WebhookSecret::generate();
        let sealed = self.seal(id, &secret);
        let principal = principal.clone();
        let webhook = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::WebhooksWrite)?;
            found(webhooks::find_for_org(tx, access.org_id, id)?)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let until = (grace_hours > 0).then(|| now_ms() + i64::from(grace_hours) * 3_600_000);
            webhooks::rotate_secret(tx, access.org_id, id, &sealed, until, journal.now())?;
            let until_text = until.map(format_ms);
            journal.audit(
                "webhook.secret_rotated",
                "webhook",
                id,
                json!({"graceHours": grace_hours, "previousSecretValidUntil": until_text}),
            )?;
            journal.event(
                "webhook.secret_rotated",
                json!({"webhookId": id, "previousSecretValidUntil": until_text}),
            )?;
            found(webhooks::find_for_org(tx, access.org_id, id)?)
        })
        .await?;
        Ok(IssuedSecret { webhook, secret })
    }

    /// Queues a test delivery: `ping` or any catalog type, with the catalog's example
    /// data or the caller's, under a fresh `webhook-id`, marked as a test.
    pub async fn test(
        &self,
        principal: &Principal,
        id: WebhookId,
        input: TestInput,
        ctx: RequestContext,
    ) -> Result<Delivery, ServiceError> {
        let event_type = input.event_type.unwrap_or_else(|| PING.to_owned());
        let mut problems = Vec::new();
        let kind = event_catalog::find(event_type.trim());
        if kind.is_none() {
            problems.push(FieldError::new(
                "eventType",
                format!("`{event_type}` is not an event type; GET /v1/webhooks/events lists them"),
            ));
        }
        if input.data.as_ref().is_some_and(|d| !d.is_object()) {
            problems.push(FieldError::new("data", "must be a JSON object"));
        }
        let (Some(kind), true) = (kind, problems.is_empty()) else {
            return Err(ServiceError::Invalid(problems));
        };
        let principal = principal.clone();
        let delivery = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::WebhooksWrite)?;
            let hook = found(webhooks::find_for_org(tx, access.org_id, id)?)?;
            require_enabled(&hook)?;
            let data = input.data.unwrap_or_else(|| example_for(kind, hook.id));
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let body = payload(kind.name, journal.now(), &data);
            let delivery_id = DeliveryId::new();
            let org = access.org_id.to_string();
            webhooks::insert_delivery(
                tx,
                &NewDelivery {
                    id: delivery_id,
                    webhook_id: hook.id,
                    org_id: &org,
                    message_id: &uuid::Uuid::now_v7().to_string(),
                    event_type: kind.name,
                    body: &body,
                    is_test: true,
                    original_delivery_id: None,
                    due_at: now_ms(),
                    now: journal.now(),
                },
            )?;
            journal.audit(
                "webhook.tested",
                "webhook",
                hook.id,
                json!({"deliveryId": delivery_id, "eventType": kind.name}),
            )?;
            webhooks::find_delivery(tx, access.org_id, hook.id, delivery_id)?
                .ok_or(ServiceError::NotFound("delivery"))
        })
        .await?;
        self.wake.notify_one();
        Ok(delivery)
    }

    /// Sends a past delivery again: a new delivery of the same bytes under the same
    /// `webhook-id` (receivers dedupe on it), recording which delivery it replays. A
    /// delivery still being attempted cannot be replayed (409).
    pub async fn replay(
        &self,
        principal: &Principal,
        id: WebhookId,
        original: DeliveryId,
        ctx: RequestContext,
    ) -> Result<Delivery, ServiceError> {
        let principal = principal.clone();
        let delivery = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::WebhooksWrite)?;
            let hook = found(webhooks::find_for_org(tx, access.org_id, id)?)?;
            let original = webhooks::find_delivery(tx, access.org_id, id, original)?
                .ok_or(ServiceError::NotFound("delivery"))?;
            if original.status == DeliveryStatus::Pending {
                return Err(ServiceError::Conflict(
                    "the delivery is still being attempted; replay it once it has finished".into(),
                ));
            }
            require_enabled(&hook)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let delivery_id = DeliveryId::new();
            let org = access.org_id.to_string();
            webhooks::insert_delivery(
                tx,
                &NewDelivery {
                    id: delivery_id,
                    webhook_id: id,
                    org_id: &org,
                    message_id: &original.message_id,
                    event_type: &original.event_type,
                    body: &original.body,
                    is_test: original.is_test,
                    original_delivery_id: Some(original.id),
                    due_at: now_ms(),
                    now: journal.now(),
                },
            )?;
            journal.audit(
                "webhook.replayed",
                "webhook",
                id,
                json!({"deliveryId": delivery_id, "originalDeliveryId": original.id,
                       "messageId": original.message_id}),
            )?;
            webhooks::find_delivery(tx, access.org_id, id, delivery_id)?
                .ok_or(ServiceError::NotFound("delivery"))
        })
        .await?;
        self.wake.notify_one();
        Ok(delivery)
    }

    /// A page of a webhook's deliveries, newest first, optionally only those in `status`.
    pub async fn deliveries(
        &self,
        principal: &Principal,
        id: WebhookId,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<Delivery>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::WebhooksRead)?;
            let org = access.org_id;
            found(webhooks::find_for_org(conn, org, id)?)?;
            let cursor = match &page.cursor {
                Cursor::Start => DeliveryCursor::Start,
                Cursor::Before(raw) | Cursor::After(raw) => {
                    let at = match raw.parse::<DeliveryId>() {
                        Ok(at) if webhooks::find_delivery(conn, org, id, at)?.is_some() => at,
                        _ => return Err(page.unknown_cursor()),
                    };
                    match page.cursor {
                        Cursor::After(_) => DeliveryCursor::After(at),
                        _ => DeliveryCursor::Before(at),
                    }
                }
            };
            let items = webhooks::list_deliveries(conn, org, id, status, cursor, page.limit + 1)?;
            Ok(page.finish(items, |d| d.id.to_string()))
        })
        .await
    }

    /// One delivery of a webhook with every attempt made.
    pub async fn delivery(
        &self,
        principal: &Principal,
        id: WebhookId,
        delivery: DeliveryId,
    ) -> Result<DeliveryDetail, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::WebhooksRead)?;
            found(webhooks::find_for_org(conn, access.org_id, id)?)?;
            let delivery = webhooks::find_delivery(conn, access.org_id, id, delivery)?
                .ok_or(ServiceError::NotFound("delivery"))?;
            let attempts = webhooks::attempts_of(conn, delivery.id)?;
            Ok(DeliveryDetail { delivery, attempts })
        })
        .await
    }

    fn seal(&self, id: WebhookId, secret: &WebhookSecret) -> String {
        self.master_key
            .seal(&secret_aad(id), secret.expose().as_bytes())
    }
}

/// The checked settings of a webhook.
struct Settings {
    url: String,
    description: String,
    enabled: bool,
    events: Vec<String>,
    max_attempts: u32,
    disable_after_failures: u32,
}

impl Settings {
    /// `input` over `current` (or the defaults), checked; every problem is reported.
    fn check(
        targets: &TargetPolicy,
        input: WebhookInput,
        current: Option<&Webhook>,
    ) -> Result<Self, ServiceError> {
        let mut problems = Vec::new();
        let url = match (input.url, current) {
            (Some(url), _) => check_url(targets, url.trim(), &mut problems),
            (None, Some(hook)) => hook.url.clone(),
            (None, None) => {
                problems.push(FieldError::new("url", "is required"));
                String::new()
            }
        };
        let description = match (input.description, current) {
            (Some(text), _) => text.trim().to_owned(),
            (None, Some(hook)) => hook.description.clone(),
            (None, None) => String::new(),
        };
        if description.chars().count() > MAX_DESCRIPTION_LEN {
            problems.push(FieldError::new(
                "description",
                format!("at most {MAX_DESCRIPTION_LEN} characters"),
            ));
        }
        let events = match (input.events, current) {
            (Some(filters), _) => check_filters(filters, &mut problems),
            (None, Some(hook)) => hook.events.clone(),
            (None, None) => vec![ALL_EVENTS.to_owned()],
        };
        let max_attempts = in_range(
            input.max_attempts,
            current.map_or(DEFAULT_MAX_ATTEMPTS, |h| h.max_attempts),
            MAX_MAX_ATTEMPTS,
            "retryPolicy.maxAttempts",
            &mut problems,
        );
        let disable_after_failures = in_range(
            input.disable_after_failures,
            current.map_or(DEFAULT_DISABLE_AFTER, |h| h.disable_after_failures),
            MAX_DISABLE_AFTER,
            "retryPolicy.disableAfterConsecutiveFailures",
            &mut problems,
        );
        invalid_if_any(problems)?;
        Ok(Self {
            url,
            description,
            enabled: input
                .enabled
                .unwrap_or(current.is_none_or(|hook| hook.enabled)),
            events,
            max_attempts,
            disable_after_failures,
        })
    }
}

/// An absolute `http` or `https` URL without credentials whose host, if it is an
/// address, the SSRF rules allow; returned in its normalized form, which is what is
/// stored and requested. Host names are judged at delivery, where they are resolved.
fn check_url(targets: &TargetPolicy, url: &str, problems: &mut Vec<FieldError>) -> String {
    if url.is_empty() {
        problems.push(FieldError::new("url", "is required"));
        return String::new();
    }
    match targets.check_url(url) {
        Ok(target) => target.as_str().to_owned(),
        Err(refused) => {
            problems.push(FieldError::new("url", refused.to_string()));
            url.to_owned()
        }
    }
}

/// Valid, distinct filters in the order sent.
fn check_filters(filters: Vec<String>, problems: &mut Vec<FieldError>) -> Vec<String> {
    if filters.is_empty() {
        problems.push(FieldError::new(
            "events",
            "subscribe to at least one event type, or `*` for every event",
        ));
    }
    if filters.len() > MAX_EVENT_FILTERS {
        problems.push(FieldError::new(
            "events",
            format!("at most {MAX_EVENT_FILTERS} filters"),
        ));
    }
    let mut kept: Vec<String> = Vec::with_capacity(filters.len());
    for (index, filter) in filters.iter().enumerate() {
        let filter = filter.trim();
        match event_catalog::validate_filter(filter) {
            Ok(()) if !kept.iter().any(|k| k == filter) => kept.push(filter.to_owned()),
            Ok(()) => {}
            Err(why) => problems.push(FieldError::new(format!("events[{index}]"), why)),
        }
    }
    kept
}

fn in_range(
    value: Option<i64>,
    current: u32,
    max: u32,
    path: &str,
    problems: &mut Vec<FieldError>,
) -> u32 {
    match value {
        None => current,
        Some(n) if (1..=i64::from(max)).contains(&n) => n as u32,
        Some(_) => {
            problems.push(FieldError::new(
                path,
                format!("must be between 1 and {max}"),
            ));
            current
        }
    }
}

fn found(hook: Option<Webhook>) -> Result<Webhook, ServiceError> {
    hook.ok_or(ServiceError::NotFound("webhook"))
}

/// A disabled webhook sends nothing, tests and replays included.
fn require_enabled(hook: &Webhook) -> Result<(), ServiceError> {
    if hook.enabled {
        Ok(())
    } else {
        Err(ServiceError::Conflict(
            "the webhook is disabled; enable it (PATCH {\"enabled\": true}) first".into(),
        ))
    }
}

/// The example data of a catalog type for a test delivery, naming the webhook under test
/// where the example names a webhook.
fn example_for(kind: &event_catalog::EventKind, webhook: WebhookId) -> Value {
    let mut data = kind.example();
    if let Some(slot) = data.get_mut("webhookId") {
        *slot = Value::String(webhook.to_string());
    }
    data
}

/// The Standard Webhooks payload: `{"type", "timestamp", "data"}`, in that order.
pub fn payload(event_type: &str, timestamp: &str, data: &Value) -> String {
    #[derive(Serialize)]
    struct Payload<'a> {
        #[serde(rename = "type")]
        event_type: &'a str,
        timestamp: &'a str,
        data: &'a Value,
    }
    serde_json::to_string(&Payload {
        event_type,
        timestamp,
        data,
    })
    .expect("JSON values serialize")
}

pub(super) fn secret_aad(id: WebhookId) -> Vec<u8> {
    [SECRET_AAD, id.as_uuid().as_bytes()].concat()
}

/// Now, in unix milliseconds: the clock of the delivery queue.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds as the stored RFC 3339 text.
pub fn format_ms(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format_rfc3339(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::now_rfc3339;

    #[test]
    fn the_payload_keeps_the_standard_webhooks_field_order() {
        let body = payload(
            "kv.created",
            "2026-11-24T18:30:00.000Z",
            &json!({"b": 1, "a": [true]}),
        );
        assert_eq!(
            body,
            r#"{"type":"kv.created","timestamp":"2026-11-24T18:30:00.000Z","data":{"a":[true],"b":1}}"#
        );
    }

    #[test]
    fn milliseconds_format_as_stored_timestamps() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        let now = now_ms();
        assert!(format_ms(now) <= now_rfc3339());
    }

    #[test]
    fn the_secret_seal_is_bound_to_the_webhook() {
        let key = MasterKey::generate();
        let (a, b) = (WebhookId::new(), WebhookId::new());
        let secret = WebhookSecret::generate();
        let sealed = key.seal(&secret_aad(a), secret.expose().as_bytes());
        assert!(!sealed.contains(secret.expose().as_str()));
        assert!(key.open(&secret_aad(a), &sealed).is_ok());
        assert!(key.open(&secret_aad(b), &sealed).is_err());
    }
}
