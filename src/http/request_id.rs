//! Request ids: echoed from a sane inbound `X-Request-Id`, otherwise generated (UUIDv7),
//! and available to any code running for the request through a task-local, so an error
//! envelope built deep inside a handler carries the same id as the response header.

use std::fmt;

use poem::http::HeaderMap;

/// Response and request header that carries the id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

tokio::task_local! {
    static CURRENT: RequestId;
}

impl RequestId {
    /// Accepts an inbound id if it is 1-128 characters of `[A-Za-z0-9._:-]`; anything else
    /// (too long, spaces, control characters, non-ASCII) is replaced, so ids can be logged
    /// and echoed without injection.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        headers
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|value| Self::is_sane(value))
            .map(|value| Self(value.to_owned()))
            .unwrap_or_else(Self::generate)
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    fn is_sane(value: &str) -> bool {
        !value.is_empty()
            && value.len() <= MAX_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Runs `future` with this id as the current request id.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of the request being handled by this task, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT.try_with(|id| id.0.clone()).ok()
}
