//! Self-destruct: messages past their `expiresAt` are deleted outright (row, envelopes,
//! reactions), and their chats' devices get a `message.deleted` event with reason
//! `expired`. `app.rs` runs [`MessagingService::sweep_expired`] every second, so a
//! message is gone within about a second of its time; lists and streams also hide a
//! message past its time before the sweep reaches it (the stream reads the message when
//! it sends an event, and the row is gone).
//! Stream events older than [`EVENT_RETENTION_DAYS`] are pruned by the same loop.

use serde_json::json;

use super::MessagingService;
use crate::ids::{DeviceId, now_rfc3339};
use crate::service::{Journal, RequestContext, ServiceError};
use crate::store::messaging::{chats as chat_store, devices as device_store, events, messages};

/// How often the sweeper runs.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// Most messages one sweep deletes (the next sweep takes the rest).
const SWEEP_BATCH: u32 = 500;
/// How long a device's stream events are kept for resuming.
pub const EVENT_RETENTION_DAYS: i64 = 30;

impl MessagingService {
    /// Deletes the messages whose time has come. Returns how many.
    pub async fn sweep_expired(&self) -> Result<usize, ServiceError> {
        self.write_and_wake(|tx, woken| {
            let now = now_rfc3339();
            let due = messages::expired(tx, &now, SWEEP_BATCH)?;
            let ctx = RequestContext::default();
            for (message, org) in &due {
                let users: Vec<_> = chat_store::members(tx, message.chat_id)?
                    .into_iter()
                    .map(|m| m.user_id)
                    .collect();
                let devices: Vec<DeviceId> = device_store::ids_of_users(tx, *org, &users)?
                    .into_iter()
                    .map(|(d, _)| d)
                    .collect();
                messages::delete(tx, message.id)?;
                let data =
                    json!({"messageId": message.id, "chatId": message.chat_id, "reason": "expired"});
                Journal::new(tx, &ctx, None, Some(org.to_string()))
                    .event("message.deleted", data.clone())?;
                super::notify_devices(tx, woken, &devices, "message.deleted", &data, &now)?;
            }
            Ok(due.len())
        })
        .await
    }

    /// Drops stream events past their retention. Returns how many.
    pub async fn prune_events(&self) -> Result<usize, ServiceError> {
        crate::service::write(&self.store, |tx| {
            let cutoff = crate::ids::format_rfc3339(
                time::OffsetDateTime::now_utc() - time::Duration::days(EVENT_RETENTION_DAYS),
            );
            Ok(events::prune(tx, &cutoff, 10_000)?)
        })
        .await
    }

    /// Runs the sweeper until the task is dropped.
    pub async fn run_sweeper(self) {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rounds: u64 = 0;
        loop {
            tick.tick().await;
            match self.sweep_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "deleted self-destructing messages"),
                Err(e) => tracing::warn!(error = %e, "could not delete expired messages"),
            }
            rounds += 1;
            if rounds % 3600 == 1
                && let Err(e) = self.prune_events().await
            {
                tracing::warn!(error = %e, "could not prune stream events");
            }
        }
    }
}
