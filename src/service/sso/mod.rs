//! Sign-in with identity providers (docs/sso.md): OpenID Connect issuers (`oidc`: any
//! `[[auth.oidc]]` entry and Google) and GitHub (`github`, OAuth 2).
//!
//! A sign-in starts at `GET /v1/auth/oauth/{provider}`: the state, nonce and PKCE verifier
//! are kept in `pending`, behind a random value the browser holds in a short-lived
//! HttpOnly cookie, so only the browser that started a sign-in can finish it, once. The
//! callback checks the state against that cookie, exchanges the code, checks the ID
//! token, then finds the account: through a live link, else by a verified e-mail address
//! when the provider may link by e-mail, else a new account in the provider's
//! organization (unless registration is closed). The session itself is
//! `IdentityService::sign_in`, as for a password. The outcome waits in `pending` behind a
//! new cookie value for the page to collect with `POST /v1/auth/sso/complete`: tokens
//! never travel in a URL. Every refusal writes an audit entry and changes nothing else.

mod github;
mod oidc;
pub mod pending;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::identity::IdentityService;
use super::{Journal, RequestContext, ServiceError};
use crate::auth::Principal;
use crate::config::{ProviderKind, Registration, SsoProvider};
use crate::ids::{IdentityId, UserId, now_rfc3339};
use crate::store::identities::{self, Identity};
use crate::store::users::{self, NewUser, UserStatus};
use crate::store::{Store, StoreError, audit, organizations};
use pending::{Completed, Entry, Flow, Pending};

/// Longest message of a provider's own error shown on the page.
const MAX_PROVIDER_ERROR_CHARS: usize = 200;
/// How long a request to a provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a sign-in was refused: a stable code and a message for the page.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    /// The local account concerned, when one is known (the audit entry's actor).
    user: Option<UserId>,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            user: None,
        }
    }

    fn about(mut self, user: UserId) -> Self {
        self.user = Some(user);
        self
    }

    fn unavailable(provider: &SsoProvider) -> Self {
        Self::new(
            "SSO_PROVIDER_UNAVAILABLE",
            format!(
                "{} could not be reached or answered unexpectedly; try again later",
                provider.display_name
            ),
        )
    }
}

impl From<Refusal> for ServiceError {
    fn from(refusal: Refusal) -> Self {
        ServiceError::SignInRefused {
            code: refusal.code,
            message: refusal.message,
        }
    }
}

/// The account at the provider, as its checked answer describes it.
#[derive(Debug, Clone)]
struct ExternalAccount {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    groups: Vec<String>,
}

/// A configured provider as the sign-in page lists it.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub id: String,
    pub display_name: String,
    /// `oidc` or `github`.
    pub kind: &'static str,
}

/// Where to send the browser, and the new value of its `sbx_sso` cookie.
pub struct Redirect {
    pub location: String,
    pub cookie: Zeroizing<String>,
}

/// What the callback's query string carries.
#[derive(Debug, Default)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Where the page shows a sign-in's outcome.
pub const SIGN_IN_PAGE: &str = "/login?sso=1";
/// Where the account page shows a link's outcome.
pub const ACCOUNT_PAGE: &str = "/app/account?sso=1";

#[derive(Clone)]
pub struct SsoService {
    inner: Arc<Inner>,
    /// The base of the callback URLs (`server.public_url`, or the bound address).
    public_url: Arc<str>,
    /// The `sso` feature of the plan of the organization a sign-in acts in.
    plans: super::plans::PlanRules,
}

struct Inner {
    store: Store,
    identity: IdentityService,
    providers: Vec<SsoProvider>,
    /// rustls on ring, system roots; redirects off: a provider's answers are read where
    /// they are, never followed elsewhere.
    http: reqwest::Client,
    pending: Pending,
    discovered: Mutex<HashMap<String, (Instant, oidc::Metadata)>>,
}

impl std::fmt::Debug for SsoService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoService").finish_non_exhaustive()
    }
}

impl SsoService {
    pub fn new(
        store: Store,
        identity: IdentityService,
        providers: Vec<SsoProvider>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .user_agent(concat!("sealbox/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                identity,
                providers,
                http,
                pending: Pending::default(),
                discovered: Mutex::new(HashMap::new()),
            }),
            public_url: Arc::from(""),
            plans: super::plans::PlanRules::default(),
        })
    }

    /// Sign-in through a provider needs the `sso` feature in the plan of the organization
    /// the account acts in (a new account: the provider's organization).
    pub fn with_plans(mut self, plans: super::plans::PlanRules) -> Self {
        self.plans = plans;
        self
    }

    /// The base of the callback URLs.
    pub fn with_public_url(mut self, public_url: &str) -> Self {
        self.public_url = Arc::from(public_url.trim_end_matches('/'));
        self
    }

    /// Whether the `sbx_sso` cookie must be `Secure` (the server is reached over https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// Start-up check: the providers whose organization does not exist (yet: on a first
    /// start, setup creates the first one), each as a warning for the log. Until it
    /// exists, such a provider creates no accounts and says so on the page.
    pub fn missing_organizations(&self) -> Result<Vec<String>, StoreError> {
        let wanted: Vec<(String, String)> = self
            .inner
            .providers
            .iter()
            .filter(|p| !p.organization.is_empty())
            .map(|p| (p.id.clone(), p.organization.clone()))
            .collect();
        self.inner.store.call_blocking(move |conn| {
            let mut missing = Vec::new();
            for (id, slug) in &wanted {
                if organizations::find_by_slug(conn, slug)?.is_none() {
                    missing.push(format!(
                        "identity provider `{id}`: organization `{slug}` does not exist, so it \
                         creates no accounts until it does"
                    ));
                }
            }
            Ok(missing)
        })
    }

    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.inner
            .providers
            .iter()
            .map(|p| ProviderInfo {
                id: p.id.clone(),
                display_name: p.display_name.clone(),
                kind: p.kind.as_str(),
            })
            .collect()
    }

    fn provider(&self, id: &str) -> Result<&SsoProvider, ServiceError> {
        self.inner
            .providers
            .iter()
            .find(|p| p.id == id)
            .ok_or(ServiceError::NotFound("identity provider"))
    }

    fn redirect_uri(&self, provider: &str) -> String {
        format!("{}/v1/auth/oauth/{provider}/callback", self.public_url)
    }

    /// Sends the browser to the provider. With `link_for`, a signed-in user (through a
    /// session, not an API key) links the provider to their account.
    pub async fn begin(
        &self,
        provider: &str,
        link_for: Option<&Principal>,
    ) -> Result<Redirect, ServiceError> {
        let provider = self.provider(provider)?;
        if let Some(principal) = link_for {
            super::access::require_session(principal)?;
        }
        let (location, state, nonce, verifier) = match &provider.kind {
            ProviderKind::Oidc { issuer, scopes, .. } => {
                let auth = self.authorize_oidc(provider, issuer, scopes).await?;
                (auth.url, auth.state, Some(auth.nonce), auth.verifier)
            }
            ProviderKind::Github { web_url, .. } => {
                let (url, state, verifier) = self.authorize_github(provider, web_url);
                (url, state, None, verifier)
            }
        };
        let flow = Flow {
            provider: provider.id.clone(),
            state,
            nonce,
            pkce_verifier: verifier,
            link_user: link_for.map(|p| p.user_id),
        };
        let cookie = self
            .inner
            .pending
            .put(Entry::Flow(flow), pending::FLOW_TTL)?;
        Ok(Redirect { location, cookie })
    }

    /// The provider sent the browser back. Whatever happened, the outcome waits for the
    /// page behind a new cookie value; a refusal is audited. Only an unknown provider is
    /// an error here (404).
    pub async fn callback(
        &self,
        provider: &str,
        query: CallbackQuery,
        cookie: Option<&str>,
        ctx: RequestContext,
    ) -> Result<Redirect, ServiceError> {
        let provider = self.provider(provider)?;
        // Taken whatever follows: a state is good for one callback.
        let flow = match cookie.and_then(|c| self.inner.pending.take(c)) {
            Some(Entry::Flow(flow)) => Some(flow),
            _ => None,
        };
        let linking = flow.as_ref().is_some_and(|f| f.link_user.is_some());
        let outcome = self.finish(provider, flow, query, &ctx).await;
        let outcome = match outcome {
            Ok(done) => Ok(done),
            Err(refusal) => {
                self.record_refusal(provider, &refusal, &ctx).await?;
                Err(refusal)
            }
        };
        let cookie = self
            .inner
            .pending
            .put(Entry::Outcome(outcome), pending::OUTCOME_TTL)?;
        let location = if linking { ACCOUNT_PAGE } else { SIGN_IN_PAGE };
        Ok(Redirect {
            location: location.to_owned(),
            cookie,
        })
    }

    /// The page collects the outcome the callback left behind this browser's cookie.
    pub fn complete(&self, cookie: Option<&str>) -> Result<Completed, ServiceError> {
        match cookie.and_then(|c| self.inner.pending.take(c)) {
            Some(Entry::Outcome(outcome)) => Ok(outcome?),
            _ => Err(ServiceError::SignInRefused {
                code: "SSO_NOTHING_PENDING",
                message: "no sign-in is waiting to finish in this browser (it expired, or was \
                          already finished); start again"
                    .into(),
            }),
        }
    }

    async fn finish(
        &self,
        provider: &SsoProvider,
        flow: Option<Flow>,
        query: CallbackQuery,
        ctx: &RequestContext,
    ) -> Result<Completed, Refusal> {
        if let Some(error) = &query.error {
            let detail: String = query
                .error_description
                .as_deref()
                .unwrap_or(error)
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_PROVIDER_ERROR_CHARS)
                .collect();
            return Err(Refusal::new(
                "SSO_PROVIDER_ERROR",
                format!("{} did not sign you in: {detail}", provider.display_name),
            ));
        }
        let Some(flow) = flow.filter(|f| f.provider == provider.id) else {
            return Err(Refusal::new(
                "SSO_STATE_MISSING",
                "this sign-in was not started in this browser, has expired or was already \
                 used; start again",
            ));
        };
        let state_matches = query
            .state
            .as_deref()
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(flow.state.as_bytes())));
        if !state_matches {
            return Err(Refusal::new(
                "SSO_STATE_MISMATCH",
                "the sign-in's state does not match the one this browser started; start again",
            ));
        }
        let Some(code) = query.code.filter(|c| !c.is_empty()) else {
            return Err(Refusal::new(
                "SSO_CODE_MISSING",
                format!("{} sent no authorization code", provider.display_name),
            ));
        };
        let account = match &provider.kind {
            ProviderKind::Oidc {
                issuer,
                group_claim,
                ..
            } => {
                let nonce = flow.nonce.as_deref().map(String::as_str).unwrap_or("");
                self.exchange_oidc(
                    provider,
                    issuer,
                    group_claim,
                    code,
                    &flow.pkce_verifier,
                    nonce,
                )
                .await?
            }
            ProviderKind::Github { web_url, api_url } => {
                self.exchange_github(provider, (web_url, api_url), code, &flow.pkce_verifier)
                    .await?
            }
        };
        if let Some(user) = flow.link_user {
            self.link(provider, user, account, ctx.clone()).await?;
            return Ok(Completed::Linked {
                provider: provider.display_name.clone(),
            });
        }
        let user = self.account_for(provider, account, ctx.clone()).await?;
        let details = json!({"method": "sso", "provider": provider.id});
        match self
            .inner
            .identity
            .sign_in(user, details, ctx.clone())
            .await
        {
            Ok(signed_in) => Ok(Completed::SignedIn(Box::new(signed_in))),
            Err(ServiceError::Unauthorized(why)) => {
                Err(Refusal::new("SSO_ACCOUNT_DISABLED", why).about(user))
            }
            Err(other) => {
                tracing::error!("signing in through {} failed: {other}", provider.id);
                Err(Refusal::new(
                    "SSO_FAILED",
                    "the sign-in could not be completed; try again",
                ))
            }
        }
    }

    /// The local account of `account`: linked, linked now by verified e-mail, or new.
    async fn account_for(
        &self,
        provider: &SsoProvider,
        account: ExternalAccount,
        ctx: RequestContext,
    ) -> Result<UserId, Refusal> {
        let provider = provider.clone();
        let registration = self.inner.identity.registration();
        let plans = self.plans.clone();
        let outcome = super::write(&self.inner.store, move |tx| {
            let resolved = resolve_account(tx, &provider, &account, registration, &plans, &ctx)?;
            // Refused by the plan: rolled back, so a just-in-time account or a link made
            // above is not kept either.
            if let Ok(user) = &resolved
                && !plans.unlimited()
                && let Some(org) = users::activity_org(tx, *user)?
            {
                plans.require_feature_in(tx, org, super::plans::Feature::Sso)?;
            }
            Ok(resolved)
        })
        .await;
        match outcome {
            Ok(result) => result,
            Err(ServiceError::PlanRequired(why)) => Err(Refusal::new("PLAN_REQUIRED", why)),
            Err(e) => {
                tracing::error!("resolving an identity provider's account failed: {e}");
                Err(Refusal::new(
                    "SSO_FAILED",
                    "the sign-in could not be completed; try again",
                ))
            }
        }
    }

    /// The account page's link: `account` becomes one of `user`'s identities.
    async fn link(
        &self,
        provider: &SsoProvider,
        user: UserId,
        account: ExternalAccount,
        ctx: RequestContext,
    ) -> Result<(), Refusal> {
        let provider = provider.clone();
        let outcome = super::write(&self.inner.store, move |tx| {
            let now = now_rfc3339();
            let email = account.email.clone().unwrap_or_default();
            let linked = identities::link(
                tx,
                IdentityId::new(),
                user,
                &provider.id,
                &account.subject,
                &email,
                &now,
            )?;
            let Some(id) = linked else {
                let existing = identities::find_by_subject(tx, &provider.id, &account.subject)?;
                if existing.is_some_and(|i| i.user_id == user) {
                    return Ok(Ok(()));
                }
                return Ok(Err(Refusal::new(
                    "SSO_LINKED_ELSEWHERE",
                    format!(
                        "this {} account is already linked to another sealbox account",
                        provider.display_name
                    ),
                )
                .about(user)));
            };
            let org = users::activity_org(tx, user)?.map(|o| o.to_string());
            Journal::new(tx, &ctx, Some(user.to_string()), org).audit(
                "identity.linked",
                "identity",
                id,
                json!({"provider": provider.id, "via": "account"}),
            )?;
            Ok(Ok(()))
        })
        .await;
        match outcome {
            Ok(result) => result,
            Err(e) => {
                tracing::error!("linking an identity failed: {e}");
                Err(Refusal::new(
                    "SSO_FAILED",
                    "the link could not be completed; try again",
                ))
            }
        }
    }

    async fn record_refusal(
        &self,
        provider: &SsoProvider,
        refusal: &Refusal,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        crate::metrics::login_failed("sso");
        tracing::info!(provider = %provider.id, code = refusal.code, "identity provider sign-in refused");
        let (provider, code, user, ctx) =
            (provider.id.clone(), refusal.code, refusal.user, ctx.clone());
        super::write(&self.inner.store, move |tx| {
            let org = match user {
                Some(u) => users::activity_org(tx, u)?.map(|o| o.to_string()),
                None => None,
            };
            let actor = user.map(|u| u.to_string());
            let mut entry = ctx.audit(actor.clone(), "auth.login", "user", actor, org);
            entry.outcome = "failure";
            entry.details = json!({"method": "sso", "provider": provider, "reason": code});
            audit::append(tx, &entry, &now_rfc3339())?;
            Ok(())
        })
        .await
    }

    /// The caller's linked providers.
    pub async fn identities(&self, principal: &Principal) -> Result<Vec<Identity>, ServiceError> {
        super::access::require_session(principal)?;
        let user = principal.user_id;
        Ok(self
            .inner
            .store
            .call(move |conn| identities::list_for_user(conn, user))
            .await?)
    }

    /// Removes one of the caller's links: that provider account stops signing in.
    pub async fn unlink(
        &self,
        principal: &Principal,
        id: IdentityId,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        super::access::require_session(principal)?;
        let user = principal.user_id;
        super::write(&self.inner.store, move |tx| {
            let now = now_rfc3339();
            let removed = identities::unlink(tx, user, id, &now)?
                .ok_or(ServiceError::NotFound("linked identity"))?;
            let org = users::activity_org(tx, user)?.map(|o| o.to_string());
            Journal::new(tx, &ctx, Some(user.to_string()), org).audit(
                "identity.unlinked",
                "identity",
                id,
                json!({"provider": removed.provider}),
            )?;
            Ok(())
        })
        .await
    }

    /// A provider's JSON document (discovery, keys), without following redirects.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        token: Option<&str>,
    ) -> Result<T, String> {
        let mut request = self
            .inner
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        github::read_json(response).await
    }
}

/// The account rules, in the callback's transaction (see the module comment). A refusal
/// comes before anything is written; an error (a store error, or a just-in-time account
/// the plan's members limit has no seat for) rolls everything back.
fn resolve_account(
    tx: &rusqlite::Connection,
    provider: &SsoProvider,
    account: &ExternalAccount,
    registration: Registration,
    plans: &super::plans::PlanRules,
    ctx: &RequestContext,
) -> Result<Result<UserId, Refusal>, ServiceError> {
    let name = &provider.display_name;
    let now = now_rfc3339();
    let email = account.email.as_deref().map(str::trim).unwrap_or("");
    if !email.is_empty() && !provider.allows_email(email) {
        return Ok(Err(Refusal::new(
            "SSO_DOMAIN_NOT_ALLOWED",
            format!("{name} accounts of this e-mail domain may not sign in here"),
        )));
    }
    if let Some(link) = identities::find_by_subject(tx, &provider.id, &account.subject)? {
        if link.unlinked_at.is_some() {
            return Ok(Err(Refusal::new(
                "SSO_IDENTITY_UNLINKED",
                format!(
                    "this {name} account was unlinked from its sealbox account; sign in with your \
                     password and link it again from the account page"
                ),
            )
            .about(link.user_id)));
        }
        let user = users::find(tx, link.user_id)?;
        if !user.is_some_and(|u| u.status == UserStatus::Active) {
            return Ok(Err(Refusal::new(
                "SSO_ACCOUNT_DISABLED",
                "the account is disabled",
            )
            .about(link.user_id)));
        }
        identities::touch(tx, link.id, email, &now)?;
        return Ok(Ok(link.user_id));
    }

    // No link yet: everything below rests on the e-mail address.
    let mut problems = Vec::new();
    super::identity::check_email(email, "email", &mut problems);
    if email.is_empty() || !account.email_verified || !problems.is_empty() {
        return Ok(Err(Refusal::new(
            "SSO_EMAIL_UNVERIFIED",
            format!(
                "{name} did not confirm a verified e-mail address for this account, so it cannot \
                 be matched to or create a sealbox account"
            ),
        )));
    }
    if let Some(existing) = users::find_by_email(tx, email)? {
        if !provider.link_by_email {
            return Ok(Err(Refusal::new(
                "SSO_ACCOUNT_EXISTS",
                format!(
                    "an account with this e-mail address already exists: sign in with your \
                     password, then link {name} from your account page"
                ),
            )
            .about(existing.id)));
        }
        if existing.status != UserStatus::Active {
            return Ok(Err(Refusal::new(
                "SSO_ACCOUNT_DISABLED",
                "the account is disabled",
            )
            .about(existing.id)));
        }
        let id = identities::link(
            tx,
            IdentityId::new(),
            existing.id,
            &provider.id,
            &account.subject,
            email,
            &now,
        )?
        .ok_or(StoreError::Conflict)?;
        let org = users::activity_org(tx, existing.id)?.map(|o| o.to_string());
        Journal::new(tx, ctx, Some(existing.id.to_string()), org).audit(
            "identity.linked",
            "identity",
            id,
            json!({"provider": provider.id, "via": "verified_email"}),
        )?;
        return Ok(Ok(existing.id));
    }

    // A new account, just in time.
    if registration == Registration::Closed {
        return Ok(Err(Refusal::new(
            "SSO_REGISTRATION_CLOSED",
            "there is no account for this e-mail address and registration is closed on this \
             server; ask an admin for an account",
        )));
    }
    let org = if provider.organization.is_empty() {
        None
    } else {
        organizations::find_by_slug(tx, &provider.organization)?
    };
    let Some(org) = org.filter(|o| o.status == "active") else {
        return Ok(Err(Refusal::new(
            "SSO_NO_ACCOUNT",
            format!(
                "there is no account for this e-mail address, and {name} does not create \
                 accounts here; ask an admin"
            ),
        )));
    };
    plans.check_members_in(tx, org.id)?;
    let role = provider.role_for(&account.groups);
    let user_id = UserId::new();
    let display_name: String = account
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email))
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    users::insert(
        tx,
        &NewUser {
            id: user_id,
            email,
            display_name: &display_name,
            password_hash: None,
            is_instance_admin: false,
            default_org_id: Some(org.id),
            now: &now,
        },
    )?;
    organizations::add_member(tx, org.id, user_id, &role, &now)?;
    let identity = identities::link(
        tx,
        IdentityId::new(),
        user_id,
        &provider.id,
        &account.subject,
        email,
        &now,
    )?
    .ok_or(StoreError::Conflict)?;
    let journal = Journal::new(tx, ctx, Some(user_id.to_string()), Some(org.id.to_string()));
    journal.audit(
        "user.registered",
        "user",
        user_id,
        json!({"via": "sso", "provider": provider.id}),
    )?;
    journal.audit(
        "member.added",
        "user",
        user_id,
        json!({"role": role, "via": "sso"}),
    )?;
    journal.audit(
        "identity.linked",
        "identity",
        identity,
        json!({"provider": provider.id, "via": "provisioning"}),
    )?;
    journal.event("user.created", json!({"userId": user_id, "email": email}))?;
    journal.event(
        "member.added",
        json!({"organizationId": org.id, "userId": user_id, "role": role}),
    )?;
    tracing::info!(user = %user_id, provider = %provider.id, "account provisioned by an identity provider");
    Ok(Ok(user_id))
}
