//! One webhook delivery attempt over HTTP (SPEC §7): the headers and payload of Standard
//! Webhooks 1.0 plus the legacy sealbox headers, and a client that can only reach targets
//! the SSRF policy allows.
//!
//! The client is built once ([`WebhookSender::new`]) and shared by every delivery:
//!
//! - redirects are not followed (a `3xx` is a failed attempt): a redirect would send the
//!   signed payload to a URL nobody checked;
//! - no proxy, not even from `HTTP_PROXY`: a proxy resolves names itself, out of reach of
//!   the checks below;
//! - names are resolved by [`CheckedResolver`], which checks every address a name
//!   resolves to and refuses the whole host if any is forbidden (a name that also points
//!   at `127.0.0.1` is not a webhook target, whichever address happens to be tried first).
//!   It returns only the addresses it checked, so the connection goes to a checked address
//!   and a second DNS answer (rebinding) never gets a say;
//! - hosts that are address literals never reach a resolver, so [`WebhookSender::send`]
//!   checks the URL itself before anything is sent;
//! - TLS is rustls on ring with the system's CA store (`rustls-native-certs`, which honours
//!   `SSL_CERT_FILE`/`SSL_CERT_DIR`), as for mail: no OpenSSL in the binary;
//! - every attempt is bounded by `webhooks.timeout_secs`, from connecting to the end of
//!   what is read of the response, and reads at most [`RESPONSE_PREFIX_LEN`] bytes of body.
//!
//! The caller (the delivery loop) takes the payload the queue stored at fan-out
//! (`service::webhooks::payload`), builds the headers with [`delivery_headers`], sends,
//! and records the [`AttemptOutcome`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::WebhooksConfig;
use crate::crypto::webhook_signature::{WebhookSecret, legacy_signature_header, signature_header};
use crate::service::webhook_targets::{TargetError, TargetPolicy};

// Header names, lower case as HTTP/2 requires (HTTP/1 names are case-insensitive).

/// Standard Webhooks: the message id, stable across retries and replays.
pub const WEBHOOK_ID: &str = "webhook-id";
/// Standard Webhooks: unix seconds of this attempt.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks: `v1,<base64>` signatures, space-separated during a rotation.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// Legacy: `t=<ts>,v1=<hex>` (one `v1` per secret during a rotation).
pub const SEALBOX_SIGNATURE: &str = "x-sealbox-signature";
/// Legacy: the event id (the same value as `webhook-id`).
pub const SEALBOX_EVENT_ID: &str = "x-sealbox-event-id";
/// Legacy: the event type.
pub const SEALBOX_EVENT_TYPE: &str = "x-sealbox-event-type";
/// `true` on deliveries made by `POST /v1/webhooks/{id}/test`; absent otherwise.
pub const SEALBOX_TEST_DELIVERY: &str = "x-sealbox-test-delivery";
/// How much of a response body is kept (and read) for the deliveries listing.
pub const RESPONSE_PREFIX_LEN: usize = crate::service::webhook_queue::RESPONSE_BODY_PREFIX;
/// The `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("sealbox-webhooks/", env!("CARGO_PKG_VERSION"));

/// The headers of one attempt. `msg_id` is the event's id (`webhook-id` and
/// `X-Sealbox-Event-Id`), `timestamp` the unix seconds of this attempt, `body` the exact
/// bytes that will be sent, and `secrets` the webhook's current secret followed, during a
/// rotation's grace window, by the previous one. `is_test` adds
/// `X-Sealbox-Test-Delivery: true`.
///
/// # Panics
/// If `secrets` is empty: a delivery is always signed, and the webhook always has a
/// current secret, so an empty list is a bug in the caller, not a reason to send unsigned.
pub fn delivery_headers(
    msg_id: &str,
    event_type: &str,
    timestamp: i64,
    body: &[u8],
    secrets: &[&WebhookSecret],
    is_test: bool,
) -> Vec<(HeaderName, String)> {
    assert!(
        !secrets.is_empty(),
        "a webhook delivery is always signed with the webhook's current secret"
    );
    let name = HeaderName::from_static;
    let mut headers = vec![
        (name(WEBHOOK_ID), msg_id.to_owned()),
        (name(WEBHOOK_TIMESTAMP), timestamp.to_string()),
        (
            name(WEBHOOK_SIGNATURE),
            signature_header(secrets, msg_id, timestamp, body),
        ),
        (
            name(SEALBOX_SIGNATURE),
            legacy_signature_header(secrets, timestamp, body),
        ),
        (name(SEALBOX_EVENT_ID), msg_id.to_owned()),
        (name(SEALBOX_EVENT_TYPE), event_type.to_owned()),
        (reqwest::header::CONTENT_TYPE, "application/json".to_owned()),
        (reqwest::header::USER_AGENT, USER_AGENT.to_owned()),
    ];
    if is_test {
        headers.push((name(SEALBOX_TEST_DELIVERY), "true".to_owned()));
    }
    headers
}

/// One attempt to send: where, what, and with which headers.
#[derive(Clone)]
pub struct Attempt {
    pub url: String,
    pub body: bytes::Bytes,
    pub headers: Vec<(HeaderName, String)>,
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a token and the headers carry signatures: show neither.
        f.debug_struct("Attempt")
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// What an attempt means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// A `2xx` answer: delivered.
    Success,
    /// `410 Gone`: the receiver says the endpoint is gone for good; disable the webhook.
    Gone,
    /// Anything else (other statuses, `3xx` included, refused targets, connection errors,
    /// timeouts): try again later, per the retry schedule.
    Retry,
}

/// What happened on one attempt, for the deliveries listing and the retry decision.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    /// The response status, if a response arrived.
    pub status: Option<u16>,
    /// From the start of the attempt to the end of reading the body prefix.
    pub duration: Duration,
    /// The first [`RESPONSE_PREFIX_LEN`] bytes of the response body, as lossy UTF-8.
    pub response_body_prefix: String,
    /// The response's `Retry-After` (seconds or an HTTP date), if any.
    pub retry_after: Option<Duration>,
    /// Why the attempt failed without a usable response (refused target, DNS, connect,
    /// TLS, timeout), or what a `3xx` means. Never contains the URL's path or query, nor a
    /// header value.
    pub error: Option<String>,
    pub classification: Classification,
}

impl AttemptOutcome {
    fn failed(started: Instant, error: String) -> Self {
        Self {
            status: None,
            duration: started.elapsed(),
            response_body_prefix: String::new(),
            retry_after: None,
            error: Some(error),
            classification: Classification::Retry,
        }
    }
}

/// Why the HTTP client could not be built (for example, an unreadable CA store).
#[derive(Debug, thiserror::Error)]
#[error("the webhook HTTP client could not be built: {0}")]
pub struct SenderError(#[from] reqwest::Error);

/// Sends webhook deliveries. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    policy: Arc<TargetPolicy>,
    timeout: Duration,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookSender {
    /// A sender for `[webhooks]`: its allowed networks and timeout.
    pub fn from_config(config: &WebhooksConfig) -> Result<Self, SenderError> {
        Self::new(
            TargetPolicy::new(config.allowed_networks()),
            config.timeout(),
        )
    }

    /// A sender that reaches only what `policy` allows, each attempt bounded by `timeout`.
    pub fn new(policy: TargetPolicy, timeout: Duration) -> Result<Self, SenderError> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .dns_resolver(Arc::new(CheckedResolver {
                policy: policy.clone(),
            }))
            .build()?;
        Ok(Self {
            client,
            policy,
            timeout,
        })
    }

    /// The policy this sender enforces (the same one the API checks URLs with).
    pub fn policy(&self) -> &TargetPolicy {
        &self.policy
    }

    /// Makes one attempt. Never fails: every problem is an outcome to record.
    pub async fn send(&self, attempt: Attempt) -> AttemptOutcome {
        let started = Instant::now();
        // Address literals bypass the resolver, so they are checked here; names are
        // checked by the resolver, address by address.
        let target = match self.policy.check_url(&attempt.url) {
            Ok(target) => target,
            Err(refused) => return AttemptOutcome::failed(started, format!("refused: {refused}")),
        };
        let mut headers = HeaderMap::with_capacity(attempt.headers.len());
        for (name, value) in &attempt.headers {
            match HeaderValue::from_str(value) {
                Ok(value) => {
                    headers.append(name.clone(), value);
                }
                Err(_) => {
                    return AttemptOutcome::failed(
                        started,
                        format!("the {name} header has characters a header cannot carry"),
                    );
                }
            }
        }
        let sent = self
            .client
            .post(target.into_url())
            .headers(headers)
            .body(attempt.body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return AttemptOutcome::failed(started, self.describe(error)),
        };

        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let mut prefix = Vec::new();
        let mut body_error = None;
        while prefix.len() < RESPONSE_PREFIX_LEN {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let wanted = (RESPONSE_PREFIX_LEN - prefix.len()).min(chunk.len());
                    prefix.extend_from_slice(&chunk[..wanted]);
                }
                Ok(None) => break,
                Err(error) => {
                    body_error = Some(format!("reading the response: {}", self.describe(error)));
                    break;
                }
            }
        }
        // Dropping the response here closes the connection if the body was longer.
        drop(response);

        let classification = if status.is_success() {
            Classification::Success
        } else if status == reqwest::StatusCode::GONE {
            Classification::Gone
        } else {
            Classification::Retry
        };
        let error = if status.is_redirection() {
            Some(format!(
                "answered {status}, a redirect; redirects are not followed, so point the \
                 webhook at the final URL"
            ))
        } else {
            body_error
        };
        AttemptOutcome {
            status: Some(status.as_u16()),
            duration: started.elapsed(),
            response_body_prefix: String::from_utf8_lossy(&prefix).into_owned(),
            retry_after,
            error,
            classification,
        }
    }

    /// A failure in words, without the URL: the refusal if the resolver refused the host,
    /// else the timeout, else the chain of causes (connection refused, TLS, ...).
    fn describe(&self, error: reqwest::Error) -> String {
        let error = error.without_url();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(cause) = source {
            if let Some(refused) = cause.downcast_ref::<RefusedHost>() {
                return format!("refused: {refused}");
            }
            source = cause.source();
        }
        if error.is_timeout() {
            return format!("timed out after {} s", self.timeout.as_secs_f64());
        }
        let mut parts: Vec<String> = Vec::new();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !parts.iter().any(|part| part.contains(&text)) {
                parts.push(text);
            }
            source = cause.source();
        }
        parts.join(": ")
    }
}

/// A host name refused because one of its addresses is not a webhook target.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to a forbidden address: {reason}")]
pub struct RefusedHost {
    pub host: String,
    pub reason: TargetError,
}

/// Why a host name could not be resolved to addresses to connect to.
#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} has no addresses")]
    NoAddresses { host: String },
}

/// The DNS resolver of the webhook client: resolves with the system resolver (through
/// tokio), then lets [`check_resolved`] decide.
#[derive(Debug)]
pub struct CheckedResolver {
    policy: Arc<TargetPolicy>,
}

impl CheckedResolver {
    pub fn new(policy: Arc<TargetPolicy>) -> Self {
        Self { policy }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|source| ResolveError::Lookup {
                    host: host.clone(),
                    source,
                })?
                .collect();
            if resolved.is_empty() {
                return Err(ResolveError::NoAddresses { host }.into());
            }
            let checked = check_resolved(&policy, &host, resolved)?;
            Ok::<Addrs, BoxError>(Box::new(checked.into_iter()))
        })
    }
}

/// The addresses `host` resolved to, if every one of them is a webhook target; otherwise
/// the first refusal. All or nothing: a name is one target, and which of its addresses a
/// connection would use is not ours to predict.
pub fn check_resolved(
    policy: &TargetPolicy,
    host: &str,
    resolved: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, RefusedHost> {
    for address in &resolved {
        policy
            .check_ip(address.ip())
            .map_err(|reason| RefusedHost {
                host: host.to_owned(),
                reason,
            })?;
    }
    Ok(resolved)
}

/// Parses a `Retry-After` value: delta-seconds (`120`) or an HTTP date (`Wed, 21 Oct 2015
/// 07:28:00 GMT`, relative to `now`; a date in the past means no wait). Anything else is
/// ignored. Not clamped here: `worker::retry` decides how much of it to honour.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to fit is simply "very long"; retry clamps it.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;
    use crate::crypto::webhook_signature::{verify_legacy, verify_standard};

    /// A real HTTP server on 127.0.0.1 that answers every connection with `response`
    /// (raw bytes) and reports each request it read (head and body) on the channel.
    /// `None` as response: read the request, then never answer.
    async fn receiver(response: Option<Vec<u8>>) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (tx, response) = (tx.clone(), response.clone());
                tokio::spawn(async move {
                    let request = read_request(&mut stream).await;
                    let _ = tx.send(request);
                    match response {
                        Some(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                            let _ = stream.shutdown().await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        (address, rx)
    }

    /// Reads one HTTP/1.1 request with a Content-Length body.
    async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    break;
                }
            }
        }
        String::from_utf8_lossy(&data).into_owned()
    }

    fn response(status: &str, extra_headers: &str, body: &str) -> Option<Vec<u8>> {
        Some(
            format!(
                "HTTP/1.1 {status}\r\n{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }

    fn loopback_allowed() -> TargetPolicy {
        TargetPolicy::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ])
    }

    fn sender(policy: TargetPolicy, timeout: Duration) -> WebhookSender {
        WebhookSender::new(policy, timeout).unwrap()
    }

    fn new_attempt(url: String) -> (Attempt, WebhookSecret) {
        let secret = WebhookSecret::generate();
        let body = crate::service::webhooks::payload(
            "file.uploaded",
            "2026-11-24T18:30:00.000Z",
            &serde_json::json!({"fileId": "f1"}),
        )
        .into_bytes();
        let headers = delivery_headers(
            "evt_1",
            "file.uploaded",
            1_764_009_000,
            &body,
            &[&secret],
            false,
        );
        (
            Attempt {
                url,
                body: body.into(),
                headers,
            },
            secret,
        )
    }

    fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
        request.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    #[tokio::test]
    async fn a_2xx_is_a_success_and_the_receiver_gets_a_verifiable_delivery() {
        let (address, mut requests) = receiver(response("204 No Content", "", "")).await;
        let (attempt, secret) = new_attempt(format!("http://{address}/hooks/in?token=abc"));
        let body = attempt.body.clone();
        let outcome = sender(loopback_allowed(), Duration::from_secs(5))
            .send(attempt)
            .await;
        assert_eq!(outcome.status, Some(204), "{outcome:?}");
        assert_eq!(outcome.classification, Classification::Success);
        assert_eq!(outcome.error, None);

        let request = requests.recv().await.unwrap();
        assert!(
            request.starts_with("POST /hooks/in?token=abc HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.ends_with(std::str::from_utf8(&body).unwrap()));
        assert_eq!(header(&request, "webhook-id"), Some("evt_1"));
        assert_eq!(header(&request, "webhook-timestamp"), Some("1764009000"));
        assert_eq!(header(&request, "x-sealbox-event-id"), Some("evt_1"));
        assert_eq!(
            header(&request, "x-sealbox-event-type"),
            Some("file.uploaded")
        );
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        assert_eq!(header(&request, "user-agent"), Some(USER_AGENT));
        assert_eq!(header(&request, "x-sealbox-test-delivery"), None);
        let signature = header(&request, "webhook-signature").unwrap();
        assert!(verify_standard(
            &secret,
            signature,
            "evt_1",
            1_764_009_000,
            &body
        ));
        let legacy = header(&request, "x-sealbox-signature").unwrap();
        assert_eq!(verify_legacy(&secret, legacy, &body), Some(1_764_009_000));
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"type":"file.uploaded","timestamp":"2026-11-24T18:30:00.000Z","data":{"fileId":"f1"}}"#
        );
    }

    #[test]
    fn test_deliveries_say_so_and_rotation_sends_both_signatures() {
        let (new, old) = (WebhookSecret::generate(), WebhookSecret::generate());
        let headers = delivery_headers("evt_2", "ping", 1_764_009_000, b"{}", &[&new, &old], true);
        let value = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(value(SEALBOX_TEST_DELIVERY), Some("true"));
        let signature = value(WEBHOOK_SIGNATURE).unwrap();
        assert_eq!(signature.split(' ').count(), 2);
        for secret in [&new, &old] {
            assert!(verify_standard(
                secret,
                signature,
                "evt_2",
                1_764_009_000,
                b"{}"
            ));
            assert!(verify_legacy(secret, value(SEALBOX_SIGNATURE).unwrap(), b"{}").is_some());
        }
        assert_eq!(headers.len(), 9);
    }

    #[tokio::test]
    async fn a_410_means_gone() {
        let (address, _requests) = receiver(response("410 Gone", "", "no such hook")).await;
        let (attempt, _) = new_attempt(format!("http://{address}/"));
        let outcome = sender(loopback_allowed(), Duration::from_secs(5))
            .send(attempt)
            .await;
        assert_eq!(outcome.status, Some(410));
        assert_eq!(outcome.classification, Classification::Gone);
        assert_eq!(outcome.response_body_prefix, "no such hook");
    }

    #[tokio::test]
    async fn a_500_is_retried_and_its_retry_after_is_read() {
        let (address, _requests) = receiver(response(
            "503 Service Unavailable",
            "Retry-After: 120\r\n",
            "busy",
        ))
        .await;
        let (attempt, _) = new_attempt(format!("http://{address}/"));
        let outcome = sender(loopback_allowed(), Duration::from_secs(5))
            .send(attempt)
            .await;
        assert_eq!(outcome.status, Some(503));
        assert_eq!(outcome.classification, Classification::Retry);
        assert_eq!(outcome.retry_after, Some(Duration::from_secs(120)));
        assert_eq!(outcome.response_body_prefix, "busy");
        assert_eq!(outcome.error, None);

        let (address, _requests) = receiver(response("500 Internal Server Error", "", "")).await;
        let (attempt, _) = new_attempt(format!("http://{address}/"));
        let outcome = sender(loopback_allowed(), Duration::from_secs(5))
            .send(attempt)
            .await;
        assert_eq!(outcome.status, Some(500));
        assert_eq!(outcome.classification, Classification::Retry);
        assert_eq!(outcome.retry_after, None);
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (target, mut followed) = receiver(response("200 OK", "", "")).await;
        let (address, _requests) = receiver(response(
            "302 Found",
            &format!("Location: http://{target}/elsewhere\r\n"),
            "",
        ))
        .await;
        let (attempt, _) = new_attempt(format!("http://{address}/"));
        let outcome = sender(loopback_allowed(), Duration::from_secs(5))
            .send(attempt)
            .await;
        assert_eq!(outcome.status, Some(302));
        assert_eq!(outcome.classification, Classification::Retry);
        assert!(
            outcome
                .error
                .as_deref()
                .unwrap()
                .contains("redirects are not followed")
        );
        assert!(followed.try_recv().is_err(), "the redirect was followed");
    }

    #[tokio::test]
    async fn a_receiver_that_never_answers_times_out() {
        let (address, _requests) = receiver(None).await;
        let (attempt, _) = new_attempt(format!("http://{address}/"));
        let started = Instant::now();
        let outcome = sender(loopback_allowed(), Duration::from_millis(300))
            .send(attempt)
            .await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(outcome.status, None);
        assert_eq!(outcome.classification, Classification::Retry);
        assert!(
            outcome.error.as_deref().unwrap().contains("timed out"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn only_the_first_4_kib_of_a_body_are_kept() {
        let big = "x".repeat(100_000);
        let (address, _requests) = receiver(response("200 OK", "", &big)).await;
        let (attempt, _) = new_attempt(format!("http://{address}/"));
        let outcome = sender(loopback_allowed(), Duration::from_secs(5))
            .send(attempt)
            .await;
        assert_eq!(outcome.classification, Classification::Success);
        assert_eq!(outcome.response_body_prefix.len(), RESPONSE_PREFIX_LEN);
    }

    #[tokio::test]
    async fn loopback_targets_are_refused_unless_allowed() {
        let (address, mut requests) = receiver(response("200 OK", "", "")).await;
        let strict = sender(TargetPolicy::default(), Duration::from_secs(5));
        for url in [
            format!("http://{address}/"),
            format!("http://localhost:{}/", address.port()),
        ] {
            let (attempt, _) = new_attempt(url.clone());
            let outcome = strict.send(attempt).await;
            assert_eq!(outcome.status, None, "{url}");
            assert_eq!(outcome.classification, Classification::Retry);
            let error = outcome.error.unwrap();
            assert!(error.starts_with("refused: "), "{url}: {error}");
            assert!(error.contains("loopback"), "{url}: {error}");
        }
        assert!(
            requests.try_recv().is_err(),
            "a refused target was contacted"
        );

        let allowing = sender(loopback_allowed(), Duration::from_secs(5));
        for url in [
            format!("http://{address}/"),
            format!("http://localhost:{}/", address.port()),
        ] {
            let (attempt, _) = new_attempt(url.clone());
            let outcome = allowing.send(attempt).await;
            assert_eq!(
                outcome.classification,
                Classification::Success,
                "{url}: {outcome:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_metadata_service_is_refused_even_when_its_network_is_allowed() {
        let everything = sender(
            TargetPolicy::new(vec!["0.0.0.0/0".parse().unwrap()]),
            Duration::from_secs(5),
        );
        let (attempt, _) = new_attempt("http://169.254.169.254/latest/meta-data/".into());
        let outcome = everything.send(attempt).await;
        let error = outcome.error.unwrap();
        assert!(error.contains("cloud metadata"), "{error}");
        assert!(!error.contains("latest/meta-data"), "{error}");
    }

    #[test]
    fn a_name_is_refused_if_any_of_its_addresses_is() {
        let policy = TargetPolicy::default();
        let public = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14)), 0);
        let private = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)), 0);
        assert_eq!(
            check_resolved(&policy, "ok.example", vec![public]).unwrap(),
            vec![public]
        );
        let refused = check_resolved(&policy, "rebind.example", vec![public, private]).unwrap_err();
        assert_eq!(refused.host, "rebind.example");
        assert!(
            refused.to_string().starts_with(
                "rebind.example resolves to a forbidden address: 10.0.0.7 is a private address"
            ),
            "{refused}"
        );
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Tue, 24 Nov 2026 18:00:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 18:05:00 GMT", now),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 17:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for junk in ["", "-5", "1.5", "soon", "Tue, 24 Nov 2026"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk}");
        }
    }
}
