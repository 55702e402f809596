//! Password reset: forgot-password mails a single-use link when SMTP is configured, an
//! admin can issue the same kind of link by hand (`sealbox admin reset-password` at the
//! console, or `POST /admin/orgs/{orgId}/users/{userId}/password-reset` from the admin
//! console, which also mails it when SMTP is configured), and redeeming a link sets the new password and ends every session of the account, in one
//! transaction with its audit entry and events.
//!
//! Links are `{public URL}/reset-password?token=...`; the token is `auth::opaque` (only
//! its hash is stored), single use, and expires ([`RESET_LINK_TTL`], [`SET_LINK_TTL`]).

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;
use zeroize::Zeroizing;

use super::admin::require_instance_admin;
use super::identity::hash_password;
use super::{FieldError, Journal, RequestContext, ServiceError, write};
use crate::auth::{Principal, opaque, password};
use crate::ids::{OrgId, UserId, format_rfc3339, now_rfc3339};
use crate::mail::Mailer;
use crate::store::organizations;
use crate::store::password_resets::{self, Purpose};
use crate::store::users::{self, User, UserStatus};
use crate::store::{Store, StoreError, sessions};

/// How long a reset link works: from forgot-password or from an admin.
pub const RESET_LINK_TTL: Duration = Duration::from_secs(60 * 60);
/// How long the "choose your password" link of a new account works.
pub const SET_LINK_TTL: Duration = Duration::from_secs(72 * 60 * 60);
/// The web UI page a link opens; it posts the token to `/v1/auth/reset-password`.
pub const RESET_PAGE_PATH: &str = "/reset-password";

/// A reset link an instance admin issued for one account (see
/// [`PasswordResetService::admin_issue`]). No `Debug`: it holds the link.
pub struct AdminResetLink {
    pub url: Zeroizing<String>,
    /// When the link stops working (RFC 3339).
    pub expires_at: String,
    /// Whether the link was also mailed to the account: mail is configured and the SMTP
    /// server accepted the message.
    pub mailed: bool,
}

/// The longest email address (RFC 5321 path limit); longer input is refused, not looked up.
pub const MAX_EMAIL_CHARS: usize = 254;

const INVALID_TOKEN: ServiceError =
    ServiceError::Unauthorized("the reset link is invalid, expired or already used");

#[derive(Clone)]
pub struct PasswordResetService {
    store: Store,
    mailer: Option<Mailer>,
    /// Base of the links, without a trailing slash.
    public_url: Arc<str>,
}

impl std::fmt::Debug for PasswordResetService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordResetService")
            .field("mailer", &self.mailer)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl PasswordResetService {
    /// `public_url` is the base of the links (see `app::public_base_url`); `mailer` is
    /// `None` when mail is off.
    pub fn new(store: Store, mailer: Option<Mailer>, public_url: &str) -> Self {
        Self {
            store,
            mailer,
            public_url: public_url.trim_end_matches('/').into(),
        }
    }

    /// The link that redeems `token`.
    pub fn link(&self, token: &str) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{}{RESET_PAGE_PATH}?token={token}",
            self.public_url
        ))
    }

    /// Handles forgot-password. Always `Ok`, whether or not the account exists: the only
    /// work done before answering is one indexed lookup, the same for every address. For
    /// an existing account the rest (token, audit entry, mail) happens in the background.
    pub async fn forgot(&self, email: String, ctx: RequestContext) -> Result<(), ServiceError> {
        if email.chars().count() > MAX_EMAIL_CHARS {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "email",
                format!("must be at most {MAX_EMAIL_CHARS} characters"),
            )]));
        }
        let found = self
            .store
            .call(move |conn| users::find_by_email(conn, &email))
            .await?;
        if let Some(user) = found {
            let this = self.clone();
            tokio::spawn(async move {
                let user_id = user.id;
                if let Err(e) = this.answer_forgot(user, ctx).await {
                    tracing::warn!(user = %user_id, error = %e, "password reset request failed");
                }
            });
        }
        Ok(())
    }

    /// The background part of [`Self::forgot`] for an existing account.
    async fn answer_forgot(&self, user: User, ctx: RequestContext) -> Result<(), ServiceError> {
        let active = user.status == UserStatus::Active;
        let mailer = self.mailer.clone().filter(|_| active);
        let delivery = match (active, &mailer) {
            (false, _) => "none_account_disabled",
            (true, None) => "none_mail_off",
            (true, Some(_)) => "mail",
        };
        let user_id = user.id;
        let with_token = mailer.is_some();
        let token = write(&self.store, move |tx| {
            let org = users::activity_org(tx, user_id)?.map(|o| o.to_string());
            let journal = Journal::new(tx, &ctx, None, org);
            let token = if with_token {
                Some(issue_token(tx, user_id, Purpose::Reset, RESET_LINK_TTL)?)
            } else {
                None
            };
            journal.audit(
                "auth.password_reset_requested",
                "user",
                user_id,
                json!({ "delivery": delivery }),
            )?;
            Ok(token)
        })
        .await?;

        let (Some(mailer), Some(token)) = (mailer, token) else {
            if active {
                tracing::info!(
                    user = %user_id,
                    "password reset requested, but mail is off (smtp.host is empty): \
                     an admin can issue a link with `sealbox admin reset-password`"
                );
            } else {
                tracing::info!(user = %user_id, "password reset requested for a disabled account; nothing sent");
            }
            return Ok(());
        };
        let body = reset_mail_body(&user.email, &self.link(&token), Requester::Owner);
        match mailer
            .send(&user.email, "Reset your sealbox password", body)
            .await
        {
            Ok(()) => tracing::info!(user = %user_id, "password reset link mailed"),
            // The error names the server and its answer, never the link.
            Err(e) => {
                tracing::warn!(user = %user_id, error = %e, "could not mail the password reset link")
            }
        }
        Ok(())
    }

    /// Issues a single-use link for the account with `email`, for an admin to hand over
    /// (`sealbox admin reset-password`; later the admin API). `NotFound("user")` for an
    /// unknown address.
    pub async fn issue_link(
        &self,
        email: String,
        purpose: Purpose,
        ttl: Duration,
        ctx: RequestContext,
    ) -> Result<Zeroizing<String>, ServiceError> {
        let token = write(&self.store, move |tx| {
            let Some(user) = users::find_by_email(tx, &email)? else {
                return Err(ServiceError::NotFound("user"));
            };
            if user.status != UserStatus::Active {
                return Err(ServiceError::Invalid(vec![FieldError::new(
                    "email",
                    "the account is disabled; a link would not work",
                )]));
            }
            let org = users::activity_org(tx, user.id)?.map(|o| o.to_string());
            let journal = Journal::new(tx, &ctx, None, org);
            let token = issue_token(tx, user.id, purpose, ttl)?;
            journal.audit(
                "auth.password_reset_link_issued",
                "user",
                user.id,
                json!({ "purpose": purpose.as_str(), "ttlSeconds": ttl.as_secs() }),
            )?;
            Ok(token)
        })
        .await?;
        Ok(self.link(&token))
    }

    /// `POST /admin/orgs/{orgId}/users/{userId}/password-reset`: an instance admin issues
    /// the self-service kind of reset link (same token, [`RESET_LINK_TTL`]) for a member of
    /// `org`, audited in that organization. With mail configured the link is also mailed
    /// to the account, as forgot-password does; the admin gets it either way, to hand over
    /// when mail is off or does not arrive. `NotFound("member")` when `user` is not a member
    /// of `org` (another organization's account included).
    pub async fn admin_issue(
        &self,
        principal: &Principal,
        org: OrgId,
        user: UserId,
        ctx: RequestContext,
    ) -> Result<AdminResetLink, ServiceError> {
        require_instance_admin(principal)?;
        let actor = principal.user_id.to_string();
        let delivery = if self.mailer.is_some() {
            "mail"
        } else {
            "none_mail_off"
        };
        let (token, expires_at, email) = write(&self.store, move |tx| {
            organizations::find_member(tx, org, user)?.ok_or(ServiceError::NotFound("member"))?;
            let account = users::find(tx, user)?.ok_or(ServiceError::NotFound("member"))?;
            if account.status != UserStatus::Active {
                return Err(ServiceError::Conflict(
                    "the account is disabled; a reset link would not work".into(),
                ));
            }
            let (token, expires_at) = insert_token(tx, user, Purpose::Reset, RESET_LINK_TTL)?;
            let journal = Journal::new(tx, &ctx, Some(actor), Some(org.to_string()));
            journal.audit(
                "auth.password_reset_link_issued",
                "user",
                user,
                json!({
                    "purpose": Purpose::Reset.as_str(),
                    "ttlSeconds": RESET_LINK_TTL.as_secs(),
                    "byAdmin": true,
                    "delivery": delivery,
                }),
            )?;
            Ok((token, expires_at, account.email))
        })
        .await?;
        let url = self.link(&token);
        let mailed = match &self.mailer {
            None => false,
            Some(mailer) => {
                let body = reset_mail_body(&email, &url, Requester::Admin);
                match mailer
                    .send(&email, "Reset your sealbox password", body)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(user = %user, "admin-issued password reset link mailed");
                        true
                    }
                    // The error names the server and its answer, never the link.
                    Err(e) => {
                        tracing::warn!(user = %user, error = %e, "could not mail the admin-issued password reset link");
                        false
                    }
                }
            }
        };
        Ok(AdminResetLink {
            url,
            expires_at,
            mailed,
        })
    }

    /// Redeems a link: checks the token, then the new password against the policy, and
    /// in one transaction consumes the token (and every other outstanding one of the
    /// account), stores the new hash and revokes every session of the account.
    pub async fn reset(
        &self,
        token: String,
        new_password: String,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let token_hash = opaque::hash(&token);
        // The token first: without a valid one nothing else about the request matters.
        // It is only looked at here, so a refused password leaves the link usable.
        let valid = self
            .store
            .call(move |conn| password_resets::find_valid(conn, &token_hash, &now_rfc3339()))
            .await?;
        if valid.is_none() {
            return Err(INVALID_TOKEN);
        }
        if let Err(message) = password::check_policy(&new_password) {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "password", message,
            )]));
        }
        let password_hash = hash_password(new_password).await?;

        let (user_id, revoked) = write(&self.store, move |tx| {
            let now = now_rfc3339();
            // Checked again, and consumed, inside the write lock: two redemptions may race.
            let Some(token) = password_resets::take_valid(tx, &token_hash, &now)? else {
                return Err(INVALID_TOKEN);
            };
            let user = token.user_id;
            users::set_password_hash(tx, user, &password_hash, &now)?;
            password_resets::invalidate_for_user(tx, user, &now)?;
            let revoked = sessions::revoke_all_for_user(tx, user, None, "password_reset", &now)?;

            let org = users::activity_org(tx, user)?.map(|o| o.to_string());
            let journal = Journal::new(tx, &ctx, Some(user.to_string()), org);
            journal.audit(
                "auth.password_reset",
                "user",
                user,
                json!({ "purpose": token.purpose.as_str(), "revokedSessions": revoked.len() }),
            )?;
            journal.event(
                "user.password_changed",
                json!({ "userId": user, "reason": "password_reset" }),
            )?;
            for session in &revoked {
                journal.event(
                    "session.revoked",
                    json!({ "sessionId": session, "userId": user, "reason": "password_reset" }),
                )?;
            }
            Ok((user, revoked.len()))
        })
        .await?;
        tracing::info!(user = %user_id, revoked_sessions = revoked, "password reset");
        Ok(())
    }
}

/// Creates a token for `user` inside the caller's transaction and returns it, for a
/// service that must create it together with other changes (a new account and its
/// "choose your password" link: `Purpose::Set`, [`SET_LINK_TTL`]). Turn it into a link
/// with [`PasswordResetService::link`]; the caller writes the audit entry.
pub fn issue_token(
    tx: &Connection,
    user: UserId,
    purpose: Purpose,
    ttl: Duration,
) -> Result<Zeroizing<String>, StoreError> {
    Ok(insert_token(tx, user, purpose, ttl)?.0)
}

/// [`issue_token`], also answering when the token expires (RFC 3339).
fn insert_token(
    tx: &Connection,
    user: UserId,
    purpose: Purpose,
    ttl: Duration,
) -> Result<(Zeroizing<String>, String), StoreError> {
    let token = opaque::generate();
    let now = time::OffsetDateTime::now_utc();
    let expires_at = format_rfc3339(now + ttl);
    password_resets::insert(
        tx,
        &token.hash,
        user,
        purpose,
        &format_rfc3339(now),
        &expires_at,
    )?;
    Ok((token.value, expires_at))
}

/// Who asked for a reset link, for the mail's first sentence.
#[derive(Clone, Copy)]
enum Requester {
    /// Forgot-password: the account's owner, or someone typing their address.
    Owner,
    /// An instance admin, from the admin console.
    Admin,
}

fn reset_mail_body(email: &str, link: &str, requester: Requester) -> String {
    let opening = match requester {
        Requester::Owner => "Someone, hopefully you, asked to reset the password of",
        Requester::Admin => {
            "An administrator of this sealbox server issued a link to reset the password of"
        }
    };
    format!(
        "{opening} the sealbox account {email}.\n\
         \n\
         To choose a new password, open this link within {minutes} minutes. It works once:\n\
         \n\
         {link}\n\
         \n\
         Resetting the password signs the account out everywhere.\n\
         If you did not ask for this, ignore this mail: your password stays as it is.\n",
        minutes = RESET_LINK_TTL.as_secs() / 60,
    )
}
