//! Accounts and sessions: first-run setup, login, refresh-token rotation, logout, the
//! caller's profile and their sessions. Each state change is one transaction that writes
//! the data, its audit entries and its outbox events together.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use zeroize::Zeroizing;

use super::auth_cache::AuthCache;
use super::login_throttle::LoginThrottle;
use super::unlock_cache::UnlockCache;
use super::{FieldError, RequestContext, ServiceError};
use crate::auth::{AccessTokens, Credential, Principal, opaque, password};
use crate::config::Registration;
use crate::ids::{OrgId, SessionId, UserId, format_rfc3339, now_rfc3339};
use crate::store::organizations::{self, Membership};
use crate::store::sessions::{self, NewSession, Session};
use crate::store::users::{self, NewUser, User};
use crate::store::{Store, StoreError, Write, audit, events, setup};

/// How long an unused refresh token stays valid; every use issues a fresh one.
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The role of an organization's creator.
pub const OWNER_ROLE: &str = "owner";
const MAX_NAME_CHARS: usize = 100;
/// The refusal of passwords under `auth.sso_only`.
const SSO_ONLY: &str = "password sign-in is off on this server (auth.sso_only): sign in with \
                        your identity provider";
const MAX_EMAIL_BYTES: usize = 254;

/// What a successful login, setup or refresh hands the client.
pub struct SignedIn {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Zeroizing<String>,
    pub session_id: SessionId,
    pub profile: Profile,
}

/// A user and the organizations they belong to.
#[derive(Debug, Clone)]
pub struct Profile {
    pub user: User,
    pub memberships: Vec<Membership>,
}

impl Profile {
    /// What `principal` may see of its own profile: through an API key, only the key's
    /// organization (as the default one), nothing of the account's other tenants.
    pub fn seen_by(mut self, principal: &Principal) -> Self {
        if let Some(key) = principal.key() {
            self.memberships.retain(|m| m.org_id == key.org_id);
            self.user.default_org_id = Some(key.org_id);
        }
        self
    }
}

/// The first instance admin and their organization.
pub struct SetupInput {
    pub token: String,
    pub email: String,
    pub password: String,
    pub display_name: String,
    pub organization_name: String,
}

/// A new account from `POST /v1/auth/register`.
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub display_name: String,
    /// An organization invite for this email address; joins its organization.
    pub invite_token: Option<String>,
}

#[derive(Clone)]
pub struct IdentityService {
    store: Store,
    tokens: AccessTokens,
    throttle: Arc<LoginThrottle>,
    registration: Registration,
    /// `auth.sso_only`: passwords sign in instance admins only.
    sso_only: bool,
    /// Unlocked vault keys, dropped when their user signs out.
    unlocked: Option<UnlockCache>,
    /// Sessions known to be active (see `auth_cache`).
    known: AuthCache,
    /// The members limit of a plan, checked when registration accepts an invite.
    plans: super::plans::PlanRules,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService").finish_non_exhaustive()
    }
}

impl IdentityService {
    pub fn new(store: Store, tokens: AccessTokens) -> Self {
        Self {
            known: AuthCache::new(store.clone()),
            store,
            tokens,
            throttle: Arc::new(LoginThrottle::default()),
            registration: Registration::default(),
            sso_only: false,
            unlocked: None,
            plans: super::plans::PlanRules::default(),
        }
    }

    /// Registration with an invite checks the organization's plan (its members limit).
    pub fn with_plans(mut self, plans: super::plans::PlanRules) -> Self {
        self.plans = plans;
        self
    }

    /// Signing out drops the user's unlocked vault keys from `cache`.
    pub fn with_unlock_cache(mut self, cache: UnlockCache) -> Self {
        self.unlocked = Some(cache);
        self
    }

    /// Who may register (`auth.registration`).
    pub fn with_registration(mut self, registration: Registration) -> Self {
        self.registration = registration;
        self
    }

    /// `auth.sso_only`: password sign-in and registration off, but for instance admins.
    pub fn with_sso_only(mut self, sso_only: bool) -> Self {
        self.sso_only = sso_only;
        self
    }

    /// Who may register (`auth.registration`), for the identity providers' new accounts.
    pub fn registration(&self) -> Registration {
        self.registration
    }

    /// Creates an account as `auth.registration` allows and signs it in. With an invite
    /// token, the account joins the invite's organization in the same transaction, so a
    /// bad token leaves no account behind.
    pub async fn register(
        &self,
        input: RegisterInput,
        ctx: RequestContext,
    ) -> Result<SignedIn, ServiceError> {
        if self.sso_only {
            return Err(ServiceError::Forbidden(SSO_ONLY.into()));
        }
        match (self.registration, &input.invite_token) {
            (Registration::Closed, _) => {
                return Err(ServiceError::Forbidden(
                    "registration is closed on this server; ask an admin for an account".into(),
                ));
            }
            (Registration::Invite, None) => {
                return Err(ServiceError::Forbidden(
                    "this server registers people by invite: send the `inviteToken` you were given"
                        .into(),
                ));
            }
            _ => {}
        }
        let invite_hash = input.invite_token.as_deref().map(opaque::hash);
        if let Some(hash) = invite_hash {
            // The invite first: without a live one, nothing about the request matters.
            let live = self
                .store
                .call(move |conn| super::invites::is_open(conn, &hash))
                .await?;
            if !live {
                return Err(super::invites::INVALID_INVITE);
            }
        }
        let mut problems = Vec::new();
        check_email(&input.email, "email", &mut problems);
        check_name(&input.display_name, "displayName", &mut problems);
        if let Err(message) = password::check_policy(&input.password) {
            problems.push(FieldError::new("password", message));
        }
        super::invalid_if_any(problems)?;
        let password_hash = hash_password(input.password).await?;

        let refresh = opaque::generate();
        let refresh_hash = refresh.hash;
        let (user_id, session_id) = (UserId::new(), SessionId::new());
        let email = input.email.trim().to_owned();
        let display_name = input.display_name.trim().to_owned();
        let plans = self.plans.clone();
        super::write(&self.store, move |tx| {
            let now = now_rfc3339();
            users::insert(
                tx,
                &NewUser {
                    id: user_id,
                    email: &email,
                    display_name: &display_name,
                    password_hash: Some(&password_hash),
                    is_instance_admin: false,
                    default_org_id: None,
                    now: &now,
                },
            )
            .map_err(|e| match e {
                StoreError::Conflict => {
                    ServiceError::Conflict("an account with this email address exists".into())
                }
                other => other.into(),
            })?;
            let org = match &invite_hash {
                Some(hash) => {
                    Some(super::invites::accept_in(tx, hash, user_id, &email, &ctx, &plans)?.0)
                }
                None => None,
            };
            let journal = super::Journal::new(
                tx,
                &ctx,
                Some(user_id.to_string()),
                org.map(|o| o.to_string()),
            );
            journal.audit(
                "user.registered",
                "user",
                user_id,
                json!({"viaInvite": org.is_some()}),
            )?;
            journal.event("user.created", json!({"userId": user_id, "email": email}))?;
            start_session(
                tx,
                user_id,
                session_id,
                &refresh_hash,
                &ctx,
                org.map(|o| o.to_string()),
                journal.now(),
            )?;
            Ok(())
        })
        .await?;
        tracing::info!(user = %user_id, "account registered");
        self.signed_in(user_id, session_id, refresh.value).await
    }

    /// While no user exists, issues a new one-time setup token (replacing any earlier
    /// one) and returns it; once the first admin exists, returns `None`.
    pub fn issue_setup_token_if_needed(&self) -> Result<Option<Zeroizing<String>>, StoreError> {
        self.store.call_blocking(|conn| {
            if users::any(conn)? {
                setup::delete_token(conn)?;
                return Ok(None);
            }
            let token = opaque::generate();
            setup::replace_token(conn, &token.hash, &now_rfc3339())?;
            Ok(Some(token.value))
        })
    }

    /// Creates the first instance admin and their organization with the setup token,
    /// which dies in the same transaction.
    pub async fn setup(
        &self,
        input: SetupInput,
        ctx: RequestContext,
    ) -> Result<SignedIn, ServiceError> {
        const BAD_TOKEN: ServiceError =
            ServiceError::Unauthorized("the setup token is invalid or already used");
        // The token first: without it, nothing about the request matters.
        let token_hash = opaque::hash(&input.token);
        if !self
            .store
            .call(move |conn| setup::token_matches(conn, &token_hash))
            .await?
        {
            return Err(BAD_TOKEN);
        }
        let mut problems = Vec::new();
        check_email(&input.email, "email", &mut problems);
        check_name(&input.display_name, "displayName", &mut problems);
        check_name(&input.organization_name, "organizationName", &mut problems);
        if let Err(message) = password::check_policy(&input.password) {
            problems.push(FieldError::new("password", message));
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems));
        }
        let password_hash = hash_password(input.password).await?;

        let refresh = opaque::generate();
        let (user_id, org_id, session_id) = (UserId::new(), OrgId::new(), SessionId::new());
        let refresh_hash = refresh.hash;
        let (email, display_name, org_name) = (
            input.email.trim().to_owned(),
            input.display_name.trim().to_owned(),
            input.organization_name.trim().to_owned(),
        );
        self.store
            .call_write(move |tx| {
                // Checked again inside the write lock: two setups may race.
                if !setup::take_token(tx, &token_hash)? || users::any(tx)? {
                    return Ok(Write::Rollback(Err(BAD_TOKEN)));
                }
                let now = now_rfc3339();
                let slug = super::organizations::free_slug(tx, &org_name)?;
                organizations::insert(tx, org_id, &org_name, &slug, &now)?;
                users::insert(
                    tx,
                    &NewUser {
                        id: user_id,
                        email: &email,
                        display_name: &display_name,
                        password_hash: Some(&password_hash),
                        is_instance_admin: true,
                        default_org_id: Some(org_id),
                        now: &now,
                    },
                )?;
                organizations::add_member(tx, org_id, user_id, OWNER_ROLE, &now)?;

                let org = Some(org_id.to_string());
                let actor = Some(user_id.to_string());
                for (action, target_type, target) in [
                    ("setup.completed", "instance", None),
                    ("user.created", "user", Some(user_id.to_string())),
                    (
                        "organization.created",
                        "organization",
                        Some(org_id.to_string()),
                    ),
                    ("member.added", "user", Some(user_id.to_string())),
                ] {
                    audit::append(
                        tx,
                        &ctx.audit(actor.clone(), action, target_type, target, org.clone()),
                        &now,
                    )?;
                }
                events::record(
                    tx,
                    "user.created",
                    org.clone(),
                    &json!({"userId": user_id, "email": email}),
                    &now,
                )?;
                events::record(
                    tx,
                    "organization.created",
                    org.clone(),
                    &json!({"organizationId": org_id, "name": org_name}),
                    &now,
                )?;
                events::record(
                    tx,
                    "member.added",
                    org.clone(),
                    &json!({"organizationId": org_id, "userId": user_id, "role": OWNER_ROLE}),
                    &now,
                )?;
                start_session(
                    tx,
                    user_id,
                    session_id,
                    &refresh_hash,
                    &ctx,
                    Some(org_id.to_string()),
                    &now,
                )?;
                Ok(Write::Commit(Ok(())))
            })
            .await??;
        tracing::info!(user = %user_id, organization = %org_id, "first-run setup completed");
        self.signed_in(user_id, session_id, refresh.value).await
    }

    /// Exchanges email and password for a new session.
    pub async fn login(
        &self,
        email: String,
        password: String,
        ctx: RequestContext,
    ) -> Result<SignedIn, ServiceError> {
        // Reserved before anything is checked, so parallel guesses cannot race the count.
        let attempt = self
            .throttle
            .begin_login(
                &users::email_key(&email),
                ctx.ip.as_deref().unwrap_or("unknown"),
            )
            .map_err(|retry_after| {
                crate::metrics::login_failed("throttled");
                ServiceError::TooManyAttempts { retry_after }
            })?;

        let lookup_email = email.clone();
        let found = self
            .store
            .call(move |conn| users::find_with_password(conn, &lookup_email))
            .await?;
        let (user, verified) = super::argon2_pool::run(move || match found {
            Some((user, Some(hash))) => {
                let ok = password::verify(&password, &hash);
                (Some(user), ok)
            }
            Some((user, None)) => {
                password::verify_nothing(&password);
                (Some(user), false)
            }
            None => {
                password::verify_nothing(&password);
                (None, false)
            }
        })
        .await?;

        let signed_in = verified
            && user
                .as_ref()
                .is_some_and(|u| u.status == users::UserStatus::Active);
        let Some(user) = user.clone().filter(|_| signed_in) else {
            attempt.failed();
            crate::metrics::login_failed("credentials");
            self.store
                .call_write(move |tx| {
                    let now = now_rfc3339();
                    let actor = user.as_ref().map(|u| u.id.to_string());
                    let org = match &user {
                        Some(u) => users::activity_org(tx, u.id)?.map(|o| o.to_string()),
                        None => None,
                    };
                    let mut entry = ctx.audit(
                        actor.clone(),
                        "auth.login",
                        "user",
                        actor.clone(),
                        org.clone(),
                    );
                    entry.outcome = "failure";
                    audit::append(tx, &entry, &now)?;
                    if let Some(user) = &user {
                        events::record(
                            tx,
                            "user.login_failed",
                            org,
                            &json!({"userId": user.id, "ip": ctx.ip}),
                            &now,
                        )?;
                    }
                    Ok(Write::Commit(()))
                })
                .await?;
            return Err(ServiceError::Unauthorized(
                "the email or password is incorrect",
            ));
        };
        attempt.succeeded();
        if self.sso_only && !user.is_instance_admin {
            // After the password check, so the answer says nothing about unknown accounts.
            return Err(ServiceError::Forbidden(SSO_ONLY.into()));
        }
        self.sign_in(user.id, serde_json::Value::Null, ctx).await
    }

    /// Starts a session for `user_id`, who has just proved who they are (a password, an
    /// identity provider: `details` says how, for the audit entry), and returns its token
    /// pair: the same session, audit entry and `session.created` event however they signed
    /// in. A disabled account is refused, checked in the session's transaction.
    pub(crate) async fn sign_in(
        &self,
        user_id: UserId,
        details: serde_json::Value,
        ctx: RequestContext,
    ) -> Result<SignedIn, ServiceError> {
        let refresh = opaque::generate();
        let refresh_hash = refresh.hash;
        let session_id = SessionId::new();
        super::write(&self.store, move |tx| {
            let active =
                users::find(tx, user_id)?.is_some_and(|u| u.status == users::UserStatus::Active);
            if !active {
                return Err(ServiceError::Unauthorized("the account is disabled"));
            }
            let now = now_rfc3339();
            let org = users::activity_org(tx, user_id)?.map(|o| o.to_string());
            start_session(
                tx,
                user_id,
                session_id,
                &refresh_hash,
                &ctx,
                org.clone(),
                &now,
            )?;
            let actor = Some(user_id.to_string());
            let mut entry = ctx.audit(
                actor,
                "auth.login",
                "session",
                Some(session_id.to_string()),
                org,
            );
            entry.details = details;
            audit::append(tx, &entry, &now)?;
            Ok(())
        })
        .await?;
        self.signed_in(user_id, session_id, refresh.value).await
    }

    /// Rotates a refresh token. A token presented a second time means it leaked: its whole
    /// session is revoked, for the thief and the rightful holder alike.
    pub async fn refresh(
        &self,
        refresh_token: String,
        ctx: RequestContext,
    ) -> Result<SignedIn, ServiceError> {
        let presented = opaque::hash(&refresh_token);
        let next = opaque::generate();
        let next_hash = next.hash;
        let outcome = self
            .store
            .call_write(move |tx| {
                let now = now_rfc3339();
                let Some(state) = sessions::find_refresh_token(tx, &presented)? else {
                    return Ok(Write::Rollback(Err("the refresh token is invalid")));
                };
                if state.session_revoked {
                    return Ok(Write::Rollback(Err("the session has been revoked")));
                }
                if state.used || !sessions::mark_refresh_token_used(tx, &presented, &now)? {
                    sessions::revoke_for_user(tx, state.user_id, state.session_id, "refresh_token_reused", &now)?;
                    let actor = Some(state.user_id.to_string());
                    let org = users::activity_org(tx, state.user_id)?.map(|o| o.to_string());
                    let mut entry = ctx.audit(actor, "auth.refresh_token_reused", "session", Some(state.session_id.to_string()), org.clone());
                    entry.outcome = "failure";
                    audit::append(tx, &entry, &now)?;
                    let data = json!({"sessionId": state.session_id, "userId": state.user_id, "ip": ctx.ip});
                    events::record(tx, "auth.refresh_token_reused", org.clone(), &data, &now)?;
                    events::record(tx, "session.revoked", org, &json!({"sessionId": state.session_id, "userId": state.user_id, "reason": "refresh_token_reused"}), &now)?;
                    tracing::warn!(session = %state.session_id, "refresh token replayed; session revoked");
                    return Ok(Write::Commit(Err("the refresh token was already used; the session has been revoked")));
                }
                if state.expires_at.as_str() < now.as_str() {
                    return Ok(Write::Rollback(Err("the refresh token has expired")));
                }
                let Some(user) = users::find(tx, state.user_id)?.filter(|u| u.status == users::UserStatus::Active) else {
                    return Ok(Write::Rollback(Err("the account is disabled")));
                };
                let entry = ctx.audit(
                    Some(user.id.to_string()),
                    "auth.refresh",
                    "session",
                    Some(state.session_id.to_string()),
                    users::activity_org(tx, user.id)?.map(|o| o.to_string()),
                );
                audit::append(tx, &entry, &now)?;
                let expires = format_rfc3339(time::OffsetDateTime::now_utc() + REFRESH_TOKEN_TTL);
                sessions::insert_refresh_token(tx, &next_hash, state.session_id, &now, &expires)?;
                sessions::touch(tx, state.session_id, &now, ctx.ip.as_deref(), ctx.user_agent.as_deref())?;
                Ok(Write::Commit(Ok((state.user_id, state.session_id))))
            })
            .await?;
        let (user_id, session_id) = outcome.map_err(ServiceError::Unauthorized)?;
        self.signed_in(user_id, session_id, next.value).await
    }

    /// Ends the session the refresh token belongs to.
    pub async fn logout(
        &self,
        refresh_token: String,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let presented = opaque::hash(&refresh_token);
        let signed_out = self
            .store
            .call_write(move |tx| {
                let Some(state) = sessions::find_refresh_token(tx, &presented)? else {
                    return Ok(Write::Rollback(Err(ServiceError::Unauthorized(
                        "the refresh token is invalid",
                    ))));
                };
                let now = now_rfc3339();
                if sessions::revoke_for_user(tx, state.user_id, state.session_id, "logout", &now)? {
                    record_revocation(tx, &ctx, state.user_id, state.session_id, "logout", &now)?;
                }
                Ok(Write::Commit(Ok(state.user_id)))
            })
            .await??;
        if let Some(cache) = &self.unlocked {
            cache.forget_user(signed_out);
        }
        Ok(())
    }

    /// Resolves an access token into a principal: a valid signature, and a session that
    /// is not revoked for a user who is active, checked on every request (against
    /// SQLite, or the cache of sessions that were active when nothing has changed since).
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, ServiceError> {
        const REFUSED: ServiceError =
            ServiceError::Unauthorized("the access token is invalid, expired or revoked");
        let claims = self.tokens.verify(access_token).ok_or(REFUSED)?;
        let (Some(user_id), Some(session_id)) = (claims.user_id(), claims.session_id()) else {
            return Err(REFUSED);
        };
        let admin = match self.known.session(user_id, session_id) {
            Some(admin) => admin,
            None => {
                let stamp = self.known.stamp();
                let admin = self
                    .store
                    .call(move |conn| sessions::active_principal(conn, user_id, session_id))
                    .await?
                    .ok_or(REFUSED)?;
                self.known.put_session(stamp, user_id, session_id, admin);
                admin
            }
        };
        Ok(Principal {
            user_id,
            is_instance_admin: admin,
            requested_org: None,
            credential: Credential::Session(session_id),
        })
    }

    /// The caller's account and organizations.
    pub async fn profile(&self, user_id: UserId) -> Result<Profile, ServiceError> {
        self.store
            .call(move |conn| {
                let user = users::find(conn, user_id)?;
                let memberships = organizations::memberships_of(conn, user_id)?;
                Ok(user.map(|user| Profile { user, memberships }))
            })
            .await?
            .ok_or(ServiceError::NotFound("user"))
    }

    /// The caller's active sessions.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<Session>, ServiceError> {
        super::access::require_session(principal)?;
        let user = principal.user_id;
        Ok(self
            .store
            .call(move |conn| sessions::list_active_for_user(conn, user))
            .await?)
    }

    /// Revokes one of the caller's sessions; another user's session is "not found".
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session: SessionId,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        super::access::require_session(principal)?;
        let user = principal.user_id;
        let revoked = self
            .store
            .call_write(move |tx| {
                let now = now_rfc3339();
                let revoked = sessions::revoke_for_user(tx, user, session, "revoked", &now)?;
                if revoked {
                    record_revocation(tx, &ctx, user, session, "revoked", &now)?;
                }
                Ok(Write::Commit(revoked))
            })
            .await?;
        if revoked {
            Ok(())
        } else {
            Err(ServiceError::NotFound("session"))
        }
    }

    async fn signed_in(
        &self,
        user_id: UserId,
        session_id: SessionId,
        refresh_token: Zeroizing<String>,
    ) -> Result<SignedIn, ServiceError> {
        let profile = self.profile(user_id).await?;
        let (access_token, expires_in) = self.tokens.issue(user_id, session_id);
        Ok(SignedIn {
            access_token,
            expires_in,
            refresh_token,
            session_id,
            profile,
        })
    }
}

fn start_session(
    tx: &rusqlite::Connection,
    user_id: UserId,
    session_id: SessionId,
    refresh_hash: &[u8; 32],
    ctx: &RequestContext,
    org: Option<String>,
    now: &str,
) -> Result<(), StoreError> {
    sessions::insert(
        tx,
        &NewSession {
            id: session_id,
            user_id,
            ip: ctx.ip.as_deref(),
            user_agent: ctx.user_agent.as_deref(),
            now,
        },
    )?;
    let expires = format_rfc3339(time::OffsetDateTime::now_utc() + REFRESH_TOKEN_TTL);
    sessions::insert_refresh_token(tx, refresh_hash, session_id, now, &expires)?;
    events::record(
        tx,
        "session.created",
        org,
        &json!({"sessionId": session_id, "userId": user_id}),
        now,
    )
}

fn record_revocation(
    tx: &rusqlite::Connection,
    ctx: &RequestContext,
    user: UserId,
    session: SessionId,
    reason: &str,
    now: &str,
) -> Result<(), StoreError> {
    let org = users::activity_org(tx, user)?.map(|o| o.to_string());
    let mut entry = ctx.audit(
        Some(user.to_string()),
        "session.revoked",
        "session",
        Some(session.to_string()),
        org.clone(),
    );
    entry.details = json!({ "reason": reason });
    audit::append(tx, &entry, now)?;
    events::record(
        tx,
        "session.revoked",
        org,
        &json!({"sessionId": session, "userId": user, "reason": reason}),
        now,
    )
}

pub(crate) async fn hash_password(password: String) -> Result<String, ServiceError> {
    let password = Zeroizing::new(password);
    super::argon2_pool::run(move || password::hash(&password)).await
}

pub(crate) fn check_email(email: &str, path: &str, problems: &mut Vec<FieldError>) {
    let email = email.trim();
    let valid = email.len() <= MAX_EMAIL_BYTES
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@')
                && !domain.starts_with('.') && !domain.ends_with('.'));
    if !valid {
        problems.push(FieldError::new(path, "must be a valid email address"));
    }
}

pub(crate) fn check_name(name: &str, path: &str, problems: &mut Vec<FieldError>) {
    let name = name.trim();
    if name.is_empty() {
        problems.push(FieldError::new(path, "must not be empty"));
    } else if name.chars().count() > MAX_NAME_CHARS {
        problems.push(FieldError::new(
            path,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    } else if name.chars().any(char::is_control) {
        problems.push(FieldError::new(path, "must not contain control characters"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_check_accepts_homelab_addresses_and_refuses_junk() {
        for ok in [
            "ada@example.com",
            "admin@localhost",
            "a.b+c@sub.example.org",
        ] {
            let mut problems = vec![];
            check_email(ok, "email", &mut problems);
            assert!(problems.is_empty(), "{ok}");
        }
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "a@b@c",
            "ada@.com",
            &format!("{}@x.io", "a".repeat(260)),
        ] {
            let mut problems = vec![];
            check_email(bad, "email", &mut problems);
            assert_eq!(problems.len(), 1, "{bad:?}");
        }
    }
}
