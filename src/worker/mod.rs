//! Background work (SPEC §2): loops that run beside the HTTP server.
//!
//! Webhook delivery is built from the pieces here: [`webhook_sender`] makes one HTTP
//! attempt (headers, signatures, the SSRF-checked client) and reports what happened;
//! [`retry`] says when to try again. What to deliver, to whom and when (the durable
//! queue) lives in the store and the delivery loop.

pub mod retry;
pub mod webhook_sender;
