//! Invitations into an organization: a single-use token bound to an email address and a
//! role, with an expiry. Accepting one (signed in, or while registering) joins the
//! organization with that role.

use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;
use zeroize::Zeroizing;

use super::access;
use super::identity::check_email;
use super::organizations::role_grants;
use super::{FieldError, Journal, RequestContext, ServiceError, invalid_if_any, read, write};
use crate::auth::{BuiltinRole, Permission, Principal, opaque};
use crate::config::MAX_INVITE_TTL_HOURS;
use crate::ids::{InviteId, OrgId, UserId, format_rfc3339, now_rfc3339};
use crate::store::invites::{self, Invite};
use crate::store::{Store, organizations, users};

/// A new invite and its token, which exists only in this value and the link made of it.
pub struct IssuedInvite {
    pub invite: Invite,
    pub token: Zeroizing<String>,
}

#[derive(Clone, Debug)]
pub struct InviteService {
    store: Store,
    default_ttl_hours: u32,
}

impl InviteService {
    pub fn new(store: Store, default_ttl_hours: u32) -> Self {
        Self {
            store,
            default_ttl_hours,
        }
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
        let user = principal.user_id;
        let token = opaque::generate();
        let token_hash = token.hash;
        let invite = write(&self.store, move |tx| {
            let access = access::in_org(tx, user, org)?;
            access.require(Permission::InvitesWrite)?;
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
            Ok(invite)
        })
        .await?;
        Ok(IssuedInvite {
            invite,
            token: token.value,
        })
    }

    /// The organization's invites that can still be accepted.
    pub async fn list(
        &self,
        principal: &Principal,
        org: OrgId,
    ) -> Result<Vec<Invite>, ServiceError> {
        let user = principal.user_id;
        read(&self.store, move |conn| {
            access::in_org(conn, user, org)?.require(Permission::InvitesWrite)?;
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
        let user = principal.user_id;
        write(&self.store, move |tx| {
            let access = access::in_org(tx, user, org)?;
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
        let user = principal.user_id;
        let token_hash = opaque::hash(&token);
        write(&self.store, move |tx| {
            let account = users::find(tx, user)?.ok_or(ServiceError::NotFound("user"))?;
            accept_in(tx, &token_hash, user, &account.email, &ctx)
        })
        .await
    }
}

/// Accepts the invite with this token for `user` (whose address is `email`) inside the
/// caller's transaction: checks it, adds the membership, marks it used and records both.
pub(crate) fn accept_in(
    tx: &Connection,
    token_hash: &[u8; 32],
    user: UserId,
    email: &str,
    ctx: &RequestContext,
) -> Result<(OrgId, String), ServiceError> {
    const INVALID: ServiceError =
        ServiceError::Unauthorized("the invite token is invalid, expired, revoked or already used");
    let invite = invites::find_by_token(tx, token_hash)?.ok_or(INVALID)?;
    if invite.accepted_at.is_some()
        || invite.revoked_at.is_some()
        || invite.expires_at <= now_rfc3339()
    {
        return Err(INVALID);
    }
    if users::email_key(&invite.email) != users::email_key(email) {
        return Err(ServiceError::Forbidden(
            "this invite was sent to another email address".into(),
        ));
    }
    let org = organizations::find(tx, invite.org_id)?.ok_or(INVALID)?;
    if org.status != "active" {
        return Err(ServiceError::OrgSuspended);
    }
    let journal = Journal::new(tx, ctx, Some(user.to_string()), Some(org.id.to_string()));
    organizations::add_member(tx, org.id, user, &invite.role, journal.now()).map_err(
        |e| match e {
            crate::store::StoreError::Conflict => {
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
