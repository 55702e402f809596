//! Background work (SPEC §2): loops that run beside the HTTP server.
//!
//! Webhook delivery: [`webhooks`] is the loop (fan-out, leases, bounded concurrency,
//! attempts recorded in batches, graceful stop); [`webhook_sender`] makes one HTTP attempt
//! (headers, signatures, the SSRF-checked client) and reports what happened; [`retry`]
//! says when to try again. What to deliver, to whom and when (the durable queue) is
//! `service::webhook_queue`'s.
//!
//! Conversions: [`conversions`] is the loop that takes queued conversion jobs with bounded
//! concurrency (the queue and the converters are `service::conversions`).

pub mod conversions;
pub mod retry;
pub mod webhook_sender;
pub mod webhooks;
