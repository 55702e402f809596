//! Business rules, one module per feature. Services call `store`, `blob`, `crypto` and
//! `auth`, never HTTP; the `http` layer maps their outcomes to responses.

pub mod identity;
pub mod login_throttle;
pub mod system;

use std::time::Duration;

use crate::store::StoreError;
use crate::store::audit::AuditEntry;

pub use identity::IdentityService;
pub use system::SystemService;

/// Failures a service reports; `http::error` maps each to a status and code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Credentials or a token were missing, wrong, expired or revoked.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The object does not exist or belongs to someone else (never say which).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Field-level problems with the input.
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    /// Too many failed attempts; try again after the delay.
    #[error("too many attempts")]
    TooManyAttempts { retry_after: Duration },
    /// A dependency did not answer in time; the client may retry.
    #[error("{0}")]
    Unavailable(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Who sent a request, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl RequestContext {
    /// An audit entry for this request with outcome `success`.
    pub fn audit<'a>(
        &'a self,
        actor_user_id: Option<String>,
        action: &'a str,
        target_type: &'a str,
        target_id: Option<String>,
        org_id: Option<String>,
    ) -> AuditEntry<'a> {
        AuditEntry {
            actor_user_id,
            action,
            target_type: Some(target_type),
            target_id,
            org_id,
            ip: self.ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
            request_id: self.request_id.as_deref(),
            outcome: "success",
            details: serde_json::Value::Null,
        }
    }
}
