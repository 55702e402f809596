//! The delivery queue of webhooks (SPEC §7), as the delivery worker drives it: fanning
//! outbox events out to delivery rows, leasing the deliveries that are due, and recording
//! each attempt, which may schedule a retry, fail the delivery, or disable the webhook
//! (with its audit entry, `webhook.disabled` event and the admins' notification, in the
//! same transaction).
//!
//! The queue is rows, not memory: a crash loses nothing. A lease marks a delivery being
//! sent; one that runs out unfinished (the process died mid-send) makes it due again, and
//! the attempt of a lease that is no longer current is not recorded. Sending itself
//! (signing, HTTP, the retry schedule) is the worker's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::event_catalog;
use super::notifications::notify_org_admins;
use super::webhook_targets::url_origin;
use super::webhooks::{format_ms, now_ms, payload, secret_aad};
use super::{Journal, RequestContext, ServiceError, read, write};
use crate::crypto::MasterKey;
use crate::crypto::webhook_signature::WebhookSecret;
use crate::ids::{DeliveryId, OrgId, WebhookId, now_rfc3339};
use crate::store::webhooks::{self, AttemptRow, DeliveryStatus, NewDelivery};
use crate::store::{Store, StoreError, events};

/// How much of a response body is kept with an attempt (the issue: the first 4 KiB).
pub const RESPONSE_BODY_PREFIX: usize = 4096;
/// How much of an attempt's error text is kept.
const MAX_ERROR_LEN: usize = 1024;

/// Why sealbox disabled a webhook, as `disabledReason` and `webhook.disabled` say it.
pub const REASON_GONE: &str = "endpoint_gone";
pub const REASON_FAILURES: &str = "consecutive_failures";

/// What one fan-out pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    /// Outbox events read (and now behind the cursor).
    pub events: usize,
    /// Delivery rows written.
    pub deliveries: usize,
}

/// A delivery the worker holds a lease on: everything sending it needs. `Debug` leaves
/// the secrets out.
#[derive(Clone)]
pub struct DueDelivery {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub org_id: OrgId,
    pub url: String,
    /// `webhook-id`: the same for every attempt and every replay.
    pub message_id: String,
    pub event_type: String,
    /// The exact bytes to sign and send.
    pub body: String,
    /// Sent with `X-Sealbox-Test-Delivery: true`.
    pub is_test: bool,
    /// The number of this attempt (1 for the first).
    pub attempt: u32,
    pub max_attempts: u32,
    /// The signing secrets, newest first: the current one, then the rotated-out one while
    /// its grace window is open.
    pub secrets: Vec<WebhookSecret>,
    /// The lease (unix ms); [`AttemptReport::lease_until`] presents it back.
    pub lease_until: i64,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("delivery_id", &self.delivery_id)
            .field("webhook_id", &self.webhook_id)
            .field("event_type", &self.event_type)
            .field("attempt", &self.attempt)
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

/// What one attempt to send a [`DueDelivery`] found.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub delivery_id: DeliveryId,
    /// The lease of the claim; an attempt under a lease that is no longer current (the
    /// delivery was claimed again, finished or deleted meanwhile) is not recorded.
    pub lease_until: i64,
    /// When the request started (unix ms).
    pub started_at_ms: i64,
    pub duration: Duration,
    /// The response status, if a response came; only 2xx is success.
    pub status_code: Option<u16>,
    /// The start of the response body, as text (beyond [`RESPONSE_BODY_PREFIX`] bytes it
    /// is cut, on a character boundary).
    pub response_body: String,
    /// Why no usable response came (connection refused, timeout, refused address...).
    pub error: Option<String>,
    /// When to try again if this attempt failed and attempts remain (unix ms): the retry
    /// schedule with jitter and `Retry-After`, computed by the worker.
    pub retry_at_ms: i64,
}

/// What recording an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Recorded; the delivery now has `status` (`Pending` when a retry is scheduled).
    /// `webhook_disabled` says this attempt disabled the webhook (`webhook.disabled` was
    /// emitted and the admins notified in the same transaction).
    Recorded {
        status: DeliveryStatus,
        webhook_disabled: bool,
    },
    /// Not recorded: the lease is no longer current.
    Stale,
}

/// Counts a recorded attempt in the metrics by what it did to its delivery.
fn count_outcome(outcome: &AttemptOutcome) {
    let label = match outcome {
        AttemptOutcome::Recorded { status, .. } => match status {
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Pending => "retrying",
            DeliveryStatus::Failed | DeliveryStatus::Cancelled => "failed",
        },
        AttemptOutcome::Stale => return,
    };
    crate::metrics::webhook_attempt(label);
}

/// The worker's handle on the delivery queue. Cheap to clone.
#[derive(Clone)]
pub struct DeliveryQueue {
    store: Store,
    master_key: MasterKey,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for DeliveryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryQueue").finish_non_exhaustive()
    }
}

impl DeliveryQueue {
    /// `wake` is signalled by the management API when it queues a test or a replay.
    pub(super) fn new(store: Store, master_key: MasterKey, wake: Arc<Notify>) -> Self {
        Self {
            store,
            master_key,
            wake,
        }
    }

    /// Signalled when a test or replay delivery is queued, so the worker can send it
    /// without waiting for its next poll.
    pub fn wakeup(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Turns up to `limit` outbox events into delivery rows, in one transaction that
    /// also moves the fan-out cursor past them. See [`fan_out_in`].
    pub async fn fan_out(&self, limit: u32) -> Result<FanOut, ServiceError> {
        write(&self.store, move |tx| Ok(fan_out_in(tx, now_ms(), limit)?)).await
    }

    /// Leases up to `limit` due deliveries for `lease` (make it longer than a send can
    /// take: the request timeout plus margin) and returns them with their secrets opened.
    /// A delivery whose lease runs out unfinished (the process died mid-send) becomes due
    /// again. A delivery whose secret cannot be opened (the master key was replaced) is
    /// failed here, with a log line, rather than sent unsigned.
    pub async fn claim_due(
        &self,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, ServiceError> {
        let master_key = self.master_key.clone();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        write(&self.store, move |tx| {
            let now = now_ms();
            let mut due = Vec::new();
            for row in webhooks::claim_due(tx, now, lease_ms, limit)? {
                match open_secrets(&master_key, &row) {
                    Ok(secrets) => due.push(DueDelivery {
                        delivery_id: row.delivery_id,
                        webhook_id: row.webhook_id,
                        org_id: row.org_id,
                        url: row.url,
                        message_id: row.message_id,
                        event_type: row.event_type,
                        body: row.body,
                        is_test: row.is_test,
                        attempt: row.attempts + 1,
                        max_attempts: row.max_attempts,
                        secrets,
                        lease_until: row.lease_until,
                    }),
                    Err(why) => {
                        tracing::error!(
                            delivery = %row.delivery_id,
                            webhook = %row.webhook_id,
                            error = %why,
                            "cannot open a webhook signing secret; the delivery fails unsent"
                        );
                        webhooks::record_attempt(
                            tx,
                            &AttemptRow {
                                delivery_id: row.delivery_id,
                                attempt: row.attempts + 1,
                                started_at: &now_rfc3339(),
                                status_code: None,
                                duration_ms: 0,
                                response_body: None,
                                error: Some(
                                    "the signing secret could not be opened with this \
                                     server's master key; rotate the webhook's secret",
                                ),
                            },
                            DeliveryStatus::Failed,
                            None,
                            &now_rfc3339(),
                        )?;
                    }
                }
            }
            Ok(due)
        })
        .await
    }

    /// Records the attempts of claimed deliveries, all in one transaction (one commit for
    /// a whole batch of sends). See [`complete_attempt_in`].
    pub async fn complete_attempts(
        &self,
        reports: Vec<AttemptReport>,
    ) -> Result<Vec<AttemptOutcome>, ServiceError> {
        let outcomes = write(&self.store, move |tx| {
            let mut outcomes = Vec::with_capacity(reports.len());
            for report in &reports {
                outcomes.push(complete_attempt_in(tx, report)?);
            }
            Ok(outcomes)
        })
        .await?;
        // Counted once committed: a rolled-back batch recorded nothing.
        outcomes.iter().for_each(count_outcome);
        Ok(outcomes)
    }

    /// Records one attempt (see [`complete_attempt_in`]).
    pub async fn complete_attempt(
        &self,
        report: AttemptReport,
    ) -> Result<AttemptOutcome, ServiceError> {
        let outcome = write(&self.store, move |tx| Ok(complete_attempt_in(tx, &report)?)).await?;
        count_outcome(&outcome);
        Ok(outcome)
    }

    /// How many deliveries are pending, and how long the oldest has waited since it was
    /// created (zero when none is): the metrics' queue gauges, sampled at scrape time.
    pub async fn pending_summary(&self) -> Result<(u64, Duration), ServiceError> {
        let (count, oldest) =
            read(&self.store, |conn| Ok(webhooks::pending_summary(conn)?)).await?;
        let age = oldest
            .and_then(|at| {
                time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .map_or(Duration::ZERO, |at| {
                (time::OffsetDateTime::now_utc() - at)
                    .try_into()
                    .unwrap_or(Duration::ZERO)
            });
        Ok((count, age))
    }

    /// When the next pending delivery of an enabled webhook is due (unix ms), if any: how
    /// long the worker may sleep when nothing else wakes it.
    pub async fn next_due_at(&self) -> Result<Option<i64>, ServiceError> {
        read(&self.store, |conn| Ok(webhooks::next_due_at(conn)?)).await
    }

    /// Whether there are outbox events to fan out, and deliveries due now: a read, so an
    /// idle loop does not take the write lock every time it looks.
    pub async fn work_waiting(&self) -> Result<(bool, bool), ServiceError> {
        read(&self.store, |conn| {
            Ok(webhooks::work_waiting(conn, now_ms())?)
        })
        .await
    }

    /// Deletes finished deliveries (with their attempts) and fanned-out outbox events older
    /// than `retention`, a batch per transaction so writers are never held up for long.
    /// Returns (deliveries, events) removed.
    pub async fn prune(&self, retention: Duration) -> Result<(usize, usize), ServiceError> {
        const BATCH: i64 = 5_000;
        let cutoff = crate::ids::format_rfc3339(time::OffsetDateTime::now_utc() - retention);
        let mut removed = (0, 0);
        loop {
            let at = cutoff.clone();
            let (deliveries, events) = write(&self.store, move |tx| {
                let deliveries = webhooks::prune_finished(tx, &at, BATCH)?;
                let fanned_out = webhooks::dispatch_cursor(tx)?;
                let events = events::prune_fanned_out(tx, fanned_out, &at, BATCH)?;
                Ok((deliveries, events))
            })
            .await?;
            removed.0 += deliveries;
            removed.1 += events;
            if deliveries < BATCH as usize && events < BATCH as usize {
                return Ok(removed);
            }
        }
    }
}

/// Fans out up to `limit` outbox events after the cursor, inside the caller's
/// transaction: one pending delivery, due at `due_at` (unix ms), per enabled webhook of
/// the event's organization that existed when the event happened and whose filters match
/// its type; events of no organization go nowhere. The payload is built here, once per
/// event. The cursor moves past every event read, in the same transaction, so an event is
/// fanned out exactly once.
pub fn fan_out_in(conn: &Connection, due_at: i64, limit: u32) -> Result<FanOut, StoreError> {
    let cursor = webhooks::dispatch_cursor(conn)?;
    let batch = events::after(conn, cursor, limit)?;
    let Some(last) = batch.last().map(|e| e.seq) else {
        return Ok(FanOut::default());
    };
    let now = format_ms(due_at);
    let mut subscribers: HashMap<String, Vec<(WebhookId, Vec<String>, String)>> = HashMap::new();
    let mut written = 0;
    for event in &batch {
        let Some(org) = event.org_id.as_deref() else {
            continue;
        };
        if !subscribers.contains_key(org) {
            subscribers.insert(org.to_owned(), webhooks::subscribers(conn, org)?);
        }
        let matching: Vec<WebhookId> = subscribers[org]
            .iter()
            .filter(|(_, filters, created_at)| {
                created_at.as_str() <= event.created_at.as_str()
                    && event_catalog::matches_any(filters, &event.event_type)
            })
            .map(|(id, _, _)| *id)
            .collect();
        if matching.is_empty() {
            continue;
        }
        let data: Value = match serde_json::from_str(&event.data) {
            Ok(data) => data,
            Err(e) => {
                tracing::error!(event = %event.id, error = %e, "outbox event data is not JSON; not delivered");
                continue;
            }
        };
        let body = payload(&event.event_type, &event.created_at, &data);
        for webhook_id in matching {
            webhooks::insert_delivery(
                conn,
                &NewDelivery {
                    id: DeliveryId::new(),
                    webhook_id,
                    org_id: org,
                    message_id: &event.id,
                    event_type: &event.event_type,
                    body: &body,
                    is_test: false,
                    original_delivery_id: None,
                    due_at,
                    now: &now,
                },
            )?;
            written += 1;
        }
    }
    webhooks::set_dispatch_cursor(conn, last)?;
    Ok(FanOut {
        events: batch.len(),
        deliveries: written,
    })
}

/// Records one attempt inside the caller's transaction. Only a 2xx is success, and it
/// ends the webhook's run of failures. A failure counts toward
/// `disableAfterConsecutiveFailures` and is retried at `retry_at_ms` while attempts remain;
/// the last one fails the delivery. A 410 disables the webhook at once, and reaching the
/// failure limit disables it too: its pending deliveries are cancelled, an audit entry and
/// `webhook.disabled` are written and the organization's owners and admins notified, all
/// in this transaction.
pub fn complete_attempt_in(
    conn: &Connection,
    report: &AttemptReport,
) -> Result<AttemptOutcome, StoreError> {
    let Some(leased) = webhooks::leased(conn, report.delivery_id, report.lease_until)? else {
        return Ok(AttemptOutcome::Stale);
    };
    let now = now_rfc3339();
    let attempt = leased.attempts + 1;
    let succeeded = report
        .status_code
        .is_some_and(|code| (200..300).contains(&code));
    let body = (!report.response_body.is_empty())
        .then(|| truncate(&report.response_body, RESPONSE_BODY_PREFIX));
    let error = report.error.as_deref().map(|e| truncate(e, MAX_ERROR_LEN));
    let row = AttemptRow {
        delivery_id: report.delivery_id,
        attempt,
        started_at: &format_ms(report.started_at_ms),
        status_code: report.status_code,
        duration_ms: i64::try_from(report.duration.as_millis()).unwrap_or(i64::MAX),
        response_body: body.as_deref(),
        error: error.as_deref(),
    };
    if succeeded {
        webhooks::record_attempt(conn, &row, DeliveryStatus::Succeeded, None, &now)?;
        webhooks::reset_failures(conn, leased.webhook_id)?;
        return Ok(AttemptOutcome::Recorded {
            status: DeliveryStatus::Succeeded,
            webhook_disabled: false,
        });
    }
    let failures = webhooks::count_failure(conn, leased.webhook_id)?;
    let disable = if report.status_code == Some(410) {
        Some(REASON_GONE)
    } else if failures >= leased.disable_after_failures {
        Some(REASON_FAILURES)
    } else {
        None
    };
    let retry_at = (disable.is_none() && leased.webhook_enabled && attempt < leased.max_attempts)
        .then_some(report.retry_at_ms);
    let status = match retry_at {
        Some(_) => DeliveryStatus::Pending,
        None => DeliveryStatus::Failed,
    };
    webhooks::record_attempt(conn, &row, status, retry_at, &now)?;
    let mut webhook_disabled = false;
    if let Some(reason) = disable
        && webhooks::disable(conn, leased.webhook_id, Some(reason), &now)?
    {
        webhooks::cancel_pending(conn, leased.webhook_id, "the webhook was disabled", &now)?;
        announce_disabled(conn, leased.org_id, leased.webhook_id, reason, failures)?;
        webhook_disabled = true;
    }
    Ok(AttemptOutcome::Recorded {
        status,
        webhook_disabled,
    })
}

/// Audit entry, `webhook.disabled` event and the admins' notification for a webhook
/// sealbox just disabled.
fn announce_disabled(
    conn: &Connection,
    org: OrgId,
    id: WebhookId,
    reason: &str,
    failures: u32,
) -> Result<(), StoreError> {
    // Only the origin: a webhook URL's path and query often carry the receiver's token.
    let origin = webhooks::find_for_org(conn, org, id)?
        .map(|hook| url_origin(&hook.url))
        .unwrap_or_default();
    let ctx = RequestContext::default();
    let journal = Journal::new(conn, &ctx, None, Some(org.to_string()));
    journal.audit(
        "webhook.disabled",
        "webhook",
        id,
        json!({"reason": reason, "consecutiveFailures": failures, "origin": origin}),
    )?;
    journal.event(
        "webhook.disabled",
        json!({"webhookId": id, "reason": reason, "consecutiveFailures": failures}),
    )?;
    let why = match reason {
        REASON_GONE => "the endpoint answered 410 Gone".to_owned(),
        _ => format!("{failures} delivery attempts in a row failed"),
    };
    notify_org_admins(
        conn,
        org,
        "webhook.disabled",
        "A webhook was disabled",
        &format!(
            "Deliveries to {origin} stopped because {why}. Fix the endpoint, then enable the \
             webhook again (PATCH /v1/webhooks/{id} {{\"enabled\": true}}); replay the \
             deliveries it missed from its delivery log."
        ),
        &json!({"webhookId": id, "reason": reason}),
    )?;
    Ok(())
}

/// The current secret, then the rotated-out one while it still signs.
fn open_secrets(
    master_key: &MasterKey,
    row: &webhooks::DueDelivery,
) -> Result<Vec<WebhookSecret>, String> {
    let aad = secret_aad(row.webhook_id);
    let open = |sealed: &str| -> Result<WebhookSecret, String> {
        let bytes = master_key.open(&aad, sealed).map_err(|e| e.to_string())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| "not text".to_owned())?;
        WebhookSecret::parse(text).map_err(|e| e.to_string())
    };
    let mut secrets = vec![open(&row.secret_sealed)?];
    if let Some(previous) = &row.previous_secret_sealed {
        secrets.push(open(previous)?);
    }
    Ok(secrets)
}

/// `text` cut to at most `max_bytes`, on a character boundary.
fn truncate(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_bodies_and_errors_are_cut_on_character_boundaries() {
        let long = "é".repeat(RESPONSE_BODY_PREFIX);
        let kept = truncate(&long, RESPONSE_BODY_PREFIX);
        assert_eq!(kept.len(), RESPONSE_BODY_PREFIX);
        assert!(kept.chars().all(|c| c == 'é'));
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("short", 100), "short");
    }
}
