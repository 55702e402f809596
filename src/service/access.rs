//! Who may do what in an organization. Resolved inside the transaction of each call, so a
//! membership change or a suspension takes effect on the very next request.

use rusqlite::Connection;

use super::ServiceError;
use crate::auth::{BuiltinRole, Permission, PermissionSet, Principal};
use crate::ids::{OrgId, RoleId, UserId};
use crate::store::{StoreError, organizations, roles, users};

/// A member acting in one organization, with the rights of their role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub user_id: UserId,
    pub org_id: OrgId,
    /// The member's role: a built-in role's name or a custom role's id.
    pub role: String,
    pub permissions: PermissionSet,
}

impl Access {
    /// Refuses with 403 naming the permission unless the member holds it.
    pub fn require(&self, permission: Permission) -> Result<(), ServiceError> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "missing the `{permission}` permission (granted by the role, and for API \
                 keys also by the key's scopes)"
            )))
        }
    }

    /// Refuses with 403 unless every permission of `granted` is one the member holds: no
    /// one hands out more than they have.
    pub fn require_at_least(&self, granted: PermissionSet) -> Result<(), ServiceError> {
        match granted.iter().find(|p| !self.permissions.contains(*p)) {
            None => Ok(()),
            Some(missing) => Err(ServiceError::Forbidden(format!(
                "you cannot grant `{missing}`, which your own role does not have"
            ))),
        }
    }

    pub fn org(&self) -> Option<String> {
        Some(self.org_id.to_string())
    }

    pub fn actor(&self) -> Option<String> {
        Some(self.user_id.to_string())
    }
}

/// The caller acting in `org`: an active member of an active organization. Not a member
/// (or a disabled one): 404, as if the organization did not exist. Suspended: 403
/// `ORG_SUSPENDED`.
/// An API key acts only in its own organization, with the intersection of its scopes
/// and its owner's role.
/// Whether the credential behind `principal` may still act: its session not revoked (or
/// its API key neither revoked nor expired) and its user active. Requests are checked
/// when they arrive (`http::authn`); this is for a response that outlives that check,
/// such as the message stream, which asks again on every read.
pub fn credential_still_valid(
    conn: &Connection,
    principal: &Principal,
) -> Result<bool, StoreError> {
    match &principal.credential {
        crate::auth::Credential::Session(session) => {
            Ok(
                crate::store::sessions::active_principal(conn, principal.user_id, *session)?
                    .is_some(),
            )
        }
        crate::auth::Credential::ApiKey(grant) => {
            crate::store::api_keys::usable(conn, grant.key_id, &crate::ids::now_rfc3339())
        }
    }
}

pub fn in_org(
    conn: &Connection,
    principal: &Principal,
    org: OrgId,
) -> Result<Access, ServiceError> {
    resolve(conn, principal, org, false)
}

/// As [`in_org`], but a suspended organization is no refusal: for lifting a suspension,
/// the one act its members may still do (and only with a session, since its keys stop).
pub fn in_org_even_if_suspended(
    conn: &Connection,
    principal: &Principal,
    org: OrgId,
) -> Result<Access, ServiceError> {
    resolve(conn, principal, org, true)
}

fn resolve(
    conn: &Connection,
    principal: &Principal,
    org: OrgId,
    allow_suspended: bool,
) -> Result<Access, ServiceError> {
    let user = principal.user_id;
    if principal.key().is_some_and(|key| key.org_id != org) {
        return Err(ServiceError::NotFound("organization"));
    }
    let member = organizations::member_access(conn, org, user)?
        .filter(|m| m.membership_status == "active")
        .ok_or(ServiceError::NotFound("organization"))?;
    if member.org_status != "active" && !allow_suspended {
        return Err(ServiceError::OrgSuspended);
    }
    let mut permissions = role_permissions(conn, org, &member.role)?;
    if let Some(key) = principal.key() {
        permissions = permissions.intersection(key.scopes);
    }
    Ok(Access {
        user_id: user,
        org_id: org,
        role: member.role,
        permissions,
    })
}

/// Whether a capability issued on behalf of `user` in `org` may still be used: a public
/// transfer link or download token (the sender), an upload token or upload URL (the
/// uploader), a file download link (the user it was issued to). Suspended organization:
/// 403 `ORG_SUSPENDED`. Membership removed or disabled, or account disabled or gone: 404
/// `what`, as if the object did not exist. Checked on every use, in the use's own read or
/// transaction, so a suspension or disablement stops everything issued before at once.
pub fn issuer_in_good_standing(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    what: &'static str,
) -> Result<(), ServiceError> {
    let member = organizations::member_access(conn, org, user)?
        .filter(|m| m.membership_status == "active")
        .ok_or(ServiceError::NotFound(what))?;
    if member.org_status != "active" {
        return Err(ServiceError::OrgSuspended);
    }
    let active = users::find(conn, user)?.is_some_and(|u| u.status == users::UserStatus::Active);
    if !active {
        return Err(ServiceError::NotFound(what));
    }
    Ok(())
}

/// The caller acting in the organization they asked for with `X-Organization-Id`, or else
/// their default organization (or, if that membership is gone, their oldest active one).
pub fn in_requested_org(conn: &Connection, principal: &Principal) -> Result<Access, ServiceError> {
    if let Some(org) = principal
        .requested_org
        .or(principal.key().map(|k| k.org_id))
    {
        return in_org(conn, principal, org);
    }
    let user = users::find(conn, principal.user_id)?.ok_or(ServiceError::NotFound("user"))?;
    let memberships = organizations::memberships_of(conn, principal.user_id)?;
    let active = |m: &&organizations::Membership| m.status == "active";
    let chosen = memberships
        .iter()
        .filter(active)
        .find(|m| Some(m.org_id) == user.default_org_id)
        .or_else(|| memberships.iter().find(active))
        .ok_or(ServiceError::NotFound("organization"))?;
    in_org(conn, principal, chosen.org_id)
}

/// The permissions of a role of `org`; a custom role that no longer exists grants nothing.
pub fn role_permissions(
    conn: &Connection,
    org: OrgId,
    role: &str,
) -> Result<PermissionSet, StoreError> {
    Ok(role_grants(conn, org, role)?.unwrap_or_default())
}

/// The permissions a role key grants in `org`: a built-in role's, or a custom role's
/// (unknown stored keys skipped); `None` if the organization has no such role.
pub fn role_grants(
    conn: &Connection,
    org: OrgId,
    role: &str,
) -> Result<Option<PermissionSet>, StoreError> {
    if let Some(builtin) = BuiltinRole::parse(role) {
        return Ok(Some(builtin.permissions()));
    }
    let Ok(id) = role.parse::<RoleId>() else {
        return Ok(None);
    };
    Ok(roles::find_for_org(conn, org, id)?.map(|r| permissions_of(&r.permissions)))
}

/// Stored permission keys as a set; keys this version does not know are skipped.
pub fn permissions_of(keys: &[String]) -> PermissionSet {
    keys.iter().filter_map(|k| Permission::parse(k)).collect()
}

/// Refuses API keys where only a signed-in person may act: their sessions, their
/// password and profile, joining or founding organizations. A leaked key must not be
/// able to take over the account it belongs to.
pub fn require_session(principal: &Principal) -> Result<(), ServiceError> {
    match principal.session_id() {
        Some(_) => Ok(()),
        None => Err(ServiceError::Forbidden(
            "API keys cannot manage the account; sign in to do this".into(),
        )),
    }
}
