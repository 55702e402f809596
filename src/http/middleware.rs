//! Middleware that applies SPEC §3 to every route.
//!
//! [`Conventions`] is the outermost layer: it assigns the request id, logs the request,
//! turns every error into the JSON envelope and stamps the common headers.
//! [`JsonBodyLimit`] guards the JSON API against oversized bodies, declared or chunked.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response, Result};
use tracing::Instrument;

use super::allow::AllowIndex;
use super::error::{ApiError, error_response};
use super::request_id::{REQUEST_ID_HEADER, RequestId};

/// Date-based version of the HTTP API, sent on every response.
pub const API_VERSION: &str = "2026-11-22";
pub const API_VERSION_HEADER: &str = "x-sealbox-api-version";
/// Applied when a route did not choose its own policy: nothing may load or frame.
const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Request id, envelope for every error, common headers, one log line per request.
pub struct Conventions {
    /// Methods per route, for the `Allow` header of 405 answers.
    pub allow: Arc<AllowIndex>,
}

impl<E: Endpoint> Middleware<E> for Conventions {
    type Output = ConventionsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ConventionsEndpoint {
            inner,
            allow: self.allow.clone(),
        }
    }
}

pub struct ConventionsEndpoint<E> {
    inner: E,
    allow: Arc<AllowIndex>,
}

impl<E: Endpoint> Endpoint for ConventionsEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let request_id = RequestId::from_headers(req.headers());
        req.extensions_mut().insert(request_id.clone());
        let span = tracing::info_span!(
            "request",
            id = %request_id,
            method = %req.method(),
            // The path only (query strings may carry tokens), with capability tokens in
            // upload and download URLs masked.
            path = %loggable_path(req.uri().path()),
        );
        let started = Instant::now();
        let path = req.uri().path().to_owned();

        let handled = async {
            match self.inner.call(req).await {
                Ok(output) => output.into_response(),
                Err(err) => error_response(err),
            }
        };
        let mut response = request_id
            .clone()
            .scope(handled.instrument(span.clone()))
            .await;

        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = self
                .allow
                .allow_for(&path)
                .and_then(|a| HeaderValue::from_str(a).ok())
        {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        let headers = response.headers_mut();
        // A replayed idempotent response already carries the id of the request that
        // produced it, matching the `requestId` in its body.
        if !headers.contains_key(REQUEST_ID_HEADER)
            && let Ok(value) = HeaderValue::from_str(request_id.as_str())
        {
            headers.insert(REQUEST_ID_HEADER, value);
        }
        headers.insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(DEFAULT_CSP));

        span.in_scope(|| {
            tracing::info!(
                status = response.status().as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "handled"
            );
        });
        Ok(response)
    }
}

/// Path prefixes whose next segment is a secret, and the one literal route (if any) that
/// can take that segment's place (`/v1/kv/shared` lists shares: no key is named `shared`).
/// Upload and download tokens are bearer capabilities, a KV key's name is the caller's
/// data, and a public transfer's id is its link's secret.
const SECRET_SEGMENTS: [(&str, Option<&str>); 6] = [
    (super::files::UPLOADS_PATH, None),
    (super::files::DOWNLOADS_PATH, None),
    (super::transfers::TRANSFER_UPLOADS_PATH, None),
    (super::transfers::PUBLIC_TRANSFERS_PATH, None),
    ("/v1/kv", Some("shared")),
    ("/t", None),
];

/// `path` as the request log shows it: the secret segment of a [`SECRET_SEGMENTS`] route
/// replaced by `[redacted]`. What follows it is kept only while it is plainly not secret
/// (lowercase words such as `shares`, and ids): anything else is redacted too.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for (prefix, literal) in SECRET_SEGMENTS {
        let Some(rest) = path.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        let (secret, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if secret.is_empty() || literal == Some(secret) {
            return path.into();
        }
        let tail_is_plain = tail.split('/').all(|segment| {
            segment.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                || uuid::Uuid::try_parse(segment).is_ok()
        });
        return if tail.is_empty() {
            format!("{prefix}/[redacted]").into()
        } else if tail_is_plain {
            format!("{prefix}/[redacted]/{tail}").into()
        } else {
            format!("{prefix}/[redacted]/[redacted]").into()
        };
    }
    path.into()
}

/// Refuses JSON API bodies over `limit` bytes with 413: at once when `Content-Length`
/// says so, otherwise while reading a chunked body (which is then handed on in memory,
/// bounded by the same limit). Routes whose JSON carries a base64 payload with its own
/// limit (a KV value) get a larger one from `larger`: (path prefix, limit).
#[derive(Clone)]
pub struct JsonBodyLimit {
    pub limit: u64,
    pub larger: Arc<Vec<(&'static str, u64)>>,
}

impl JsonBodyLimit {
    fn limit_for(&self, path: &str) -> u64 {
        self.larger
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .map_or(self.limit, |(_, limit)| (*limit).max(self.limit))
    }
}

impl<E: Endpoint> Middleware<E> for JsonBodyLimit {
    type Output = JsonBodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        JsonBodyLimitEndpoint {
            inner,
            limits: self.clone(),
        }
    }
}

pub struct JsonBodyLimitEndpoint<E> {
    inner: E,
    limits: JsonBodyLimit,
}

impl<E: Endpoint> Endpoint for JsonBodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return self.inner.call(req).await;
        }
        let limit = self.limits.limit_for(req.uri().path());
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(length) if length > limit => {
                return Err(ApiError::payload_too_large(limit).into());
            }
            // hyper enforces a declared length, so the body cannot grow past it.
            Some(_) => {}
            None => {
                let bytes = req
                    .take_body()
                    .into_bytes_limit(usize::try_from(limit).unwrap_or(usize::MAX))
                    .await
                    .map_err(|err| match err {
                        poem::error::ReadBodyError::PayloadTooLarge => {
                            ApiError::payload_too_large(limit)
                        }
                        other => {
                            ApiError::bad_request(format!("could not read request body: {other}"))
                        }
                    })?;
                req.set_body(Body::from(bytes));
            }
        }
        self.inner.call(req).await
    }
}

#[cfg(test)]
mod capability_tests {
    use super::loggable_path;

    #[test]
    fn capability_urls_are_masked_in_logs() {
        assert_eq!(
            loggable_path("/v1/uploads/abc123"),
            "/v1/uploads/[redacted]"
        );
        assert_eq!(
            loggable_path("/v1/downloads/x.y"),
            "/v1/downloads/[redacted]"
        );
        assert_eq!(
            loggable_path("/v1/transfer-uploads/tok"),
            "/v1/transfer-uploads/[redacted]"
        );
        assert_eq!(loggable_path("/v1/uploads"), "/v1/uploads");
        assert_eq!(loggable_path("/v1/uploads/"), "/v1/uploads/");
        assert_eq!(loggable_path("/v1/files/1"), "/v1/files/1");
    }

    #[test]
    fn kv_names_and_public_transfer_ids_are_masked_in_logs() {
        assert_eq!(
            loggable_path("/v1/kv/prod%20db%20password"),
            "/v1/kv/[redacted]"
        );
        let user = "0192f0a0-0000-7000-8000-0000000a11ce";
        assert_eq!(
            loggable_path(&format!("/v1/kv/stripe-key/shares/{user}")),
            format!("/v1/kv/[redacted]/shares/{user}")
        );
        // A name with a raw slash in it: the rest is not plainly harmless, so it goes too.
        assert_eq!(
            loggable_path("/v1/kv/team/Stripe_Live_Key"),
            "/v1/kv/[redacted]/[redacted]"
        );
        assert_eq!(loggable_path("/v1/kv"), "/v1/kv");
        assert_eq!(loggable_path("/v1/kv/shared"), "/v1/kv/shared");
        assert_eq!(
            loggable_path(&format!("/v1/kv/shared/{user}")),
            format!("/v1/kv/shared/{user}")
        );
        assert_eq!(loggable_path("/v1/kvx/a"), "/v1/kvx/a");
        assert_eq!(
            loggable_path(&format!("/v1/public/transfers/{user}/files/{user}")),
            format!("/v1/public/transfers/[redacted]/files/{user}")
        );
        assert_eq!(
            loggable_path(&format!("/v1/public/transfers/{user}/unlock")),
            "/v1/public/transfers/[redacted]/unlock"
        );
        assert_eq!(loggable_path(&format!("/t/{user}")), "/t/[redacted]");
        assert_eq!(loggable_path("/transfers"), "/transfers");
    }
}
