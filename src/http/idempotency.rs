//! The `Idempotency-Key` header on POST and PATCH (SPEC §3), as middleware around the API.
//!
//! A request with a key is fingerprinted (method, path and query, `X-Organization-Id`,
//! body) and claimed for its principal before it runs. A retry gets the stored response
//! (status, headers with the first request's `X-Request-Id`, body) with
//! `Idempotent-Replayed: true`; the same key with a different request is 422; a retry
//! while the first still runs is 409. The first request runs in its own task, so a client
//! that hangs up cannot cut it short between its commit and the stored response.
//!
//! Keys need an authenticated caller (they are scoped to it); on a request that fails
//! authentication the header is ignored and the handler answers 401 as usual.

use std::sync::Arc;

use poem::http::{HeaderName, HeaderValue, Method, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response, Result};
use sha2::{Digest, Sha256};

use super::authn::{ORGANIZATION_HEADER, authenticate_once};
use super::error::{ApiError, code, error_response};
use super::request_id::{REQUEST_ID_HEADER, RequestId};
use crate::service::idempotency::{
    Begin, IdempotencyService, MAX_KEY_LEN, StoredResponse, principal_scope,
};

pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// Applies idempotency keys to the API routes.
pub struct Idempotency(pub IdempotencyService);

impl<E: Endpoint + 'static> Middleware<E> for Idempotency {
    type Output = IdempotentEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        IdempotentEndpoint {
            inner: Arc::new(inner),
            service: self.0.clone(),
        }
    }
}

pub struct IdempotentEndpoint<E> {
    inner: Arc<E>,
    service: IdempotencyService,
}

impl<E: Endpoint + 'static> Endpoint for IdempotentEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let Some(key) = idempotency_key(&req)? else {
            return Ok(respond(self.inner.call(req).await));
        };
        let Ok(principal) = authenticate_once(&mut req).await else {
            return Ok(respond(self.inner.call(req).await));
        };
        // The body limit middleware outside this one has already bounded the body.
        let body = req
            .take_body()
            .into_bytes()
            .await
            .map_err(|e| ApiError::bad_request(format!("could not read request body: {e}")))?;
        let fingerprint = fingerprint(&req, &body);
        req.set_body(Body::from(body));

        let scope = principal_scope(&principal);
        match self
            .service
            .begin(scope.clone(), key.clone(), fingerprint)
            .await
            .map_err(ApiError::from)?
        {
            Begin::Replay(stored) => Ok(replay(stored)),
            Begin::InFlight => Err(ApiError::new(
                StatusCode::CONFLICT,
                code::CONFLICT,
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            .into()),
            Begin::Mismatch => Err(ApiError::validation(
                "this Idempotency-Key was used with a different request (method, path or body); \
                 use a new key for a new request",
            )
            .with_detail(IDEMPOTENCY_KEY_HEADER, "already used for another request")
            .into()),
            Begin::Run => {
                let (inner, service) = (self.inner.clone(), self.service.clone());
                let request_id = req.extensions().get::<RequestId>().cloned();
                let first = tokio::spawn(async move {
                    let run = run_first(inner, service, scope, key, req);
                    match request_id {
                        Some(id) => id.scope(run).await,
                        None => run.await,
                    }
                });
                match first.await {
                    Ok(response) => Ok(response),
                    // The handler panicked: its transaction rolled back; CatchPanic-style
                    // answer, and the claim is freed so a retry runs again.
                    Err(_) => {
                        tracing::error!("an idempotent request's handler panicked");
                        Err(ApiError::internal().into())
                    }
                }
            }
        }
    }
}

/// Runs the request that claimed the key and stores (or, after a server error, frees) it.
async fn run_first<E: Endpoint>(
    inner: Arc<E>,
    service: IdempotencyService,
    scope: String,
    key: String,
    req: Request,
) -> Response {
    let guard = ReleaseOnDrop(Some((service.clone(), scope.clone(), key.clone())));
    let request_id = req.extensions().get::<RequestId>().cloned();
    let response = respond(inner.call(req).await);
    let status = response.status();
    let (parts, body) = response.into_parts();
    let body = match body.into_bytes().await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "could not read an idempotent response's body");
            return error_response(ApiError::internal().into());
        }
    };
    let storable = !status.is_server_error() && status != StatusCode::TOO_MANY_REQUESTS;
    if storable {
        let mut headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter(|(name, _)| *name != poem::http::header::CONTENT_LENGTH)
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        // Replays name the request that produced them, as their error bodies do.
        if let Some(id) = request_id {
            headers.push((REQUEST_ID_HEADER.to_owned(), id.as_str().to_owned()));
        }
        let stored = StoredResponse {
            status: status.as_u16(),
            headers,
            body: body.to_vec(),
        };
        match service.finish(scope, key, &stored).await {
            Ok(()) => guard.disarm(),
            Err(e) => tracing::error!(error = %e, "could not store an idempotent response"),
        }
    }
    Response::from_parts(parts, Body::from(body))
}

/// Frees a claim whose request did not store a response (a server error, a panic, a
/// failed store), so a retry runs again rather than waiting out the key.
struct ReleaseOnDrop(Option<(IdempotencyService, String, String)>);

impl ReleaseOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if let Some((service, scope, key)) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = service.release(scope, key).await {
                    tracing::warn!(error = %e, "could not free an idempotency key");
                }
            });
        }
    }
}

/// The request's idempotency key: only on POST and PATCH; 400 if it is not 1 to 255
/// visible ASCII characters.
fn idempotency_key(req: &Request) -> Result<Option<String>, ApiError> {
    if !matches!(*req.method(), Method::POST | Method::PATCH) {
        return Ok(None);
    }
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::bad_request("the Idempotency-Key header is invalid").with_detail(
                IDEMPOTENCY_KEY_HEADER,
                format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters, such as a UUID"),
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// SHA-256 over the parts of the request that decide what it does, each length-prefixed.
fn fingerprint(req: &Request, body: &[u8]) -> [u8; 32] {
    let org = req
        .headers()
        .get(ORGANIZATION_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let target = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let mut hasher = Sha256::new();
    for part in [
        req.method().as_str().as_bytes(),
        target.as_bytes(),
        org,
        body,
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
        .body(stored.body);
    let headers = response.headers_mut();
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

fn respond<T: IntoResponse>(outcome: Result<T>) -> Response {
    match outcome {
        Ok(output) => output.into_response(),
        Err(err) => error_response(err),
    }
}
