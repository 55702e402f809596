//! Invitations into an organization: a single-use token bound to an email address and a
//! role, with an expiry. Accepting one (signed in, or while registering) joins the
//! organization with that role.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;
use zeroize::Zeroizing;

use super::access;
use super::access::role_grants;
use super::identity::check_email;
use super::{FieldError, Journal, RequestContext, ServiceError, invalid_if_any, read, write};
use crate::auth::{BuiltinRole, Permission, Principal, opaque};
use crate::config::MAX_INVITE_TTL_HOURS;
use crate::ids::{InviteId, OrgId, UserId, format_rfc3339, now_rfc3339};
use crate::mail::Mailer;
use crate::store::invites::{self, Invite};
use crate::store::{Store, StoreError, organizations, users};

/// The page of the web UI that accepts an invite.
pub const INVITE_PAGE_PATH: &str = "/invite";

/// A new invite. When mail is on, the token went to the invitee only; otherwise it is
/// returned here for the inviter to pass on.
pub struct IssuedInvite {
    pub invite: Invite,
    pub mailed: bool,
    pub token: Option<Zeroizing<String>>,
    pub link: Option<Zeroizing<String>>,
}

#[derive(Clone)]
pub struct InviteService {
    store: Store,
    default_ttl_hours: u32,
    mailer: Option<Mailer>,
    /// Base of the links, without a trailing slash.
    public_url: Arc<str>,
    /// The members limit of the organization's plan, at invite and at accept.
    plans: super::plans::PlanRules,
}

impl std::fmt::Debug for InviteService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteService")
            .field("mailer", &self.mailer)
            .finish_non_exhaustive()
    }
}

impl InviteService {
    pub fn new(
        store: Store,
        default_ttl_hours: u32,
        mailer: Option<Mailer>,
        public_url: &str,
    ) -> Self {
        Self {
            store,
            default_ttl_hours,
            mailer,
            public_url: public_url.trim_end_matches('/').into(),
            plans: super::plans::PlanRules::default(),
        }
    }

    /// Checks invites and their acceptance against the organization's plan.
    pub fn with_plans(mut self, plans: super::plans::PlanRules) -> Self {
        self.plans = plans;
        self
    }

    fn link(&self, token: &str) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{}{INVITE_PAGE_PATH}?token={token}",
            self.public_url
        ))
    }

    /// Invites `email` into `org` with `role` (default `member`), valid for `ttl_hours`.
    pub async fn create(
        &self,
        principal: &Principal,
        org: OrgId,
        email: String,
        role: Option<String>,
        ttl_hours: Option<u32>,
        ctx: RequestContext,
    ) -> Result<IssuedInvite, ServiceError> {
        let mut problems = Vec::new();
        check_email(&email, "email", &mut problems);
        let ttl_hours = ttl_hours.unwrap_or(self.default_ttl_hours);
        if !(1..=MAX_INVITE_TTL_HOURS).contains(&ttl_hours) {
            problems.push(FieldError::new(
                "expiresInHours",
                format!("must be between 1 and {MAX_INVITE_TTL_HOURS}"),
            ));
        }
        invalid_if_any(problems)?;
        let role = role.unwrap_or_else(|| BuiltinRole::Member.key().to_owned());
        let email = email.trim().to_owned();
        let principal = principal.clone();
        let user = principal.user_id;
        let token = opaque::generate();
        let token_hash = token.hash;
        let plans = self.plans.clone();
        let (invite, org_name) = write(&self.store, move |tx| {
            let access = access::in_org(tx, &principal, org)?;
            access.require(Permission::InvitesWrite)?;
            plans.check_members_in(tx, org)?;
            let granted = role_grants(tx, org, &role)?.ok_or_else(|| {
                ServiceError::Invalid(vec![FieldError::new("role", "no such role in this organization")])
            })?;
            access.require_at_least(granted)?;
            if let Some(existing) = users::find_by_email(tx, &email)?
                && organizations::find_member(tx, org, existing.id)?.is_some()
            {
                return Err(ServiceError::Conflict(
                    "this address already belongs to a member of the organization".into(),
                ));
            }
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let expires = time::OffsetDateTime::now_utc() + Duration::from_secs(u64::from(ttl_hours) * 3600);
            let invite = Invite {
                id: InviteId::new(),
                org_id: org,
                email,
                role,
                invited_by: Some(user),
                created_at: journal.now().to_owned(),
                expires_at: format_rfc3339(expires),
                accepted_at: None,
                revoked_at: None,
            };
            invites::insert(tx, &invite, &token_hash)?;
            journal.audit("invite.created", "invite", invite.id, json!({"email": invite.email, "role": invite.role}))?;
            journal.event(
                "invite.created",
                json!({"organizationId": org, "inviteId": invite.id, "email": invite.email, "role": invite.role, "expiresAt": invite.expires_at}),
            )?;
            let org_name = organizations::find(tx, org)?.map(|o| o.name).unwrap_or_default();
            Ok((invite, org_name))
        })
        .await?;
        let link = self.link(&token.value);
        let Some(mailer) = self.mailer.clone() else {
            return Ok(IssuedInvite {
                invite,
                mailed: false,
                token: Some(token.value),
                link: Some(link),
            });
        };
        let (to, expires, invite_id) = (invite.email.clone(), invite.expires_at.clone(), invite.id);
        tokio::spawn(async move {
            let body = invite_mail_body(&org_name, &link, &expires);
            let subject = format!("You are invited to {org_name} on sealbox");
            match mailer.send(&to, &subject, body).await {
                Ok(()) => tracing::info!(invite = %invite_id, "invite mailed"),
                // The error names the server and its answer, never the link.
                Err(e) => {
                    tracing::warn!(invite = %invite_id, error = %e, "could not mail the invite")
                }
            }
        });
        Ok(IssuedInvite {
            invite,
            mailed: true,
            token: None,
            link: None,
        })
    }

    /// The organization's invites that can still be accepted.
    pub async fn list(
        &self,
        principal: &Principal,
        org: OrgId,
    ) -> Result<Vec<Invite>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            access::in_org(conn, &principal, org)?.require(Permission::InvitesWrite)?;
            Ok(invites::list_open_for_org(conn, org, &now_rfc3339())?)
        })
        .await
    }

    /// Withdraws an invite that has not been accepted.
    pub async fn revoke(
        &self,
        principal: &Principal,
        org: OrgId,
        invite: InviteId,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_org(tx, &principal, org)?;
            access.require(Permission::InvitesWrite)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            if !invites::revoke_for_org(tx, org, invite, journal.now())? {
                return Err(ServiceError::NotFound("invite"));
            }
            journal.audit("invite.revoked", "invite", invite, json!({}))?;
            Ok(())
        })
        .await
    }

    /// Joins the signed-in caller to the organization of the invite.
    pub async fn accept(
        &self,
        principal: &Principal,
        token: String,
        ctx: RequestContext,
    ) -> Result<(OrgId, String), ServiceError> {
        super::access::require_session(principal)?;
        let user = principal.user_id;
        let token_hash = opaque::hash(&token);
        let plans = self.plans.clone();
        write(&self.store, move |tx| {
            let account = users::find(tx, user)?.ok_or(ServiceError::NotFound("user"))?;
            accept_in(tx, &token_hash, user, &account.email, &ctx, &plans)
        })
        .await
    }
}

/// The answer to a token that names no invite that can still be accepted.
pub(crate) const INVALID_INVITE: ServiceError =
    ServiceError::Unauthorized("the invite token is invalid, expired, revoked or already used");

fn is_live(invite: &Invite) -> bool {
    invite.accepted_at.is_none() && invite.revoked_at.is_none() && invite.expires_at > now_rfc3339()
}

/// Whether the token names an invite that can still be accepted.
pub(crate) fn is_open(conn: &Connection, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
    Ok(invites::find_by_token(conn, token_hash)?.is_some_and(|i| is_live(&i)))
}

/// Accepts the invite with this token for `user` (whose address is `email`) inside the
/// caller's transaction: checks it (and the members limit of the organization's plan),
/// adds the membership, marks it used and records both.
pub(crate) fn accept_in(
    tx: &Connection,
    token_hash: &[u8; 32],
    user: UserId,
    email: &str,
    ctx: &RequestContext,
    plans: &super::plans::PlanRules,
) -> Result<(OrgId, String), ServiceError> {
    const INVALID: ServiceError = INVALID_INVITE;
    let invite = invites::find_by_token(tx, token_hash)?
        .filter(is_live)
        .ok_or(INVALID)?;
    if users::email_key(&invite.email) != users::email_key(email) {
        return Err(ServiceError::Forbidden(
            "this invite was sent to another email address".into(),
        ));
    }
    let org = organizations::find(tx, invite.org_id)?.ok_or(INVALID)?;
    if role_grants(tx, org.id, &invite.role)?.is_none() {
        return Err(ServiceError::Conflict(
            "the role this invite grants no longer exists; ask for a new invite".into(),
        ));
    }
    if org.status != "active" {
        return Err(ServiceError::OrgSuspended);
    }
    plans.check_members_in(tx, org.id)?;
    let journal = Journal::new(tx, ctx, Some(user.to_string()), Some(org.id.to_string()));
    organizations::add_member(tx, org.id, user, &invite.role, journal.now()).map_err(
        |e| match e {
            StoreError::Conflict => {
                ServiceError::Conflict("you are already a member of this organization".into())
            }
            other => other.into(),
        },
    )?;
    if !invites::mark_accepted(tx, invite.id, user, journal.now())? {
        return Err(INVALID);
    }
    users::adopt_default_org(tx, user, org.id)?;
    journal.audit(
        "invite.accepted",
        "invite",
        invite.id,
        json!({"role": invite.role}),
    )?;
    journal.audit("member.added", "user", user, json!({"role": invite.role}))?;
    journal.event(
        "invite.accepted",
        json!({"organizationId": org.id, "inviteId": invite.id, "userId": user}),
    )?;
    journal.event(
        "member.added",
        json!({"organizationId": org.id, "userId": user, "role": invite.role}),
    )?;
    Ok((org.id, invite.role))
}

fn invite_mail_body(org_name: &str, link: &str, expires_at: &str) -> String {
    format!(
        "You are invited to join {org_name} on sealbox.\n\
         \n\
         Open this link to accept; it works once and expires at {expires_at}:\n\
         \n\
         {link}\n\
         \n\
         If you did not expect this invitation, ignore this mail.\n"
    )
}
