//! Middleware that applies SPEC §3 to every route.
//!
//! [`Conventions`] is the outermost layer: it assigns the request id, logs the request
//! (with its route template) and counts it in the metrics, turns every error into the
//! JSON envelope and stamps the common headers.
//! [`JsonBodyLimit`] guards the JSON API against oversized bodies, declared or chunked,
//! authenticating first so a stranger's body is never read past a few KiB.
//! [`BodyIdleTimeout`] fails request bodies that stop sending.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{
    Body, Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, Result, Route,
};
use tracing::Instrument;

use super::allow::AllowIndex;
use super::authn::authenticate_once;
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
    /// Every route's template, for the request log and the metrics.
    pub templates: Arc<RouteTemplates>,
}

impl<E: Endpoint> Middleware<E> for Conventions {
    type Output = ConventionsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ConventionsEndpoint {
            inner,
            allow: self.allow.clone(),
            templates: self.templates.clone(),
        }
    }
}

pub struct ConventionsEndpoint<E> {
    inner: E,
    allow: Arc<AllowIndex>,
    templates: Arc<RouteTemplates>,
}

/// Finds the route template a request path belongs to (`/v1/transfers/{id}`), for the
/// request log and the metrics: one index for every route of the tree, API operations,
/// byte routes and pages alike, consulted before the request is handled. So a request
/// that a middleware answers before its route runs (a rate-limit refusal, a body too
/// large, a replayed idempotent response) still carries its template.
///
/// The index is a poem [`Route`] of the same templates as the served tree, so it matches
/// exactly as the served one does (literal segments before parameters: `/v1/kv/shared`
/// is not `/v1/kv/{key}`).
pub struct RouteTemplates {
    matcher: Route,
}

impl RouteTemplates {
    /// Indexes `templates`, in OpenAPI (`/v1/files/{id}`) or poem (`/v1/files/:id`,
    /// `/assets/*path`) spelling; duplicates are indexed once.
    pub fn new<S: AsRef<str>>(templates: impl IntoIterator<Item = S>) -> Self {
        let unique: std::collections::BTreeSet<String> = templates
            .into_iter()
            .map(|t| openapi_to_poem(t.as_ref()))
            .collect();
        let mut matcher = Route::new();
        for template in unique {
            matcher = match matcher.try_at(&template, poem::endpoint::make_sync(|_| ())) {
                Ok(matcher) => matcher,
                Err(e) => panic!("route template {template} does not index: {e}"),
            };
        }
        Self { matcher }
    }

    /// The label of the route `path` belongs to: its template, or
    /// [`crate::metrics::UNMATCHED_ROUTE`].
    pub async fn label_of(&self, uri: &poem::http::Uri) -> String {
        let probe = Request::builder().uri(uri.clone()).finish();
        let pattern = match self.matcher.call(probe).await {
            Ok(response) => response.data::<PathPattern>().cloned(),
            Err(_) => None,
        };
        crate::metrics::route_label(pattern.as_ref().map(|p| &*p.0))
    }
}

/// `/v1/files/{id}` as poem writes it: `/v1/files/:id`; `/docs/*` as `/docs/*rest`.
fn openapi_to_poem(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                format!(":{name}")
            } else if segment == "*" {
                "*rest".to_owned()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl<E: Endpoint> Endpoint for ConventionsEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let request_id = RequestId::from_headers(req.headers());
        req.extensions_mut().insert(request_id.clone());
        let route = self.templates.label_of(req.uri()).await;
        let span = tracing::info_span!(
            "request",
            id = %request_id,
            method = %req.method(),
            // The path only (query strings may carry tokens), with capability tokens in
            // upload and download URLs masked.
            path = %loggable_path(req.uri().path()),
            // The template the path matched: what the metrics count it under.
            route = %route,
        );
        let started = Instant::now();
        let path = req.uri().path().to_owned();

        let method = crate::metrics::method_label(req.method());

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

        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        crate::metrics::request_handled(method, &route, status, elapsed);
        span.in_scope(|| {
            tracing::info!(status, elapsed_ms = elapsed.as_millis() as u64, "handled");
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

/// Bytes a request body may have while the request presents no valid credential: enough
/// for the public operations (setup, sign-in, registration, refresh, password reset, a
/// transfer's password), and all a stranger can make the server read before it refuses.
pub const UNAUTHENTICATED_BODY_BYTES: u64 = 8 * 1024;

/// Refuses JSON API bodies over their limit with 413: at once when `Content-Length` says
/// so, otherwise while reading a chunked body (which is then handed on in memory, bounded
/// by the same limit).
///
/// The request is authenticated first unless its declared length fits the small limit
/// (the principal is kept for the handler, so the credential is checked once). Without a
/// valid credential the limit is
/// [`UNAUTHENTICATED_BODY_BYTES`]; with one, `limit`, or for the exact operations in
/// `larger` (whose JSON carries a base64 payload with a limit of its own: a KV value, a
/// file sent whole) theirs.
#[derive(Clone)]
pub struct JsonBodyLimit {
    pub limit: u64,
    /// (method, path pattern with `:name` segments, limit).
    pub larger: Arc<Vec<(Method, &'static str, u64)>>,
    /// POST paths whose body is authenticated by a signature over it rather than by a
    /// credential (the inbound payment webhooks), and their limit, which applies whether
    /// or not a credential is presented.
    pub signed: Arc<Vec<(&'static str, u64)>>,
}

impl JsonBodyLimit {
    fn limit_for(&self, method: &Method, path: &str) -> u64 {
        self.larger
            .iter()
            .find(|(m, pattern, _)| m == method && path_matches(pattern, path))
            .map_or(self.limit, |(_, _, limit)| (*limit).max(self.limit))
    }
}

/// Whether `path` is an instance of `pattern`, whose `:name` segments match one segment.
fn path_matches(pattern: &str, path: &str) -> bool {
    let (mut pattern, mut path) = (pattern.split('/'), path.split('/'));
    loop {
        match (pattern.next(), path.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p.starts_with(':') && !s.is_empty() => {}
            (Some(p), Some(s)) if p == s => {}
            _ => return false,
        }
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
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared == Some(0) {
            return self.inner.call(req).await;
        }
        let signed = (*req.method() == Method::POST)
            .then(|| {
                self.limits
                    .signed
                    .iter()
                    .find(|(path, _)| *path == req.uri().path())
                    .map(|(_, limit)| *limit)
            })
            .flatten();
        let route_limit =
            signed.unwrap_or_else(|| self.limits.limit_for(req.method(), req.uri().path()));
        // A failed check is left for the handler to report (a public operation may be
        // called with a stale token); it only means the small limit applies. A body the
        // small limit admits anyway needs no check here: the handler authenticates if its
        // route wants a credential, so a public route never spends a use of a
        // limited-use key that happens to be sent along.
        let fits_unauthenticated = declared.is_some_and(|n| n <= UNAUTHENTICATED_BODY_BYTES);
        let auth = if signed.is_none() && !fits_unauthenticated && presents_credential(&req) {
            Some(authenticate_once(&mut req).await)
        } else {
            None
        };
        let authenticated = matches!(auth, Some(Ok(_)));
        let limit = if authenticated || signed.is_some() {
            route_limit
        } else {
            route_limit.min(UNAUTHENTICATED_BODY_BYTES)
        };
        let too_large = || {
            // A credential that failed is the real problem: say that, not the small limit
            // it brought about.
            if let Some(Err(auth_error)) = &auth {
                return auth_error.clone();
            }
            if limit < route_limit {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    super::error::code::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body exceeds the limit of {limit} bytes for a request without \
                         valid credentials; authenticate to send more"
                    ),
                )
            } else {
                ApiError::payload_too_large(limit)
            }
        };
        match declared {
            Some(length) if length > limit => return Err(too_large().into()),
            // hyper enforces a declared length, so the body cannot grow past it.
            Some(_) => {}
            None => {
                let bytes = req
                    .take_body()
                    .into_bytes_limit(usize::try_from(limit).unwrap_or(usize::MAX))
                    .await
                    .map_err(|err| match err {
                        poem::error::ReadBodyError::PayloadTooLarge => too_large(),
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

/// Whether the request carries a credential header at all (checking one costs a lookup).
fn presents_credential(req: &Request) -> bool {
    req.headers().contains_key(header::AUTHORIZATION)
        || req.headers().contains_key(super::authn::API_KEY_HEADER)
}

/// Fails a request body that sends nothing for `timeout` while the server waits for it,
/// so a stalled upload or JSON body cannot hold its connection and task forever. Idle
/// time, not total: the clock runs only while the handler waits for the next bytes, and
/// starts over with every chunk, so a slow upload that keeps sending is never cut off.
#[derive(Clone, Copy)]
pub struct BodyIdleTimeout(pub Duration);

impl<E: Endpoint> Middleware<E> for BodyIdleTimeout {
    type Output = BodyIdleTimeoutEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyIdleTimeoutEndpoint {
            inner,
            timeout: self.0,
        }
    }
}

pub struct BodyIdleTimeoutEndpoint<E> {
    inner: E,
    timeout: Duration,
}

impl<E: Endpoint> Endpoint for BodyIdleTimeoutEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
            || req
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        if has_body {
            let body = req.take_body().into_bytes_stream();
            req.set_body(Body::from_bytes_stream(IdleTimeout::new(
                Box::pin(body),
                self.timeout,
            )));
        }
        self.inner.call(req).await
    }
}

type BodyStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A body stream that fails with `TimedOut` after `timeout` without bytes while polled.
struct IdleTimeout {
    inner: Option<BodyStream>,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// Whether the clock is running: between asking for the next chunk and getting it.
    waiting: bool,
}

impl IdleTimeout {
    fn new(inner: BodyStream, timeout: Duration) -> Self {
        Self {
            inner: Some(inner),
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            waiting: false,
        }
    }
}

impl Stream for IdleTimeout {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if !this.waiting {
            let deadline = tokio::time::Instant::now() + this.timeout;
            this.sleep.as_mut().reset(deadline);
            this.waiting = true;
        }
        match inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                this.waiting = false;
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                this.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.inner = None;
                    tracing::info!(
                        idle_secs = this.timeout.as_secs(),
                        "request body stalled; giving up on it"
                    );
                    Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "the request body sent nothing for {} s",
                            this.timeout.as_secs()
                        ),
                    ))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod route_template_tests {
    use super::RouteTemplates;

    #[tokio::test]
    async fn paths_are_labelled_by_the_template_the_router_would_pick() {
        let templates = RouteTemplates::new([
            "/v1/kv/{key}",
            "/v1/kv/shared",
            "/v1/kv/{key}/shares/{recipientUserId}",
            "/v1/uploads/:token",
            "/assets/*path",
            "/docs/*",
            "/health",
            "/health",
        ]);
        let label = |path: &'static str| {
            let templates = &templates;
            async move {
                templates
                    .label_of(&poem::http::Uri::from_static(path))
                    .await
            }
        };
        assert_eq!(label("/v1/kv/shared").await, "/v1/kv/shared");
        assert_eq!(label("/v1/kv/prod-db").await, "/v1/kv/{key}");
        assert_eq!(
            label("/v1/kv/prod-db/shares/0192f0a0-0000-7000-8000-0000000a11ce").await,
            "/v1/kv/{key}/shares/{recipientUserId}"
        );
        assert_eq!(label("/v1/uploads/c2VjcmV0").await, "/v1/uploads/{token}");
        assert_eq!(label("/assets/js/app.js").await, "/assets/*");
        assert_eq!(label("/docs/index.css").await, "/docs/*");
        assert_eq!(label("/health?verbose=1").await, "/health");
        for unknown in [
            "/",
            "/v1",
            "/v1/kv",
            "/v1/kv/a/b",
            "/healthz",
            "/v1/uploads",
        ] {
            assert_eq!(label(unknown).await, "unmatched", "{unknown}");
        }
    }
}

#[cfg(test)]
mod capability_tests {
    use super::{loggable_path, path_matches};

    #[test]
    fn larger_limits_match_exact_routes_only() {
        assert!(path_matches("/v1/kv/:key", "/v1/kv/db-password"));
        assert!(path_matches("/v1/files", "/v1/files"));
        for other in [
            "/v1/kv/",
            "/v1/kv/a/b",
            "/v1/files/x",
            "/v1/filesx",
            "/v1/kv",
        ] {
            assert!(
                !path_matches("/v1/kv/:key", other) && !path_matches("/v1/files", other),
                "{other}"
            );
        }
    }

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
