//! Instance administration: accounts and organizations created by an instance admin,
//! through `/admin/...` or `sealbox admin create-user` at the console.

use serde_json::json;
use zeroize::Zeroizing;

use super::access::role_grants;
use super::identity::{check_email, check_name, hash_password};
use super::organizations::{OrgService, free_slug};
use super::password_reset::{SET_LINK_TTL, issue_token};
use super::{FieldError, Journal, RequestContext, ServiceError, invalid_if_any, read, write};
use crate::auth::{ADMIN_SCOPE, BuiltinRole, Principal, password};
use crate::data_dir::DataDir;
use crate::ids::{OrgId, UserId};
use crate::store::organizations::{self, Member, Organization};
use crate::store::password_resets::Purpose;
use crate::store::status;
use crate::store::users::{self, NewUser, User};
use crate::store::{Store, StoreError};
use std::path::PathBuf;

/// An account to create.
pub struct NewAccount {
    pub email: String,
    pub display_name: String,
    /// Without one, the account gets a single-use link to choose it.
    pub password: Option<Zeroizing<String>>,
    pub is_instance_admin: bool,
}

/// Where a new account goes.
pub enum Placement {
    /// A new organization of this name, with the account as its owner.
    NewOrganization(String),
    /// An existing organization, with this role (`member` when absent).
    Organization { org: OrgId, role: Option<String> },
}

/// The account made, where it went, and the token of its set-password link if it was
/// created without a password.
pub struct CreatedAccount {
    pub user: User,
    pub org_id: OrgId,
    pub role: String,
    pub set_password_token: Option<Zeroizing<String>>,
}

#[derive(Clone, Debug)]
pub struct AdminService {
    store: Store,
    orgs: OrgService,
    status: Option<StatusSources>,
    plans: super::plans::PlanRules,
}

/// Where the status page's figures come from besides the database: the data directory
/// (free space) and the served certificate's file (expiry), read at each request so a
/// certificate reloaded on SIGHUP shows as served.
#[derive(Clone, Debug)]
pub struct StatusSources {
    pub data: DataDir,
    /// `off`, `self-signed` or `files`.
    pub tls_mode: &'static str,
    /// The PEM file of the served certificate chain; `None` with TLS off.
    pub cert_file: Option<PathBuf>,
}

/// What `GET /admin/status` reports.
#[derive(Debug)]
pub struct InstanceStatus {
    pub schema_version: i64,
    pub latest_schema_version: i64,
    pub disk: Option<DiskSpace>,
    pub tls_mode: &'static str,
    /// The PEM file of the served certificate (the HTTP layer, which owns TLS, reads its
    /// expiry); `None` with TLS off.
    pub cert_file: Option<PathBuf>,
    pub organizations: i64,
    pub users: i64,
    /// Webhook deliveries waiting for a (first or next) attempt.
    pub webhook_pending: i64,
    /// Of those, the ones due now or overdue.
    pub webhook_due: i64,
    /// Creation time of the oldest pending delivery.
    pub webhook_oldest_pending: Option<String>,
}

/// Space on the file system holding the data directory, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct DiskSpace {
    /// What an unprivileged process (sealbox) may still write.
    pub available: u64,
    pub total: u64,
}

impl AdminService {
    pub fn new(store: Store) -> Self {
        Self {
            orgs: OrgService::new(store.clone()),
            store,
            status: None,
            plans: super::plans::PlanRules::default(),
        }
    }

    /// The same service, enforcing the plans' members limit on accounts it adds to an
    /// existing organization.
    pub fn with_plans(mut self, plans: super::plans::PlanRules) -> Self {
        self.orgs = self.orgs.with_plans(plans.clone());
        self.plans = plans;
        self
    }

    /// The same service with what the status page reads besides the database.
    pub fn with_status(mut self, sources: StatusSources) -> Self {
        self.status = Some(sources);
        self
    }

    /// `GET /admin/status`: schema version, disk space, certificate, queue depth.
    pub async fn status(&self, principal: &Principal) -> Result<InstanceStatus, ServiceError> {
        require_instance_admin(principal)?;
        let now = super::webhooks::now_ms();
        let counts = read(&self.store, move |conn| Ok(status::counts(conn, now)?)).await?;
        let root = self.status.as_ref().map(|s| s.data.root().to_owned());
        // statvfs is a blocking call: off the async runtime. No figure rather than an
        // error when the file system will not say.
        let disk = tokio::task::spawn_blocking(move || {
            let v = rustix::fs::statvfs(root?.as_path()).ok()?;
            Some(DiskSpace {
                available: v.f_bavail.saturating_mul(v.f_frsize),
                total: v.f_blocks.saturating_mul(v.f_frsize),
            })
        })
        .await
        .ok()
        .flatten();
        Ok(InstanceStatus {
            schema_version: counts.schema_version,
            latest_schema_version: crate::store::LATEST_SCHEMA_VERSION,
            disk,
            tls_mode: self.status.as_ref().map_or("off", |s| s.tls_mode),
            cert_file: self.status.as_ref().and_then(|s| s.cert_file.clone()),
            organizations: counts.organizations,
            users: counts.users,
            webhook_pending: counts.webhook_pending,
            webhook_due: counts.webhook_due,
            webhook_oldest_pending: counts.webhook_oldest_pending,
        })
    }

    /// Creates an account, by an instance admin (`actor`) or the console (`None`).
    pub async fn create_account(
        &self,
        actor: Option<UserId>,
        account: NewAccount,
        placement: Placement,
        ctx: RequestContext,
    ) -> Result<CreatedAccount, ServiceError> {
        let mut problems = Vec::new();
        check_email(&account.email, "email", &mut problems);
        check_name(&account.display_name, "displayName", &mut problems);
        if let Some(password) = &account.password
            && let Err(message) = password::check_policy(password)
        {
            problems.push(FieldError::new("password", message));
        }
        if let Placement::NewOrganization(name) = &placement {
            check_name(name, "organizationName", &mut problems);
        }
        invalid_if_any(problems)?;
        let password_hash = match account.password {
            Some(password) => Some(hash_password(password.to_string()).await?),
            None => None,
        };
        let email = account.email.trim().to_owned();
        let display_name = account.display_name.trim().to_owned();
        let is_instance_admin = account.is_instance_admin;
        let plans = self.plans.clone();
        write(&self.store, move |tx| {
            let user_id = UserId::new();
            let now = crate::ids::now_rfc3339();
            let (org_id, role) = match placement {
                Placement::NewOrganization(name) => {
                    let org_id = OrgId::new();
                    let name = name.trim().to_owned();
                    let slug = free_slug(tx, &name)?;
                    organizations::insert(tx, org_id, &name, &slug, &now)?;
                    let journal = Journal::new(tx, &ctx, actor.map(|a| a.to_string()), Some(org_id.to_string()));
                    journal.audit("organization.created", "organization", org_id, json!({"name": name, "slug": slug}))?;
                    journal.event("organization.created", json!({"organizationId": org_id, "name": name, "slug": slug}))?;
                    (org_id, BuiltinRole::Owner.key().to_owned())
                }
                Placement::Organization { org, role } => {
                    if organizations::find(tx, org)?.is_none() {
                        return Err(ServiceError::NotFound("organization"));
                    }
                    let role = role.unwrap_or_else(|| BuiltinRole::Member.key().to_owned());
                    if role_grants(tx, org, &role)?.is_none() {
                        return Err(ServiceError::Invalid(vec![FieldError::new(
                            "role",
                            "no such role in this organization",
                        )]));
                    }
                    plans.check_members_in(tx, org)?;
                    (org, role)
                }
            };
            users::insert(
                tx,
                &NewUser {
                    id: user_id,
                    email: &email,
                    display_name: &display_name,
                    password_hash: password_hash.as_deref(),
                    is_instance_admin,
                    default_org_id: Some(org_id),
                    now: &now,
                },
            )
            .map_err(|e| match e {
                StoreError::Conflict => ServiceError::Conflict(
                    "an account with this email address exists; invite it instead".into(),
                ),
                other => other.into(),
            })?;
            organizations::add_member(tx, org_id, user_id, &role, &now)?;
            let set_password_token = match password_hash {
                Some(_) => None,
                None => Some(issue_token(tx, user_id, Purpose::Set, SET_LINK_TTL)?),
            };
            let journal = Journal::new(tx, &ctx, actor.map(|a| a.to_string()), Some(org_id.to_string()));
            journal.audit(
                "user.created",
                "user",
                user_id,
                json!({"byAdmin": true, "instanceAdmin": is_instance_admin, "setPasswordLink": set_password_token.is_some()}),
            )?;
            journal.audit("member.added", "user", user_id, json!({"role": role}))?;
            journal.event("user.created", json!({"userId": user_id, "email": email}))?;
            journal.event("member.added", json!({"organizationId": org_id, "userId": user_id, "role": role}))?;
            let user = users::find(tx, user_id)?.expect("inserted in this transaction");
            Ok(CreatedAccount {
                user,
                org_id,
                role,
                set_password_token,
            })
        })
        .await
    }

    /// `POST /admin/orgs/{orgId}/users`: an account in an existing organization.
    pub async fn add_user(
        &self,
        principal: &Principal,
        org: OrgId,
        account: NewAccount,
        role: Option<String>,
        ctx: RequestContext,
    ) -> Result<CreatedAccount, ServiceError> {
        require_instance_admin(principal)?;
        let placement = Placement::Organization { org, role };
        self.create_account(Some(principal.user_id), account, placement, ctx)
            .await
    }

    /// Creates an organization with no members yet (add them with `add_user`).
    pub async fn create_org(
        &self,
        principal: &Principal,
        name: String,
        slug: Option<String>,
        ctx: RequestContext,
    ) -> Result<Organization, ServiceError> {
        require_instance_admin(principal)?;
        self.orgs.create_org(None, name, slug, ctx).await
    }

    /// Every organization with its number of active members.
    pub async fn orgs(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(Organization, i64)>, ServiceError> {
        require_instance_admin(principal)?;
        read(&self.store, |conn| Ok(organizations::list_all(conn)?)).await
    }

    /// The members of any organization.
    pub async fn org_users(
        &self,
        principal: &Principal,
        org: OrgId,
    ) -> Result<Vec<Member>, ServiceError> {
        require_instance_admin(principal)?;
        read(&self.store, move |conn| {
            if organizations::find(conn, org)?.is_none() {
                return Err(ServiceError::NotFound("organization"));
            }
            Ok(organizations::members(conn, org)?)
        })
        .await
    }
}

/// Refuses unless the caller holds instance-admin power: an instance admin signed in, or
/// their API key carrying the `admin` scope ([`Principal::is_instance_admin`]).
pub fn require_instance_admin(principal: &Principal) -> Result<(), ServiceError> {
    if principal.is_instance_admin {
        Ok(())
    } else if principal.key().is_some() {
        Err(ServiceError::Forbidden(format!(
            "this route is for instance admins; an API key needs the `{ADMIN_SCOPE}` scope, \
             which only an instance admin can grant"
        )))
    } else {
        Err(ServiceError::Forbidden(
            "this route is for instance admins".into(),
        ))
    }
}
