//! `GET /metrics`: the Prometheus text of [`crate::metrics`], on the main listener behind
//! `metrics.bearer_token`, or alone on the separate `metrics.listen` address.
//!
//! Not part of the OpenAPI document: it is not JSON, and whether (and where) it is served
//! depends on the configuration. Failures still answer with the error envelope.

use std::path::PathBuf;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Result, Route};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::allow::AllowIndex;
use super::error::{ApiError, code};
use super::middleware::{Conventions, RouteTemplates};
use crate::service::webhook_queue::DeliveryQueue;

pub const METRICS_PATH: &str = "/metrics";

/// The Prometheus text format's media type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The scrape endpoint. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    /// SHA-256 of the bearer token; `None` when none is configured (separate listener).
    token: Option<[u8; 32]>,
    queue: DeliveryQueue,
    /// The directories whose file systems' free space is sampled, by label.
    disks: Arc<Vec<(&'static str, PathBuf)>>,
}

impl Metrics {
    pub fn new(
        handle: PrometheusHandle,
        token: &str,
        queue: DeliveryQueue,
        disks: Vec<(&'static str, PathBuf)>,
    ) -> Self {
        Self {
            handle,
            token: (!token.is_empty()).then(|| Sha256::digest(token.as_bytes()).into()),
            queue,
            disks: Arc::new(disks),
        }
    }

    /// Whether the request carries the configured token (or none is configured). Digests
    /// compared in constant time: neither the token's bytes nor its length leak through
    /// timing.
    fn authorized(&self, req: &Request) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(presented) = presented else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest[..].ct_eq(&expected[..]).into()
    }

    /// Samples the gauges read from the database and the disks, then renders every series.
    async fn scrape(&self) -> String {
        match self.queue.pending_summary().await {
            Ok((depth, oldest)) => crate::metrics::webhook_queue(depth, oldest),
            // The series keep their last sample; the scrape still answers.
            Err(e) => tracing::warn!(error = %e, "cannot sample the webhook queue for metrics"),
        }
        let disks = self.disks.clone();
        if let Err(e) =
            tokio::task::spawn_blocking(move || crate::metrics::sample_disks(&disks)).await
        {
            tracing::warn!(error = %e, "cannot sample disk space for metrics");
        }
        self.handle.render()
    }
}

impl Endpoint for Metrics {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        if !self.authorized(&req) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                code::UNAUTHORIZED,
                "a valid metrics bearer token is required (Authorization: Bearer <token>)",
            )
            .into());
        }
        let text = self.scrape().await;
        let mut response = text.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }
}

/// The whole tree of the separate metrics listener: `/metrics` and nothing else, with the
/// same conventions (request ids, envelopes, the request log) as the main listener.
pub fn separate_routes(metrics: Metrics) -> impl Endpoint + use<> {
    let mut allow = AllowIndex::default();
    allow.add(METRICS_PATH, &["GET"]);
    Route::new()
        .at(METRICS_PATH, poem::get(metrics))
        .with(Conventions {
            allow: Arc::new(allow),
            templates: Arc::new(RouteTemplates::new([METRICS_PATH])),
        })
}
