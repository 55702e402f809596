//! Webhooks, their delivery queue and attempt log, and the fan-out cursor over the outbox.
//!
//! Management lookups take the organization (another organization's webhook or delivery
//! is not found). The worker's queries (due deliveries, recording attempts) run across
//! organizations by design: they are not reachable from a request. Which webhook matches
//! which event, when to retry and when to disable are decided in `service::webhooks`;
//! this module only reads and writes rows.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::CachedQuery as _;
use super::StoreError;
use crate::ids::{DeliveryId, OrgId, UserId, WebhookId};

/// A webhook's settings and state. The sealed secrets are deliberately not here: only
/// [`claim_due`] and [`sealed_secret`] read them, so no listing can carry one. `Debug`
/// leaves the URL out: its path and query often carry the receiver's token.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub org_id: OrgId,
    pub url: String,
    pub description: String,
    pub enabled: bool,
    /// Why sealbox disabled it (a 410, too many failures); `None` when a person did.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    /// Event filters: exact types, `prefix.*` or `*`.
    pub events: Vec<String>,
    pub max_attempts: u32,
    pub disable_after_failures: u32,
    pub consecutive_failures: u32,
    /// While a rotated-out secret still signs: when it stops (unix ms).
    pub previous_secret_expires_at: Option<i64>,
    pub created_by: Option<UserId>,
    pub created_at: String,
    pub updated_at: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("enabled", &self.enabled)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

const WEBHOOK_COLUMNS: &str = "id, org_id, url, description, enabled, disabled_reason, \
                               disabled_at, events, max_attempts, disable_after_failures, \
                               consecutive_failures, previous_secret_expires_at, created_by, \
                               created_at, updated_at";

fn webhook_from_row(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    Ok(Webhook {
        id: row.get(0)?,
        org_id: row.get(1)?,
        url: row.get(2)?,
        description: row.get(3)?,
        enabled: row.get(4)?,
        disabled_reason: row.get(5)?,
        disabled_at: row.get(6)?,
        events: json_list(row, 7)?,
        max_attempts: row.get(8)?,
        disable_after_failures: row.get(9)?,
        consecutive_failures: row.get(10)?,
        previous_secret_expires_at: row.get(11)?,
        created_by: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
    })
}

fn json_list(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<String>> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).expect("strings serialize")
}

/// Stores a new webhook with its sealed signing secret.
pub fn insert(conn: &Connection, hook: &Webhook, secret_sealed: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO webhooks (id, org_id, url, description, enabled, disabled_at, events,
                               max_attempts, disable_after_failures, secret_sealed, created_by,
                               created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            hook.id,
            hook.org_id,
            hook.url,
            hook.description,
            hook.enabled,
            hook.disabled_at,
            to_json(&hook.events),
            hook.max_attempts,
            hook.disable_after_failures,
            secret_sealed,
            hook.created_by,
            hook.created_at,
            hook.updated_at,
        ],
    )?;
    Ok(())
}

pub fn find_for_org(
    conn: &Connection,
    org: OrgId,
    id: WebhookId,
) -> Result<Option<Webhook>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = ?1 AND id = ?2"),
            params![org, id],
            webhook_from_row,
        )
        .optional()?)
}

/// The organization's webhooks, oldest first.
pub fn list_for_org(conn: &Connection, org: OrgId) -> Result<Vec<Webhook>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([org], webhook_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn count_for_org(conn: &Connection, org: OrgId) -> Result<i64, StoreError> {
    Ok(conn.query_row_cached(
        "SELECT count(*) FROM webhooks WHERE org_id = ?1",
        [org],
        |row| row.get(0),
    )?)
}

/// Writes the settings and state of `hook` (not its secrets).
pub fn update(conn: &Connection, hook: &Webhook) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE webhooks SET url = ?3, description = ?4, enabled = ?5, disabled_reason = ?6,
                disabled_at = ?7, events = ?8, max_attempts = ?9, disable_after_failures = ?10,
                consecutive_failures = ?11, updated_at = ?12
         WHERE org_id = ?1 AND id = ?2",
        params![
            hook.org_id,
            hook.id,
            hook.url,
            hook.description,
            hook.enabled,
            hook.disabled_reason,
            hook.disabled_at,
            to_json(&hook.events),
            hook.max_attempts,
            hook.disable_after_failures,
            hook.consecutive_failures,
            hook.updated_at,
        ],
    )?;
    Ok(())
}

/// Deletes a webhook with its deliveries and their attempts; false if there was none.
pub fn delete(conn: &Connection, org: OrgId, id: WebhookId) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM webhooks WHERE org_id = ?1 AND id = ?2",
        params![org, id],
    )? == 1)
}

/// Makes `new_sealed` the signing secret. With `previous_until` (unix ms) the secret it
/// replaces keeps signing until then; without, it stops at once. A previous secret of an
/// earlier rotation is dropped either way.
pub fn rotate_secret(
    conn: &Connection,
    org: OrgId,
    id: WebhookId,
    new_sealed: &str,
    previous_until: Option<i64>,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE webhooks
         SET previous_secret_sealed = CASE WHEN ?4 IS NULL THEN NULL ELSE secret_sealed END,
             previous_secret_expires_at = ?4, secret_sealed = ?3, updated_at = ?5
         WHERE org_id = ?1 AND id = ?2",
        params![org, id, new_sealed, previous_until, now],
    )? == 1)
}

/// The sealed current signing secret of a webhook (for checks and tests of the seal).
pub fn sealed_secret(
    conn: &Connection,
    org: OrgId,
    id: WebhookId,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT secret_sealed FROM webhooks WHERE org_id = ?1 AND id = ?2",
            params![org, id],
            |row| row.get(0),
        )
        .optional()?)
}

/// The enabled webhooks of an organization with their filters and creation time: the
/// candidates for the organization's events.
pub fn subscribers(
    conn: &Connection,
    org: &str,
) -> Result<Vec<(WebhookId, Vec<String>, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, events, created_at FROM webhooks
         WHERE org_id = ?1 AND enabled = 1
         ORDER BY id",
    )?;
    let rows = stmt.query_map([org], |row| {
        Ok((row.get(0)?, json_list(row, 1)?, row.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being attempted right now).
    Pending,
    /// An attempt got a 2xx.
    Succeeded,
    /// Out of attempts, or its endpoint was disabled by its last failure.
    Failed,
    /// Given up without a failure of its own: its webhook was disabled meanwhile.
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Succeeded,
            DeliveryStatus::Failed,
            DeliveryStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl rusqlite::types::FromSql for DeliveryStatus {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        DeliveryStatus::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("delivery status {text}").into())
        })
    }
}

/// A delivery to write.
#[derive(Debug)]
pub struct NewDelivery<'a> {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub org_id: &'a str,
    pub message_id: &'a str,
    pub event_type: &'a str,
    pub body: &'a str,
    pub is_test: bool,
    pub original_delivery_id: Option<DeliveryId>,
    /// When the first attempt is due (unix ms).
    pub due_at: i64,
    pub now: &'a str,
}

pub fn insert_delivery(conn: &Connection, new: &NewDelivery<'_>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO webhook_deliveries (id, webhook_id, org_id, message_id, event_type, body,
                                         is_test, original_delivery_id, status, next_attempt_at,
                                         created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?10)",
    )?
    .execute(params![
        new.id,
        new.webhook_id,
        new.org_id,
        new.message_id,
        new.event_type,
        new.body,
        new.is_test,
        new.original_delivery_id,
        new.due_at,
        new.now,
    ])?;
    Ok(())
}

/// A delivery as its webhook's owners see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub message_id: String,
    pub event_type: String,
    /// The exact payload sent.
    pub body: String,
    pub is_test: bool,
    pub original_delivery_id: Option<DeliveryId>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// While pending: when the next attempt is due (unix ms).
    pub next_attempt_at: Option<i64>,
    pub last_attempt_at: Option<String>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub last_response_body: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, message_id, event_type, body, is_test, \
                                original_delivery_id, status, attempts, next_attempt_at, \
                                last_attempt_at, last_status_code, last_error, \
                                last_duration_ms, last_response_body, created_at, completed_at";

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: row.get(0)?,
        webhook_id: row.get(1)?,
        message_id: row.get(2)?,
        event_type: row.get(3)?,
        body: row.get(4)?,
        is_test: row.get(5)?,
        original_delivery_id: row.get(6)?,
        status: row.get(7)?,
        attempts: row.get(8)?,
        next_attempt_at: row.get(9)?,
        last_attempt_at: row.get(10)?,
        last_status_code: row.get(11)?,
        last_error: row.get(12)?,
        last_duration_ms: row.get(13)?,
        last_response_body: row.get(14)?,
        created_at: row.get(15)?,
        completed_at: row.get(16)?,
    })
}

pub fn find_delivery(
    conn: &Connection,
    org: OrgId,
    webhook: WebhookId,
    id: DeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    Ok(conn
        .query_row_cached(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
                 WHERE org_id = ?1 AND webhook_id = ?2 AND id = ?3"
            ),
            params![org, webhook, id],
            delivery_from_row,
        )
        .optional()?)
}

/// Which page of a webhook's deliveries, newest first, to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryCursor {
    Start,
    /// Deliveries older than this one.
    Before(DeliveryId),
    /// Deliveries newer than this one (still listed newest first).
    After(DeliveryId),
}

/// Up to `limit` deliveries of a webhook, newest first (ids are UUIDv7: time-ordered),
/// optionally only those with `status`.
pub fn list_deliveries(
    conn: &Connection,
    org: OrgId,
    webhook: WebhookId,
    status: Option<DeliveryStatus>,
    cursor: DeliveryCursor,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let (before, after) = match cursor {
        DeliveryCursor::Start => (None, None),
        DeliveryCursor::Before(id) => (Some(id), None),
        DeliveryCursor::After(id) => (None, Some(id)),
    };
    // `After` reads the deliveries nearest the cursor, then lists them newest first.
    let order = if after.is_some() { "ASC" } else { "DESC" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
         WHERE webhook_id = ?1 AND org_id = ?2
           AND (?3 IS NULL OR status = ?3)
           AND (?4 IS NULL OR id < ?4)
           AND (?5 IS NULL OR id > ?5)
         ORDER BY id {order} LIMIT ?6"
    ))?;
    let rows = stmt.query_map(
        params![
            webhook,
            org,
            status.map(DeliveryStatus::as_str),
            before,
            after,
            limit
        ],
        delivery_from_row,
    )?;
    let mut deliveries: Vec<Delivery> = rows.collect::<Result<_, _>>()?;
    if after.is_some() {
        deliveries.reverse();
    }
    Ok(deliveries)
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempt: u32,
    pub started_at: String,
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// Every attempt of a delivery, first first.
pub fn attempts_of(conn: &Connection, delivery: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT attempt, started_at, status_code, duration_ms, response_body, error
         FROM webhook_attempts WHERE delivery_id = ?1 ORDER BY attempt",
    )?;
    let rows = stmt.query_map([delivery], |row| {
        Ok(Attempt {
            attempt: row.get(0)?,
            started_at: row.get(1)?,
            status_code: row.get(2)?,
            duration_ms: row.get(3)?,
            response_body: row.get(4)?,
            error: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The last outbox `seq` fan-out has handled.
pub fn dispatch_cursor(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row_cached(
        "SELECT last_seq FROM webhook_dispatch WHERE singleton = 1",
        [],
        |row| row.get(0),
    )?)
}

pub fn set_dispatch_cursor(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE webhook_dispatch SET last_seq = ?1 WHERE singleton = 1")?
        .execute([seq])?;
    Ok(())
}

/// What sending a claimed delivery needs. The secrets are still sealed here (and `Debug`
/// leaves them out all the same).
#[derive(Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub org_id: OrgId,
    pub url: String,
    pub secret_sealed: String,
    /// The rotated-out secret, only while its grace window is open.
    pub previous_secret_sealed: Option<String>,
    pub message_id: String,
    pub event_type: String,
    pub body: String,
    pub is_test: bool,
    /// Attempts made before this one.
    pub attempts: u32,
    pub max_attempts: u32,
    /// The lease this claim holds (unix ms); completing the attempt presents it.
    pub lease_until: i64,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("delivery_id", &self.delivery_id)
            .field("webhook_id", &self.webhook_id)
            .field("event_type", &self.event_type)
            .field("attempts", &self.attempts)
            .field("lease_until", &self.lease_until)
            .finish_non_exhaustive()
    }
}

/// Takes up to `limit` pending deliveries of enabled webhooks that are due at `now` (unix
/// ms) and not leased (or whose lease ran out), earliest first, and leases them until
/// `now + lease_ms`. Call inside an IMMEDIATE transaction.
pub fn claim_due(
    conn: &Connection,
    now: i64,
    lease_ms: i64,
    limit: u32,
) -> Result<Vec<DueDelivery>, StoreError> {
    let lease_until = now + lease_ms;
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.webhook_id, d.org_id, w.url, w.secret_sealed,
                CASE WHEN w.previous_secret_expires_at > ?1 THEN w.previous_secret_sealed END,
                d.message_id, d.event_type, d.body, d.is_test, d.attempts, w.max_attempts
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
           AND (d.lease_until IS NULL OR d.lease_until <= ?1)
           AND w.enabled = 1
         ORDER BY d.next_attempt_at, d.id
         LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit], |row| {
        Ok(DueDelivery {
            delivery_id: row.get(0)?,
            webhook_id: row.get(1)?,
            org_id: row.get(2)?,
            url: row.get(3)?,
            secret_sealed: row.get(4)?,
            previous_secret_sealed: row.get(5)?,
            message_id: row.get(6)?,
            event_type: row.get(7)?,
            body: row.get(8)?,
            is_test: row.get(9)?,
            attempts: row.get(10)?,
            max_attempts: row.get(11)?,
            lease_until,
        })
    })?;
    let due: Vec<DueDelivery> = rows.collect::<Result<_, _>>()?;
    let mut lease =
        conn.prepare_cached("UPDATE webhook_deliveries SET lease_until = ?2 WHERE id = ?1")?;
    for delivery in &due {
        lease.execute(params![delivery.delivery_id, lease_until])?;
    }
    Ok(due)
}

/// The earliest time (unix ms) a pending delivery of an enabled webhook is due, if any:
/// how long the worker may sleep.
pub fn next_due_at(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row_cached(
        "SELECT min(max(d.next_attempt_at, coalesce(d.lease_until, 0)))
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.status = 'pending' AND w.enabled = 1",
        [],
        |row| row.get(0),
    )?)
}

/// The number of pending deliveries and the creation time of the oldest (RFC 3339), for
/// the metrics. Reads the pending rows only (the partial index of pending deliveries).
pub fn pending_summary(conn: &Connection) -> Result<(u64, Option<String>), StoreError> {
    Ok(conn.query_row_cached(
        "SELECT count(*), min(created_at) FROM webhook_deliveries WHERE status = 'pending'",
        [],
        |row| Ok((row.get::<_, i64>(0)?.max(0) as u64, row.get(1)?)),
    )?)
}

/// Whether the delivery loop has anything to do at `now` (unix ms): outbox events fan-out
/// has not read, and pending deliveries that are due and not leased. Cheap (a primary-key
/// range and the partial index of pending deliveries), so an idle loop polls it instead of
/// taking the write lock.
pub fn work_waiting(conn: &Connection, now: i64) -> Result<(bool, bool), StoreError> {
    Ok(conn.query_row_cached(
        "SELECT EXISTS (SELECT 1 FROM outbox_events
                         WHERE seq > (SELECT last_seq FROM webhook_dispatch)),
                EXISTS (SELECT 1 FROM webhook_deliveries
                         WHERE status = 'pending' AND next_attempt_at <= ?1
                           AND (lease_until IS NULL OR lease_until <= ?1))",
        [now],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}

/// A claimed delivery and its webhook, as recording an attempt needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    pub webhook_id: WebhookId,
    pub org_id: OrgId,
    pub attempts: u32,
    pub max_attempts: u32,
    pub disable_after_failures: u32,
    pub webhook_enabled: bool,
}

/// The delivery if it is still pending under the lease `lease_until`; `None` if it was
/// deleted with its webhook, completed, or claimed again after the lease ran out.
pub fn leased(
    conn: &Connection,
    id: DeliveryId,
    lease_until: i64,
) -> Result<Option<Leased>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT d.webhook_id, d.org_id, d.attempts, w.max_attempts,
                    w.disable_after_failures, w.enabled
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.id = ?1 AND d.status = 'pending' AND d.lease_until = ?2",
            params![id, lease_until],
            |row| {
                Ok(Leased {
                    webhook_id: row.get(0)?,
                    org_id: row.get(1)?,
                    attempts: row.get(2)?,
                    max_attempts: row.get(3)?,
                    disable_after_failures: row.get(4)?,
                    webhook_enabled: row.get(5)?,
                })
            },
        )
        .optional()?)
}

/// One attempt's result, as recorded.
#[derive(Debug)]
pub struct AttemptRow<'a> {
    pub delivery_id: DeliveryId,
    pub attempt: u32,
    pub started_at: &'a str,
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    pub response_body: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// Appends an attempt to the log and makes it the delivery's last attempt. With
/// `next_attempt_at` the delivery stays pending until then; otherwise it ends with
/// `status`.
pub fn record_attempt(
    conn: &Connection,
    row: &AttemptRow<'_>,
    status: DeliveryStatus,
    next_attempt_at: Option<i64>,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status_code,
                                       duration_ms, response_body, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        row.delivery_id,
        row.attempt,
        row.started_at,
        row.status_code,
        row.duration_ms,
        row.response_body,
        row.error,
    ])?;
    conn.prepare_cached(
        "UPDATE webhook_deliveries
         SET status = ?2, attempts = ?3, next_attempt_at = ?4, lease_until = NULL,
             last_attempt_at = ?5, last_status_code = ?6, last_error = ?7,
             last_duration_ms = ?8, last_response_body = ?9, updated_at = ?10,
             completed_at = CASE WHEN ?2 = 'pending' THEN NULL ELSE ?10 END
         WHERE id = ?1",
    )?
    .execute(params![
        row.delivery_id,
        status.as_str(),
        row.attempt,
        next_attempt_at,
        row.started_at,
        row.status_code,
        row.error,
        row.duration_ms,
        row.response_body,
        now,
    ])?;
    Ok(())
}

/// A delivery succeeded: the webhook's run of failures ends.
pub fn reset_failures(conn: &Connection, id: WebhookId) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE webhooks SET consecutive_failures = 0
         WHERE id = ?1 AND consecutive_failures <> 0",
    )?
    .execute([id])?;
    Ok(())
}

/// A delivery attempt failed: counts it and returns the webhook's consecutive failures.
pub fn count_failure(conn: &Connection, id: WebhookId) -> Result<u32, StoreError> {
    Ok(conn.query_row_cached(
        "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1
         WHERE id = ?1 RETURNING consecutive_failures",
        [id],
        |row| row.get(0),
    )?)
}

/// Disables an enabled webhook, saying why (`reason` is `None` when a person did it).
/// False if it was already disabled.
pub fn disable(
    conn: &Connection,
    id: WebhookId,
    reason: Option<&str>,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE webhooks SET enabled = 0, disabled_reason = ?2, disabled_at = ?3,
                    updated_at = ?3
             WHERE id = ?1 AND enabled = 1",
        )?
        .execute(params![id, reason, now])?
        == 1)
}

/// Gives up the pending deliveries of a webhook (it was disabled): they end `cancelled`
/// with `why` as their last error (each attempt's own error stays in the attempt log).
/// Returns how many.
pub fn cancel_pending(
    conn: &Connection,
    id: WebhookId,
    why: &str,
    now: &str,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE webhook_deliveries
             SET status = 'cancelled', next_attempt_at = NULL, lease_until = NULL,
                 last_error = ?2, updated_at = ?3, completed_at = ?3
             WHERE webhook_id = ?1 AND status = 'pending'",
        )?
        .execute(params![id, why, now])?)
}

/// Deletes up to `limit` finished deliveries (succeeded, failed or cancelled) completed
/// before `cutoff` (RFC 3339), with their attempts; replays of them keep their own rows
/// (`original_delivery_id` becomes NULL). Returns how many went.
pub fn prune_finished(conn: &Connection, cutoff: &str, limit: i64) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM webhook_deliveries WHERE id IN (
                 SELECT id FROM webhook_deliveries
                  WHERE status != 'pending' AND completed_at < ?1
                  ORDER BY completed_at LIMIT ?2)",
        )?
        .execute(params![cutoff, limit])?)
}
