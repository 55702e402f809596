//! Business rules, one module per feature. Services call `store`, `blob`, `crypto` and
//! `auth`, never HTTP; the `http` layer maps their outcomes to responses.

pub mod access;
pub mod admin;
pub mod api_keys;
pub mod argon2_pool;
pub mod audit;
pub mod auth_cache;
pub mod backup;
pub mod billing;
pub mod conversions;
pub mod event_catalog;
pub mod file_shares;
pub mod files;
#[doc(hidden)]
pub mod fixtures;
pub mod groups;
pub mod idempotency;
pub mod identity;
pub mod invites;
pub mod keys;
pub mod kv;
pub mod login_throttle;
pub mod messaging;
pub mod notifications;
pub mod organizations;
pub mod page;
pub mod password_reset;
pub mod plans;
pub mod recovery;
pub mod scrub;
pub mod shares;
pub mod sso;
pub mod system;
pub mod transfers;
pub mod unlock_cache;
pub mod users;
pub mod webhook_queue;
pub mod webhook_targets;
pub mod webhooks;

use std::time::Duration;

use rusqlite::Connection;

use crate::ids::now_rfc3339;
use crate::store::audit::AuditEntry;
use crate::store::{Store, StoreError, Write, events};

pub use admin::AdminService;
pub use api_keys::ApiKeyService;
pub use audit::AuditService;
pub use file_shares::FileShareService;
pub use files::FileService;
pub use groups::GroupService;
pub use idempotency::IdempotencyService;
pub use identity::IdentityService;
pub use invites::InviteService;
pub use keys::KeyService;
pub use kv::KvService;
pub use notifications::NotificationService;
pub use organizations::OrgService;
pub use password_reset::PasswordResetService;
pub use recovery::RecoveryService;
pub use sso::SsoService;
pub use system::SystemService;
pub use transfers::TransferService;
pub use users::UserService;
pub use webhooks::WebhookService;

/// Failures a service reports; `http::error` maps each to a status and code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Credentials or a token were missing, wrong, expired or revoked.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The object does not exist or belongs to someone else (never say which).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// The organization is suspended: nothing may be done on its behalf.
    #[error("the organization is suspended")]
    OrgSuspended,
    /// The request conflicts with the current state (a duplicate, the last owner).
    #[error("{0}")]
    Conflict(String),
    /// Field-level problems with the input.
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    /// The request cannot be acted on as sent (the vault's 400s: missing key material,
    /// bad base64, a tampered or mismatched envelope or ciphertext).
    #[error("{0}")]
    BadRequest(String),
    /// A value is larger than the configured limit (bytes).
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    /// The organization's storage quota would be exceeded (413 `QUOTA_EXCEEDED`).
    #[error("{0}")]
    QuotaExceeded(String),
    /// The disk is full (507 `QUOTA_EXCEEDED`); nothing partial was kept.
    #[error("the server's disk is full")]
    DiskFull,
    /// An upload chunk does not match its `Upload-Checksum` (tus: 460); it was discarded.
    #[error("checksum mismatch")]
    ChecksumMismatch,
    /// A budget (such as the organization's uploads an hour) is spent for now.
    #[error("{what} is spent")]
    BudgetSpent {
        what: &'static str,
        retry_after: Duration,
    },
    /// The organization's plan lacks a feature, or is at a limit, that this needs (403
    /// `PLAN_REQUIRED`; the message names the feature or limit).
    #[error("{0}")]
    PlanRequired(String),
    /// A daily quota of the organization's plan is spent until the next UTC midnight (429
    /// `QUOTA_EXCEEDED` with `Retry-After` and the `X-Quota-*` headers).
    #[error("{message}")]
    DailyQuotaSpent {
        message: String,
        quota: plans::Quota,
    },
    /// The object existed but is gone for good (a revoked, expired or used-up transfer).
    #[error("{0}")]
    Gone(String),
    /// Too many failed attempts; try again after the delay.
    #[error("too many attempts")]
    TooManyAttempts { retry_after: Duration },
    /// A dependency did not answer in time; the client may retry.
    #[error("{0}")]
    Unavailable(&'static str),
    /// The server is at a bound it keeps (such as Argon2id runs at once); retry after the
    /// delay (503 with `Retry-After`).
    #[error("{what}")]
    Overloaded {
        what: &'static str,
        retry_after: Duration,
    },
    /// An identity provider's sign-in was refused (`code` names why, such as
    /// `SSO_STATE_MISMATCH`; docs/sso.md lists them); nothing was created or linked.
    #[error("{message}")]
    SignInRefused { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A message's envelopes do not cover exactly the chat's current devices (409 with
    /// the missing and the extra device ids in `details`).
    #[error("the envelopes do not match the chat's devices")]
    EnvelopeMismatch(messaging::messages::Coverage),
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

/// `Err(Invalid)` with the collected problems, or `Ok` if there are none.
pub fn invalid_if_any(problems: Vec<FieldError>) -> Result<(), ServiceError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(problems))
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

/// Runs `f` in a write transaction (taken IMMEDIATE, so checks and writes see the same
/// state) on the store's writer thread, and answers once it is on disk. Keeps its changes
/// if `f` succeeds and undoes them otherwise, so a refused request leaves nothing behind,
/// not even its audit entry. The transaction may be shared with other writers (group
/// commit, [`Store::call_write`]): `f` sees what the writers before it wrote.
pub(crate) async fn write<T, F>(store: &Store, f: F) -> Result<T, ServiceError>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, ServiceError> + Send + 'static,
{
    store
        .call_write(move |conn| {
            Ok(match f(conn) {
                Ok(value) => Write::Commit(Ok(value)),
                Err(refused) => Write::Rollback(Err(refused)),
            })
        })
        .await?
}

/// Runs `f` in one read transaction, so everything it reads is from the same snapshot.
pub(crate) async fn read<T, F>(store: &Store, f: F) -> Result<T, ServiceError>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, ServiceError> + Send + 'static,
{
    store
        .call(move |conn| {
            let tx = conn.transaction()?;
            Ok(f(&tx))
        })
        .await?
}

/// Writes what one request did into the audit log and the event outbox, inside the
/// request's transaction.
pub(crate) struct Journal<'a> {
    conn: &'a Connection,
    ctx: &'a RequestContext,
    actor: Option<String>,
    org: Option<String>,
    now: String,
}

impl<'a> Journal<'a> {
    pub fn new(
        conn: &'a Connection,
        ctx: &'a RequestContext,
        actor: Option<String>,
        org: Option<String>,
    ) -> Self {
        Self {
            conn,
            ctx,
            actor,
            org,
            now: now_rfc3339(),
        }
    }

    /// The timestamp every row of this request carries.
    pub fn now(&self) -> &str {
        &self.now
    }

    /// A successful action on a target, with optional details.
    pub fn audit(
        &self,
        action: &str,
        target_type: &str,
        target_id: impl ToString,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut entry = self.ctx.audit(
            self.actor.clone(),
            action,
            target_type,
            Some(target_id.to_string()),
            self.org.clone(),
        );
        entry.details = details;
        crate::store::audit::append(self.conn, &entry, &self.now)
    }

    /// An event for webhooks, in the same transaction.
    pub fn event(&self, event_type: &str, data: serde_json::Value) -> Result<(), StoreError> {
        events::record(self.conn, event_type, self.org.clone(), &data, &self.now)
    }
}
