//! Organizations, their members, roles and suspension. Every call resolves the caller's
//! access inside its own transaction (see `access`), so what it checks is what it changes.

use serde_json::json;

use super::access;
use super::identity::check_name;
use super::{FieldError, Journal, RequestContext, ServiceError, invalid_if_any, read, write};
use crate::auth::{BuiltinRole, Permission, PermissionSet, Principal};
use crate::crypto::random_bytes;
use crate::ids::{OrgId, RoleId, UserId};
use crate::store::organizations::{self, Member, OrgChanges, Organization};
use crate::store::roles::{self, Role};
use crate::store::{Store, StoreError, api_keys, users};

/// `organizations.suspended_by` of a suspension by its owners (lifted by them too).
pub const SUSPENDED_BY_OWNER: &str = "owner";
/// `organizations.suspended_by` of a suspension made with instance-admin power.
pub const SUSPENDED_BY_INSTANCE_ADMIN: &str = "instance_admin";
const MAX_SLUG_CHARS: usize = 63;
const MAX_SETTINGS_BYTES: usize = 16 * 1024;
const MAX_ROLE_DESCRIPTION_CHARS: usize = 500;
/// As the request schema says; there are fewer permissions than this.
const MAX_ROLE_PERMISSIONS: usize = 64;

/// An organization and the caller's role in it (none for instance admins looking in).
#[derive(Debug, Clone)]
pub struct OrgWithRole {
    pub org: Organization,
    pub role: Option<String>,
}

/// What `PATCH /v1/organizations/{id}` may change.
#[derive(Debug, Default)]
pub struct OrgUpdate {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub settings: Option<serde_json::Value>,
}

/// What `PATCH /v1/organizations/{id}/members/{userId}` may change.
#[derive(Debug, Default)]
pub struct MemberUpdate {
    pub role: Option<String>,
    pub status: Option<String>,
}

/// A role as listed: built-in or custom, with its permissions.
#[derive(Debug, Clone)]
pub struct RoleInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub permissions: PermissionSet,
    pub built_in: bool,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl RoleInfo {
    fn builtin(role: BuiltinRole) -> Self {
        Self {
            id: role.key().into(),
            name: role.key().into(),
            description: role.description().into(),
            permissions: role.permissions(),
            built_in: true,
            created_at: None,
            updated_at: None,
        }
    }

    fn custom(role: Role) -> Self {
        Self {
            id: role.id.to_string(),
            permissions: access::permissions_of(&role.permissions),
            name: role.name,
            description: role.description,
            built_in: false,
            created_at: Some(role.created_at),
            updated_at: Some(role.updated_at),
        }
    }
}

/// A custom role's fields, as created or replaced.
#[derive(Debug, Default)]
pub struct RoleInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub permissions: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub struct OrgService {
    store: Store,
    plans: super::plans::PlanRules,
}

impl OrgService {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            plans: super::plans::PlanRules::default(),
        }
    }

    /// The same service, enforcing the plans' members limit when a member is enabled again.
    pub fn with_plans(mut self, plans: super::plans::PlanRules) -> Self {
        self.plans = plans;
        self
    }

    /// Creates an organization with the caller as its owner.
    pub async fn create(
        &self,
        principal: &Principal,
        name: String,
        slug: Option<String>,
        ctx: RequestContext,
    ) -> Result<OrgWithRole, ServiceError> {
        access::require_session(principal)?;
        let owner = principal.user_id;
        let org = self.create_org(Some(owner), name, slug, ctx).await?;
        Ok(OrgWithRole {
            org,
            role: Some(BuiltinRole::Owner.key().into()),
        })
    }

    /// Creates an organization; with `owner`, that user is its first member and owner.
    pub(crate) async fn create_org(
        &self,
        owner: Option<UserId>,
        name: String,
        slug: Option<String>,
        ctx: RequestContext,
    ) -> Result<Organization, ServiceError> {
        let mut problems = Vec::new();
        check_name(&name, "name", &mut problems);
        if let Some(slug) = &slug {
            check_slug(slug, "slug", &mut problems);
        }
        invalid_if_any(problems)?;
        let name = name.trim().to_owned();
        write(&self.store, move |tx| {
            let org_id = OrgId::new();
            let slug = match slug {
                Some(slug) if organizations::slug_taken(tx, &slug)? => {
                    return Err(ServiceError::Conflict(format!(
                        "the slug `{slug}` is taken by another organization"
                    )));
                }
                Some(slug) => slug,
                None => free_slug(tx, &name)?,
            };
            let journal = Journal::new(
                tx,
                &ctx,
                owner.map(|u| u.to_string()),
                Some(org_id.to_string()),
            );
            organizations::insert(tx, org_id, &name, &slug, journal.now())?;
            journal.audit(
                "organization.created",
                "organization",
                org_id,
                json!({"name": name, "slug": slug}),
            )?;
            journal.event(
                "organization.created",
                json!({"organizationId": org_id, "name": name, "slug": slug}),
            )?;
            if let Some(owner) = owner {
                organizations::add_member(
                    tx,
                    org_id,
                    owner,
                    BuiltinRole::Owner.key(),
                    journal.now(),
                )?;
                crate::store::users::adopt_default_org(tx, owner, org_id)?;
                journal.audit("member.added", "user", owner, json!({"role": "owner"}))?;
                journal.event(
                    "member.added",
                    json!({"organizationId": org_id, "userId": owner, "role": "owner"}),
                )?;
            }
            Ok(organizations::find(tx, org_id)?.expect("inserted in this transaction"))
        })
        .await
    }

    /// The organizations the caller belongs to, with their role in each. An API key sees
    /// only its own organization, and only with `org:read`.
    pub async fn list_mine(&self, principal: &Principal) -> Result<Vec<OrgWithRole>, ServiceError> {
        let user = principal.user_id;
        let principal = principal.clone();
        read(&self.store, move |conn| {
            if let Some(key) = principal.key() {
                let access = access::in_org(conn, &principal, key.org_id)?;
                access.require(Permission::OrgRead)?;
                let org = organizations::find(conn, key.org_id)?
                    .ok_or(ServiceError::NotFound("organization"))?;
                return Ok(vec![OrgWithRole {
                    org,
                    role: Some(access.role),
                }]);
            }
            let mut orgs = Vec::new();
            for membership in organizations::memberships_of(conn, user)? {
                if membership.status != "active" {
                    continue;
                }
                if let Some(org) = organizations::find(conn, membership.org_id)? {
                    orgs.push(OrgWithRole {
                        org,
                        role: Some(membership.role),
                    });
                }
            }
            Ok(orgs)
        })
        .await
    }

    pub async fn get(
        &self,
        principal: &Principal,
        org: OrgId,
    ) -> Result<OrgWithRole, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_org(conn, &principal, org)?;
            access.require(Permission::OrgRead)?;
            let org =
                organizations::find(conn, org)?.ok_or(ServiceError::NotFound("organization"))?;
            Ok(OrgWithRole {
                org,
                role: Some(access.role),
            })
        })
        .await
    }

    pub async fn update(
        &self,
        principal: &Principal,
        org: OrgId,
        update: OrgUpdate,
        ctx: RequestContext,
    ) -> Result<OrgWithRole, ServiceError> {
        let mut problems = Vec::new();
        if let Some(name) = &update.name {
            check_name(name, "name", &mut problems);
        }
        if let Some(slug) = &update.slug {
            check_slug(slug, "slug", &mut problems);
        }
        let settings = match &update.settings {
            Some(value @ serde_json::Value::Object(_)) => {
                let text = value.to_string();
                if text.len() > MAX_SETTINGS_BYTES {
                    problems.push(FieldError::new(
                        "settings",
                        format!("must be at most {MAX_SETTINGS_BYTES} bytes of JSON"),
                    ));
                }
                Some(text)
            }
            Some(_) => {
                problems.push(FieldError::new("settings", "must be a JSON object"));
                None
            }
            None => None,
        };
        invalid_if_any(problems)?;
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_org(tx, &principal, org)?;
            access.require(Permission::OrgWrite)?;
            let name = update.name.as_deref().map(str::trim);
            let changes = OrgChanges {
                name,
                slug: update.slug.as_deref(),
                settings: settings.as_deref(),
            };
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            organizations::update(tx, org, &changes, journal.now()).map_err(|e| match e {
                StoreError::Conflict => {
                    ServiceError::Conflict("the slug is taken by another organization".into())
                }
                other => other.into(),
            })?;
            let changed: Vec<&str> = [
                ("name", changes.name.is_some()),
                ("slug", changes.slug.is_some()),
                ("settings", changes.settings.is_some()),
            ]
            .into_iter()
            .filter_map(|(field, set)| set.then_some(field))
            .collect();
            journal.audit(
                "organization.updated",
                "organization",
                org,
                json!({"changed": changed}),
            )?;
            journal.event(
                "organization.updated",
                json!({"organizationId": org, "changed": changed}),
            )?;
            let org =
                organizations::find(tx, org)?.ok_or(ServiceError::NotFound("organization"))?;
            Ok(OrgWithRole {
                org,
                role: Some(access.role),
            })
        })
        .await
    }

    /// Suspends (or unsuspends) an organization: a member holding `org:suspend` (owners),
    /// acting in it like any other call (an API key only in its own organization and
    /// with its scopes), or a caller with instance-admin power. A suspension made with
    /// instance-admin power can only be lifted with it: owners cannot undo it.
    pub async fn set_suspended(
        &self,
        principal: &Principal,
        org: OrgId,
        suspended: bool,
        ctx: RequestContext,
    ) -> Result<OrgWithRole, ServiceError> {
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let by_instance_admin = principal.is_instance_admin;
            let role = if by_instance_admin {
                organizations::member_access(tx, org, principal.user_id)?
                    .filter(|m| m.membership_status == "active")
                    .map(|m| m.role)
            } else {
                let access = access::in_org_even_if_suspended(tx, &principal, org)?;
                access.require(Permission::OrgSuspend)?;
                Some(access.role)
            };
            let current =
                organizations::find(tx, org)?.ok_or(ServiceError::NotFound("organization"))?;
            if !suspended
                && !by_instance_admin
                && current.suspended_by.as_deref() == Some(SUSPENDED_BY_INSTANCE_ADMIN)
            {
                return Err(ServiceError::Forbidden(
                    "an instance admin suspended this organization; only an instance admin \
                     can lift the suspension"
                        .into(),
                ));
            }
            let journal = Journal::new(
                tx,
                &ctx,
                Some(principal.user_id.to_string()),
                Some(org.to_string()),
            );
            let suspended_by = suspended.then_some(if by_instance_admin {
                SUSPENDED_BY_INSTANCE_ADMIN
            } else {
                SUSPENDED_BY_OWNER
            });
            if organizations::set_suspended_by(tx, org, suspended_by, journal.now())? {
                let action = if suspended {
                    "organization.suspended"
                } else {
                    "organization.unsuspended"
                };
                journal.audit(
                    action,
                    "organization",
                    org,
                    json!({"byInstanceAdmin": by_instance_admin}),
                )?;
                let event = if suspended {
                    "organization.suspended"
                } else {
                    "organization.updated"
                };
                let status = if suspended { "suspended" } else { "active" };
                journal.event(event, json!({"organizationId": org, "status": status}))?;
            }
            let org =
                organizations::find(tx, org)?.ok_or(ServiceError::NotFound("organization"))?;
            Ok(OrgWithRole { org, role })
        })
        .await
    }

    pub async fn members(
        &self,
        principal: &Principal,
        org: OrgId,
    ) -> Result<Vec<Member>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            access::in_org(conn, &principal, org)?.require(Permission::OrgRead)?;
            Ok(organizations::members(conn, org)?)
        })
        .await
    }

    /// Changes a member's role or status. Nobody acts on a member whose role grants more
    /// than their own, nor grants a role above their own; the last owner stays an owner.
    pub async fn update_member(
        &self,
        principal: &Principal,
        org: OrgId,
        target: UserId,
        update: MemberUpdate,
        ctx: RequestContext,
    ) -> Result<Member, ServiceError> {
        let mut problems = Vec::new();
        if let Some(status) = &update.status
            && !matches!(status.as_str(), "active" | "disabled")
        {
            problems.push(FieldError::new("status", "must be `active` or `disabled`"));
        }
        invalid_if_any(problems)?;
        let principal = principal.clone();
        let plans = self.plans.clone();
        write(&self.store, move |tx| {
            let access = access::in_org(tx, &principal, org)?;
            access.require(Permission::MembersWrite)?;
            let member = organizations::find_member(tx, org, target)?.ok_or(ServiceError::NotFound("member"))?;
            access.require_at_least(access::role_permissions(tx, org, &member.role)?)?;
            let role = match &update.role {
                Some(role) => {
                    let granted = access::role_grants(tx, org, role)?.ok_or_else(|| {
                        ServiceError::Invalid(vec![FieldError::new("role", "no such role in this organization")])
                    })?;
                    access.require_at_least(granted)?;
                    role.clone()
                }
                None => member.role.clone(),
            };
            let status = update.status.clone().unwrap_or_else(|| member.status.clone());
            if status == "active" && member.status != "active" {
                // Enabling a member again takes a seat, as an accepted invite does.
                plans.check_members_in(tx, org)?;
            }
            let stays_owner = role == BuiltinRole::Owner.key() && status == "active";
            if member.role == BuiltinRole::Owner.key() && member.status == "active" && !stays_owner {
                ensure_not_last_owner(tx, org)?;
            }
            organizations::set_member(tx, org, target, &role, &status)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            if role != member.role {
                journal.audit("member.role_changed", "user", target, json!({"from": member.role, "to": role}))?;
                journal.event("member.role_changed", json!({"organizationId": org, "userId": target, "from": member.role, "to": role}))?;
            }
            if status != member.status {
                journal.audit("member.status_changed", "user", target, json!({"from": member.status, "to": status}))?;
            }
            Ok(organizations::find_member(tx, org, target)?.expect("updated in this transaction"))
        })
        .await
    }

    /// Removes a member (or lets a member leave), under the same rules as a role change.
    pub async fn remove_member(
        &self,
        principal: &Principal,
        org: OrgId,
        target: UserId,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let principal = principal.clone();
        let user = principal.user_id;
        write(&self.store, move |tx| {
            let access = access::in_org(tx, &principal, org)?;
            let member = organizations::find_member(tx, org, target)?
                .ok_or(ServiceError::NotFound("member"))?;
            if target != user {
                access.require(Permission::MembersWrite)?;
                access.require_at_least(access::role_permissions(tx, org, &member.role)?)?;
            }
            if member.role == BuiltinRole::Owner.key() && member.status == "active" {
                ensure_not_last_owner(tx, org)?;
            }
            organizations::remove_member(tx, org, target)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            // The membership ends everything it gave: the member's keys here stop now (a
            // later rejoin does not revive them), and their account-level activity no
            // longer lands in this organization's audit log and webhooks.
            let revoked = api_keys::revoke_all_for_member(tx, org, target, journal.now())?;
            users::repoint_default_org(tx, target, org)?;
            journal.audit(
                "member.removed",
                "user",
                target,
                json!({"role": member.role, "revokedApiKeys": revoked.len()}),
            )?;
            journal.event(
                "member.removed",
                json!({"organizationId": org, "userId": target}),
            )?;
            for key in &revoked {
                super::api_keys::record_revoked(&journal, key, Some("member_removed"))?;
            }
            Ok(())
        })
        .await
    }

    /// The built-in roles and the custom roles of the caller's organization.
    pub async fn roles(&self, principal: &Principal) -> Result<Vec<RoleInfo>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::OrgRead)?;
            let mut all: Vec<RoleInfo> = BuiltinRole::ALL
                .into_iter()
                .map(RoleInfo::builtin)
                .collect();
            all.extend(
                roles::list_for_org(conn, access.org_id)?
                    .into_iter()
                    .map(RoleInfo::custom),
            );
            Ok(all)
        })
        .await
    }

    pub async fn role(&self, principal: &Principal, id: String) -> Result<RoleInfo, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::OrgRead)?;
            find_role(conn, access.org_id, &id)
        })
        .await
    }

    pub async fn create_role(
        &self,
        principal: &Principal,
        input: RoleInput,
        ctx: RequestContext,
    ) -> Result<RoleInfo, ServiceError> {
        let (name, description, permissions) = check_role(
            input.name.unwrap_or_default(),
            input.description.unwrap_or_default(),
            input.permissions.unwrap_or_default(),
        )?;
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::RolesWrite)?;
            access.require_at_least(permissions)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let role = Role {
                id: RoleId::new(),
                org_id: access.org_id,
                name,
                description,
                permissions: permissions.keys(),
                created_at: journal.now().to_owned(),
                updated_at: journal.now().to_owned(),
            };
            roles::insert(tx, &role).map_err(role_name_conflict)?;
            journal.audit(
                "role.created",
                "role",
                role.id,
                json!({"name": role.name, "permissions": role.permissions}),
            )?;
            Ok(RoleInfo::custom(role))
        })
        .await
    }

    pub async fn update_role(
        &self,
        principal: &Principal,
        id: String,
        input: RoleInput,
        ctx: RequestContext,
    ) -> Result<RoleInfo, ServiceError> {
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::RolesWrite)?;
            let mut role = find_custom_role(tx, access.org_id, &id)?;
            let (name, description, permissions) = check_role(
                input.name.unwrap_or(role.name.clone()),
                input.description.unwrap_or(role.description.clone()),
                input.permissions.unwrap_or(role.permissions.clone()),
            )?;
            access.require_at_least(RoleInfo::custom(role.clone()).permissions)?;
            access.require_at_least(permissions)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            role.name = name;
            role.description = description;
            role.permissions = permissions.keys();
            role.updated_at = journal.now().to_owned();
            roles::update(tx, &role).map_err(role_name_conflict)?;
            journal.audit(
                "role.updated",
                "role",
                role.id,
                json!({"name": role.name, "permissions": role.permissions}),
            )?;
            Ok(RoleInfo::custom(role))
        })
        .await
    }

    /// Deletes a custom role that no member holds.
    pub async fn delete_role(
        &self,
        principal: &Principal,
        id: String,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::RolesWrite)?;
            let role = find_custom_role(tx, access.org_id, &id)?;
            access.require_at_least(RoleInfo::custom(role.clone()).permissions)?;
            let holders = organizations::count_with_role(tx, access.org_id, &role.id.to_string())?;
            if holders > 0 {
                return Err(ServiceError::Conflict(format!(
                    "the role is assigned to {holders} member(s); give them another role first"
                )));
            }
            roles::delete_for_org(tx, access.org_id, role.id)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit("role.deleted", "role", role.id, json!({"name": role.name}))?;
            Ok(())
        })
        .await
    }
}

fn ensure_not_last_owner(conn: &rusqlite::Connection, org: OrgId) -> Result<(), ServiceError> {
    if organizations::count_active_owners(conn, org)? <= 1 {
        return Err(ServiceError::Conflict(
            "the last owner cannot be demoted or removed; make someone else an owner first".into(),
        ));
    }
    Ok(())
}

fn find_role(conn: &rusqlite::Connection, org: OrgId, id: &str) -> Result<RoleInfo, ServiceError> {
    if let Some(builtin) = BuiltinRole::parse(id) {
        return Ok(RoleInfo::builtin(builtin));
    }
    Ok(RoleInfo::custom(find_custom_role(conn, org, id)?))
}

fn find_custom_role(
    conn: &rusqlite::Connection,
    org: OrgId,
    id: &str,
) -> Result<Role, ServiceError> {
    if BuiltinRole::parse(id).is_some() {
        return Err(ServiceError::Forbidden(
            "built-in roles cannot be changed or deleted".into(),
        ));
    }
    let id = id
        .parse::<RoleId>()
        .map_err(|_| ServiceError::NotFound("role"))?;
    roles::find_for_org(conn, org, id)?.ok_or(ServiceError::NotFound("role"))
}

fn role_name_conflict(err: StoreError) -> ServiceError {
    match err {
        StoreError::Conflict => {
            ServiceError::Conflict("the organization already has a role with this name".into())
        }
        other => other.into(),
    }
}

fn check_role(
    name: String,
    description: String,
    permissions: Vec<String>,
) -> Result<(String, String, PermissionSet), ServiceError> {
    let mut problems = Vec::new();
    check_name(&name, "name", &mut problems);
    if BuiltinRole::parse(&name.trim().to_lowercase()).is_some() {
        problems.push(FieldError::new("name", "is the name of a built-in role"));
    }
    if description.chars().count() > MAX_ROLE_DESCRIPTION_CHARS {
        problems.push(FieldError::new(
            "description",
            format!("must be at most {MAX_ROLE_DESCRIPTION_CHARS} characters"),
        ));
    }
    if permissions.len() > MAX_ROLE_PERMISSIONS {
        problems.push(FieldError::new(
            "permissions",
            format!("at most {MAX_ROLE_PERMISSIONS} entries"),
        ));
    }
    for (index, key) in permissions.iter().enumerate() {
        if Permission::parse(key).is_none() {
            problems.push(FieldError::new(
                format!("permissions[{index}]"),
                format!("`{key}` is not a permission (see GET /v1/permissions)"),
            ));
        }
    }
    invalid_if_any(problems)?;
    let set = PermissionSet::from_keys(&permissions).expect("every key was checked");
    Ok((name.trim().to_owned(), description.trim().to_owned(), set))
}

/// Slugs: 2 to 63 lower-case letters, digits and inner hyphens, as in a host name label.
fn check_slug(slug: &str, path: &str, problems: &mut Vec<FieldError>) {
    let valid = (2..=MAX_SLUG_CHARS).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if !valid {
        problems.push(FieldError::new(
            path,
            "must be 2 to 63 lower-case letters, digits and hyphens, not starting or ending with a hyphen",
        ));
    }
}

/// A slug derived from `name` that no organization uses yet.
pub(crate) fn free_slug(conn: &rusqlite::Connection, name: &str) -> Result<String, StoreError> {
    let mut base = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            base.push(c);
        } else if !base.ends_with('-') && !base.is_empty() {
            base.push('-');
        }
    }
    let mut base: String = base.trim_end_matches('-').chars().take(40).collect();
    base = base.trim_end_matches('-').to_owned();
    if base.len() < 2 {
        base = "org".into();
    }
    let mut candidate = base.clone();
    while organizations::slug_taken(conn, &candidate)? {
        let suffix: [u8; 3] = random_bytes();
        candidate = format!("{base}-{}", hex(&suffix));
    }
    Ok(candidate)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_host_label_rules() {
        for ok in ["ab", "acme", "acme-labs-2", &"a".repeat(63)] {
            let mut problems = vec![];
            check_slug(ok, "slug", &mut problems);
            assert!(problems.is_empty(), "{ok}");
        }
        for bad in [
            "a",
            "-acme",
            "acme-",
            "Acme",
            "acme labs",
            "ac_me",
            &"a".repeat(64),
        ] {
            let mut problems = vec![];
            check_slug(bad, "slug", &mut problems);
            assert_eq!(problems.len(), 1, "{bad}");
        }
    }
}
