//! The webhook delivery loop (SPEC §7). It turns outbox events into deliveries, leases
//! the deliveries that are due, sends them with bounded concurrency, and records every
//! attempt; attempts that finish together are recorded in one transaction.
//!
//! The queue lives in SQLite, so a crash loses nothing: a delivery leased by a process
//! that died becomes due again when its lease runs out, and is sent again with the same
//! `webhook-id`. On shutdown the loop stops leasing, lets the sends in flight finish
//! (each is bounded by the request timeout) and records them before it returns.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};

use super::retry::next_attempt_delay;
use super::webhook_sender::{Attempt, WebhookSender, delivery_headers};
use crate::service::webhook_queue::{AttemptReport, DeliveryQueue, DueDelivery};

/// How often the loop looks for new events and due deliveries when nothing wakes it: the
/// bound on the delay between an event's commit and its first attempt.
const POLL: Duration = Duration::from_millis(25);
/// Events fanned out per transaction.
const FAN_OUT_BATCH: u32 = 500;
/// Leases last this many request timeouts: a live send (bounded by one timeout) is never
/// leased twice, and a send lost with its process is tried again soon after.
const LEASE_TIMEOUTS: u32 = 2;

/// The delivery loop's settings (config `[webhooks]`).
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Sends in flight at once.
    pub concurrency: usize,
    /// The request timeout of one attempt.
    pub timeout: Duration,
    /// Multiplies the retry schedule (1.0 in production; tests shrink it).
    pub time_scale: f64,
}

pub struct DeliveryWorker {
    queue: DeliveryQueue,
    sender: WebhookSender,
    settings: DeliverySettings,
}

impl DeliveryWorker {
    pub fn new(queue: DeliveryQueue, sender: WebhookSender, settings: DeliverySettings) -> Self {
        Self {
            queue,
            sender,
            settings,
        }
    }

    /// Runs until `stop` turns true, then finishes and records the sends in flight.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let concurrency = self.settings.concurrency.max(1);
        let lease = self.settings.timeout * LEASE_TIMEOUTS;
        let wake = self.queue.wakeup();
        let (done, mut finished) = mpsc::channel::<AttemptReport>(concurrency);
        let mut in_flight = 0usize;
        let mut stopping = *stop.borrow();
        let mut reports = Vec::new();
        let mut busy = false;
        loop {
            // Record what finished, all in one transaction.
            while let Ok(report) = finished.try_recv() {
                reports.push(report);
            }
            if !reports.is_empty() {
                in_flight -= reports.len();
                let batch = std::mem::take(&mut reports);
                if let Err(e) = self.queue.complete_attempts(batch).await {
                    // The leases run out and the deliveries are sent again: nothing is lost.
                    tracing::error!(error = %e, "could not record webhook attempts; they will be retried");
                }
            }
            if stopping {
                if in_flight == 0 {
                    return;
                }
                if let Some(report) = finished.recv().await {
                    reports.push(report);
                }
                continue;
            }

            // Look first (a read); take the write lock only for work that is there. After a
            // busy round, go straight to work.
            let (events, due) = if busy {
                (true, true)
            } else {
                self.queue.work_waiting().await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "could not look for webhook work");
                    (false, false)
                })
            };
            busy = false;
            let mut fanned_out = 0;
            if events {
                match self.queue.fan_out(FAN_OUT_BATCH).await {
                    Ok(fanned) => {
                        busy |= fanned.events == FAN_OUT_BATCH as usize;
                        fanned_out = fanned.deliveries;
                    }
                    Err(e) => tracing::error!(error = %e, "could not fan webhook events out"),
                }
            }
            let free = concurrency - in_flight;
            if free > 0 && (due || fanned_out > 0) {
                match self.queue.claim_due(lease, free as u32).await {
                    Ok(due) => {
                        busy |= due.len() == free;
                        for delivery in due {
                            in_flight += 1;
                            let (sender, done) = (self.sender.clone(), done.clone());
                            let time_scale = self.settings.time_scale;
                            tokio::spawn(async move {
                                let report = attempt(&sender, delivery, time_scale).await;
                                // The loop outlives its sends; a closed channel cannot happen.
                                let _ = done.send(report).await;
                            });
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "could not lease due webhook deliveries"),
                }
            }
            if busy && in_flight < concurrency {
                continue;
            }
            tokio::select! {
                report = finished.recv() => reports.extend(report),
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                changed = stop.changed() => stopping = changed.is_err() || *stop.borrow(),
            }
        }
    }
}

/// Sends one attempt of `delivery` and says what happened, with the time of the next
/// attempt should this one have failed.
async fn attempt(sender: &WebhookSender, delivery: DueDelivery, time_scale: f64) -> AttemptReport {
    let started = SystemTime::now();
    let started_at_ms = unix_ms(started);
    let secrets: Vec<_> = delivery.secrets.iter().collect();
    let body = bytes::Bytes::from(delivery.body.into_bytes());
    let headers = delivery_headers(
        &delivery.message_id,
        &delivery.event_type,
        started_at_ms / 1000,
        &body,
        &secrets,
        delivery.is_test,
    );
    let outcome = sender
        .send(Attempt {
            url: delivery.url,
            body,
            headers,
        })
        .await;
    let retry_in = next_attempt_delay(delivery.attempt, outcome.retry_after, time_scale);
    AttemptReport {
        delivery_id: delivery.delivery_id,
        lease_until: delivery.lease_until,
        started_at_ms,
        duration: outcome.duration,
        status_code: outcome.status,
        response_body: outcome.response_body_prefix,
        error: outcome.error,
        retry_at_ms: unix_ms(SystemTime::now() + retry_in),
    }
}

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
