//! The error envelope of SPEC §3 and the one place where failures become HTTP answers.
//!
//! `{"error": {"code", "message", "details": [{"path", "message"}], "requestId"}}`
//!
//! Handlers return [`ApiError`] for expected refusals. Anything else that escapes a handler
//! (poem's routing and parsing errors, panics, service failures) is classified by
//! [`error_response`]; server-side failures are logged with the request id and answered
//! with a generic `INTERNAL` body that reveals nothing about the cause.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};

use super::request_id::current_request_id;
use crate::service::ServiceError;
use crate::store::StoreError;

/// Stable machine-readable error codes (SPEC §3). Clients switch on these, never on text.
pub mod code {
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// The organization the call acts for is suspended (403).
    pub const ORG_SUSPENDED: &str = "ORG_SUSPENDED";
    /// The organization's plan does not include what the call needs (403, docs/billing.md).
    pub const PLAN_REQUIRED: &str = "PLAN_REQUIRED";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const CONFLICT: &str = "CONFLICT";
    pub const GONE: &str = "GONE";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    pub const VALIDATION: &str = "VALIDATION";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const QUOTA_EXCEEDED: &str = "QUOTA_EXCEEDED";
    pub const INTERNAL: &str = "INTERNAL";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
}

/// The message of every `INTERNAL` answer: the cause stays in the server log.
pub const INTERNAL_MESSAGE: &str =
    "the server failed to handle this request; quote the request id when reporting it";

/// One field-level problem.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct ErrorDetail {
    /// Where in the request the problem is (a JSON path such as `members[0].email`, or a
    /// parameter name).
    pub path: String,
    pub message: String,
}

/// The body of every error response.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Stable machine-readable code, such as `NOT_FOUND` or `VALIDATION`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    pub details: Vec<ErrorDetail>,
    /// The `X-Request-Id` of the request, for support and log correlation.
    pub request_id: String,
}

/// `{"error": {...}}`.
#[derive(Debug, Clone, Object)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// An error answer: status, code, message and optional details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<ErrorDetail>,
    /// Seconds the client should wait, sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// A plan's daily quota, sent as the `X-Quota-*` headers.
    pub quota: Option<crate::service::plans::Quota>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
            quota: None,
        }
    }

    /// Sets `Retry-After`, rounded up to whole seconds (at least 1).
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn with_detail(mut self, path: impl Into<String>, message: impl Into<String>) -> Self {
        self.details.push(ErrorDetail {
            path: path.into(),
            message: message.into(),
        });
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code::NOT_FOUND, message)
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code::VALIDATION, message)
    }
    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::PAYLOAD_TOO_LARGE,
            format!("request body exceeds the limit of {limit} bytes"),
        )
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, message)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            INTERNAL_MESSAGE,
        )
    }

    /// The envelope for this error, stamped with the current request id.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message.clone(),
                details: self.details.clone(),
                request_id: current_request_id().unwrap_or_default(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let mut response = poem_openapi::payload::Json(self.envelope()).into_response();
        response.set_status(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                poem::http::header::WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static("Bearer realm=\"sealbox\""),
            );
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(poem::http::header::RETRY_AFTER, secs.into());
        }
        if let Some(quota) = &self.quota {
            super::plans::set_quota_headers(response.headers_mut(), quota);
        }
        response
    }
}

/// Statuses an operation may answer with the envelope, for the OpenAPI document.
const DOCUMENTED_ERRORS: &[(u16, &str)] = &[
    (400, "Malformed request"),
    (401, "Missing, invalid, expired or revoked credentials"),
    (403, "Not permitted"),
    (404, "Not found"),
    (409, "Conflicts with the current state"),
    (413, "Request body too large"),
    (415, "Unsupported content type"),
    (422, "Validation failed"),
    (429, "Rate limited"),
    (500, "Internal error"),
    (503, "Temporarily unavailable"),
    (507, "The server's disk is full"),
];

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: DOCUMENTED_ERRORS
                .iter()
                .map(|&(status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: ErrorEnvelope::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ErrorEnvelope::register(registry);
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Unauthorized(why) => {
                ApiError::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, why)
            }
            ServiceError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            ServiceError::Forbidden(why) => {
                ApiError::new(StatusCode::FORBIDDEN, code::FORBIDDEN, why)
            }
            ServiceError::OrgSuspended => ApiError::new(
                StatusCode::FORBIDDEN,
                code::ORG_SUSPENDED,
                "the organization is suspended; only its owners and instance admins can unsuspend it",
            ),
            ServiceError::Conflict(why) => ApiError::new(StatusCode::CONFLICT, code::CONFLICT, why),
            ServiceError::Invalid(problems) => problems
                .into_iter()
                .fold(ApiError::validation("the request is invalid"), |e, p| {
                    e.with_detail(p.path, p.message)
                }),
            ServiceError::BadRequest(why) => ApiError::bad_request(why),
            ServiceError::TooLarge(limit) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::PAYLOAD_TOO_LARGE,
                format!("larger than the limit of {limit} bytes"),
            ),
            ServiceError::QuotaExceeded(why) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code::QUOTA_EXCEEDED, why)
            }
            ServiceError::DiskFull => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                code::QUOTA_EXCEEDED,
                "the server's disk is full: the request was not completed and left nothing half-written; retry once space is freed",
            ),
            ServiceError::ChecksumMismatch => ApiError::new(
                StatusCode::from_u16(460).expect("460 is a valid status"),
                code::BAD_REQUEST,
                "the body does not match Upload-Checksum; it was discarded",
            ),
            ServiceError::BudgetSpent { what, retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                code::RATE_LIMITED,
                format!("{what} is spent; retry after the delay"),
            )
            .with_retry_after(retry_after),
            ServiceError::PlanRequired(why) => {
                ApiError::new(StatusCode::FORBIDDEN, code::PLAN_REQUIRED, why)
            }
            ServiceError::DailyQuotaSpent { message, quota } => {
                let mut error =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, code::QUOTA_EXCEEDED, message)
                        .with_retry_after(quota.retry_after);
                error.quota = Some(quota);
                error
            }
            ServiceError::Gone(why) => ApiError::new(StatusCode::GONE, code::GONE, why),
            ServiceError::TooManyAttempts { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                code::RATE_LIMITED,
                "too many failed attempts; wait before trying again",
            )
            .with_retry_after(retry_after),
            ServiceError::Unavailable(what) => ApiError::unavailable(what),
            ServiceError::SignInRefused { code, message } => {
                ApiError::new(StatusCode::UNAUTHORIZED, code, message)
            }
            ServiceError::Overloaded { what, retry_after } => {
                ApiError::unavailable(what).with_retry_after(retry_after)
            }
            ServiceError::EnvelopeMismatch(coverage) => {
                let error = ApiError::new(
                    StatusCode::CONFLICT,
                    code::CONFLICT,
                    format!(
                        "the envelopes must cover exactly the chat's current devices: {} missing, \
                         {} extra (details: path `missing` or `extra`, message the device id)",
                        coverage.missing.len(),
                        coverage.extra.len()
                    ),
                );
                let error = coverage
                    .missing
                    .iter()
                    .fold(error, |e, id| e.with_detail("missing", id.to_string()));
                coverage
                    .extra
                    .iter()
                    .fold(error, |e, id| e.with_detail("extra", id.clone()))
            }
            ServiceError::Store(StoreError::Conflict) => ApiError::new(
                StatusCode::CONFLICT,
                code::CONFLICT,
                "this conflicts with an existing record",
            ),
            ServiceError::Store(inner) if inner.is_busy() => {
                tracing::warn!(error = %inner, "the database stayed locked past busy_timeout_ms");
                ApiError::unavailable("the database is busy; retry shortly")
                    .with_retry_after(std::time::Duration::from_secs(1))
            }
            ServiceError::Store(inner) => {
                tracing::error!(error = %inner, "storage failure");
                ApiError::internal()
            }
        }
    }
}

/// Turns any error that escaped a handler into an envelope response.
pub fn error_response(err: poem::Error) -> Response {
    use poem::error::{MethodNotAllowedError, NotFoundError};
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParseRequestPayloadError,
    };

    let api = if let Some(api) = err.downcast_ref::<ApiError>() {
        api.clone()
    } else if err.is::<NotFoundError>() {
        ApiError::not_found("no such route")
    } else if err.is::<MethodNotAllowedError>() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            code::METHOD_NOT_ALLOWED,
            "this method is not allowed on this route",
        )
    } else if err.is::<AuthorizationError>() {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            code::UNAUTHORIZED,
            "authentication required: send Authorization: Bearer <access token>",
        )
    } else if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::UNSUPPORTED_MEDIA_TYPE,
            e.to_string(),
        )
    } else if let Some(e) = err.downcast_ref::<ParseParamError>() {
        ApiError::bad_request(format!("invalid parameter `{}`", e.name))
            .with_detail(e.name, &e.reason)
    } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        ApiError::bad_request(format!("request body could not be parsed: {}", e.reason))
    } else {
        classify_status(&err)
    };
    if api.status.is_server_error() {
        tracing::error!(status = api.status.as_u16(), error = %err, "request failed");
    }
    poem::error::ResponseError::as_response(&api)
}

/// For errors we do not recognise by type, map the status; never echo a 5xx's text.
fn classify_status(err: &poem::Error) -> ApiError {
    let status = err.status();
    let code = match status {
        StatusCode::UNAUTHORIZED => code::UNAUTHORIZED,
        StatusCode::FORBIDDEN => code::FORBIDDEN,
        StatusCode::NOT_FOUND => code::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED => code::METHOD_NOT_ALLOWED,
        StatusCode::CONFLICT => code::CONFLICT,
        StatusCode::GONE => code::GONE,
        StatusCode::PAYLOAD_TOO_LARGE => code::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => code::UNSUPPORTED_MEDIA_TYPE,
        StatusCode::UNPROCESSABLE_ENTITY => code::VALIDATION,
        StatusCode::TOO_MANY_REQUESTS => code::RATE_LIMITED,
        StatusCode::SERVICE_UNAVAILABLE => code::UNAVAILABLE,
        s if s.is_client_error() => code::BAD_REQUEST,
        _ => return ApiError::internal(),
    };
    ApiError::new(status, code, err.to_string())
}
