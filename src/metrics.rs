//! Prometheus metrics (`[metrics]`, docs/operations.md): the series sealbox records, the
//! recorder that keeps them, and the samples taken at scrape time.
//!
//! Code anywhere records through the `metrics` facade with the helpers below, so every
//! series name and label is spelled here once. Until [`install`] runs (metrics are off by
//! default) the facade has no recorder and every call is a no-op. The recorder is the
//! process's global one, `metrics-exporter-prometheus` without its own HTTP server:
//! `http::metrics` renders its text from the [`PrometheusHandle`] in a poem handler.
//!
//! Labels take values from fixed sets only (route templates, methods, budgets, outcomes),
//! never from a request path, an id or a token, so the number of series stays bounded
//! and nothing secret can become a label.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "sealbox_http_requests_total";
pub const HTTP_DURATION: &str = "sealbox_http_request_duration_seconds";
pub const UPLOADED_BYTES: &str = "sealbox_uploaded_bytes_total";
pub const DOWNLOADED_BYTES: &str = "sealbox_downloaded_bytes_total";
pub const UPLOADS_IN_PROGRESS: &str = "sealbox_uploads_in_progress";
pub const WEBHOOK_QUEUE_DEPTH: &str = "sealbox_webhook_queue_depth";
pub const WEBHOOK_OLDEST_PENDING: &str = "sealbox_webhook_oldest_pending_age_seconds";
pub const WEBHOOK_ATTEMPTS: &str = "sealbox_webhook_delivery_attempts_total";
pub const LOGIN_FAILURES: &str = "sealbox_login_failures_total";
pub const RATE_LIMIT_REFUSALS: &str = "sealbox_rate_limit_refusals_total";
pub const DB_WAIT: &str = "sealbox_db_wait_seconds";
pub const DB_WRITE_BATCH: &str = "sealbox_db_write_batch_jobs";
pub const DISK_FREE: &str = "sealbox_disk_free_bytes";
pub const DISK_SIZE: &str = "sealbox_disk_size_bytes";
pub const BUILD_INFO: &str = "sealbox_build_info";
pub const BLOB_REQUESTS: &str = "sealbox_blob_store_requests_total";
pub const BLOB_ERRORS: &str = "sealbox_blob_store_errors_total";

/// The route label of a request no route matched (a 404 for an unknown path): one value
/// for every such path, whatever was asked for.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Request latency buckets, in seconds: from a cached lookup (about a millisecond) to a
/// large upload streamed in one request. Argon2id sign-ins land around 50-250 ms.
pub const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Database wait buckets, in seconds: an idle store hands out a connection in
/// microseconds; waits of 100 ms and more mean the threads or the writer are saturated.
pub const DB_WAIT_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Jobs per group commit of the database writer: 1 when writes come one at a time, up to
/// the batch limit (64) under many concurrent writers.
pub const DB_WRITE_BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// How often buffered histogram samples are folded in when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Why the recorder could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot start metrics: {0}")]
pub struct InstallError(String);

/// Installs the Prometheus recorder as the process's recorder (once: later calls return
/// the same handle) and records the build info.
pub fn install() -> Result<PrometheusHandle, InstallError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(DB_WAIT.into()), DB_WAIT_BUCKETS))
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(DB_WRITE_BATCH.into()), DB_WRITE_BATCH_BUCKETS)
        })
        .map_err(|e| InstallError(e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    // A racing second caller loses here and uses the winner's handle.
    if metrics::set_global_recorder(recorder).is_err() {
        return HANDLE
            .get()
            .cloned()
            .ok_or_else(|| InstallError("another metrics recorder is installed".into()));
    }
    let _ = HANDLE.set(handle.clone());
    // Histogram samples are buffered until drained; rendering drains them, and so does
    // upkeep, so memory stays bounded even when nothing scrapes.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("sealbox-metrics".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| InstallError(format!("cannot start the upkeep thread: {e}")))?;
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

/// The `# HELP` lines (and units) of every series.
fn describe() {
    describe_counter!(
        BLOB_REQUESTS,
        "Requests to the object store (storage.backend = \"s3\"), by backend and operation"
    );
    describe_counter!(
        BLOB_ERRORS,
        "Object store requests that failed (not counting \"not found\"), by backend and operation"
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time from a request's arrival to its response head, by route template and method"
    );
    describe_counter!(
        UPLOADED_BYTES,
        metrics::Unit::Bytes,
        "Request body bytes received by the upload routes (tus and PUT)"
    );
    describe_counter!(
        DOWNLOADED_BYTES,
        metrics::Unit::Bytes,
        "Response body bytes sent by the download routes"
    );
    describe_gauge!(
        UPLOADS_IN_PROGRESS,
        "Upload requests streaming bytes into the server right now"
    );
    describe_gauge!(
        WEBHOOK_QUEUE_DEPTH,
        "Webhook deliveries pending (waiting for an attempt or a retry), sampled at scrape"
    );
    describe_gauge!(
        WEBHOOK_OLDEST_PENDING,
        metrics::Unit::Seconds,
        "Age of the oldest pending webhook delivery (0 when none), sampled at scrape"
    );
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts recorded, by outcome (succeeded, retrying, failed)"
    );
    describe_counter!(
        LOGIN_FAILURES,
        "Refused sign-ins, by reason (credentials: wrong email or password; throttled)"
    );
    describe_counter!(
        RATE_LIMIT_REFUSALS,
        "Requests refused with 429 by a rate budget, by budget (ip, token, api_key, uploads)"
    );
    describe_histogram!(
        DB_WAIT,
        metrics::Unit::Seconds,
        "Time a database call waited, by wait: connection (for a database thread), \
         writer (for the writer thread to start the job)"
    );
    describe_histogram!(
        DB_WRITE_BATCH,
        "Write jobs committed together in one transaction (group commit) by the database writer"
    );
    describe_gauge!(
        DISK_FREE,
        metrics::Unit::Bytes,
        "Bytes available to sealbox on the file system of each data directory, sampled at scrape"
    );
    describe_gauge!(
        DISK_SIZE,
        metrics::Unit::Bytes,
        "Size of the file system of each data directory, sampled at scrape"
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version label is this binary's");
}

/// The route label of a poem path pattern (`/v1/transfers/:id`): OpenAPI's spelling
/// (`/v1/transfers/{id}`), a trailing wildcard as `*`; `None` is [`UNMATCHED_ROUTE`].
pub fn route_label(pattern: Option<&str>) -> String {
    let Some(pattern) = pattern else {
        return UNMATCHED_ROUTE.to_owned();
    };
    let mut label = String::with_capacity(pattern.len() + 4);
    for segment in pattern.split('/').skip(1) {
        label.push('/');
        if let Some(param) = segment.strip_prefix(':') {
            // A regex constraint (`:name<\d+>`) is not part of the name.
            let name = param.split('<').next().unwrap_or(param);
            label.push('{');
            label.push_str(name);
            label.push('}');
        } else if segment.starts_with('*') {
            label.push('*');
        } else {
            label.push_str(segment);
        }
    }
    if label.is_empty() {
        label.push('/');
    }
    label
}

/// The method label: the standard methods by name, anything else as `other` (a client
/// may send any token as a method; it must not become a series).
pub fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One answered request.
pub fn request_handled(method: &'static str, route: &str, status: u16, elapsed: Duration) {
    counter!(
        HTTP_REQUESTS,
        "route" => route.to_owned(),
        "method" => method,
        "status" => status.to_string()
    )
    .increment(1);
    histogram!(HTTP_DURATION, "route" => route.to_owned(), "method" => method)
        .record(elapsed.as_secs_f64());
}

pub fn uploaded(bytes: usize) {
    counter!(UPLOADED_BYTES).increment(bytes as u64);
}

pub fn downloaded(bytes: usize) {
    counter!(DOWNLOADED_BYTES).increment(bytes as u64);
}

/// Counts one upload request in [`UPLOADS_IN_PROGRESS`] while it lives: dropped when the
/// handler ends, however it ends (a client that goes away drops the handler's future).
pub struct UploadInProgress(());

impl UploadInProgress {
    pub fn start() -> Self {
        gauge!(UPLOADS_IN_PROGRESS).increment(1.0);
        Self(())
    }
}

impl Drop for UploadInProgress {
    fn drop(&mut self) {
        gauge!(UPLOADS_IN_PROGRESS).decrement(1.0);
    }
}

/// A refusal by the rate budget `budget` (`ip`, `token`, `api_key`, `uploads`).
pub fn rate_limited(budget: &'static str) {
    counter!(RATE_LIMIT_REFUSALS, "budget" => budget).increment(1);
}

/// A refused sign-in: `credentials` (wrong email or password, or a disabled account) or
/// `throttled` (refused before checking, after too many failures).
pub fn login_failed(reason: &'static str) {
    counter!(LOGIN_FAILURES, "reason" => reason).increment(1);
}

/// How long a database call waited: `connection` for a database thread, `writer` for the
/// write turn.
pub fn db_waited(wait: &'static str, waited: Duration) {
    histogram!(DB_WAIT, "wait" => wait).record(waited.as_secs_f64());
}

/// One group commit of the database writer: `jobs` write calls in one transaction.
pub fn db_batch(jobs: usize) {
    histogram!(DB_WRITE_BATCH).record(jobs as f64);
}

/// One recorded webhook delivery attempt: `succeeded`, `retrying` (failed, another attempt
/// is scheduled) or `failed` (failed, and the delivery with it).
/// One request to a blob store's service, and whether it failed.
pub fn blob_request(backend: &'static str, operation: &'static str, failed: bool) {
    counter!(BLOB_REQUESTS, "backend" => backend, "operation" => operation).increment(1);
    if failed {
        counter!(BLOB_ERRORS, "backend" => backend, "operation" => operation).increment(1);
    }
}

pub fn webhook_attempt(outcome: &'static str) {
    counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
}

/// The webhook queue as sampled at scrape time.
pub fn webhook_queue(depth: u64, oldest_pending_age: Duration) {
    gauge!(WEBHOOK_QUEUE_DEPTH).set(depth as f64);
    gauge!(WEBHOOK_OLDEST_PENDING).set(oldest_pending_age.as_secs_f64());
}

/// Samples free and total space of each `(label, directory)` with `statvfs`. Blocking (a
/// system call per directory): call off the async runtime. A directory that cannot be
/// read keeps its last sample.
pub fn sample_disks(dirs: &[(&'static str, PathBuf)]) {
    for (label, dir) in dirs {
        match rustix::fs::statvfs(dir) {
            Ok(stat) => {
                // f_bavail, not f_bfree: what an unprivileged process may still write.
                let block = stat.f_frsize;
                gauge!(DISK_FREE, "dir" => *label).set(stat.f_bavail.saturating_mul(block) as f64);
                gauge!(DISK_SIZE, "dir" => *label).set(stat.f_blocks.saturating_mul(block) as f64);
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot sample free disk space")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_are_templates() {
        assert_eq!(route_label(Some("/v1/transfers/:id")), "/v1/transfers/{id}");
        assert_eq!(
            route_label(Some("/v1/public/transfers/:id/files/:file")),
            "/v1/public/transfers/{id}/files/{file}"
        );
        assert_eq!(route_label(Some("/v1/kv/:key<.+>")), "/v1/kv/{key}");
        assert_eq!(route_label(Some("/assets/*path")), "/assets/*");
        assert_eq!(route_label(Some("/health")), "/health");
        assert_eq!(route_label(Some("/")), "/");
        assert_eq!(route_label(None), UNMATCHED_ROUTE);
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&poem::http::Method::PATCH), "PATCH");
        let custom = poem::http::Method::from_bytes(b"SECRETTOKEN").unwrap();
        assert_eq!(method_label(&custom), "other");
    }
}
