//! API keys: minting, listing, changing, rotating and revoking them, and authenticating a
//! request that carries one. Every rule is checked on every request against the database
//! (no cache can serve a revoked key); only `lastUsedAt`/`lastUsedIp` are kept in memory
//! and written in batches, so a key's use costs no write unless it has a use limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use rusqlite::Connection;
use serde_json::json;
use zeroize::Zeroizing;

use super::access;
use super::auth_cache::{AuthCache, CachedKey};
use super::identity::check_name;
use super::{FieldError, Journal, RequestContext, ServiceError, invalid_if_any, read, write};
use crate::auth::api_key;
use crate::auth::{ADMIN_SCOPE, Credential, KeyGrant, Permission, PermissionSet, Principal};
use crate::config::parse_network;
use crate::ids::{ApiKeyId, OrgId, UserId, format_rfc3339, now_rfc3339};
use crate::store::api_keys::{self, ApiKey};
use crate::store::{Store, organizations, users};

/// Scopes of a key created without any (SPEC §4). Never `admin`.
pub const DEFAULT_SCOPES: [Permission; 2] = [Permission::TransfersWrite, Permission::FilesRead];
/// The organization permissions an API key may carry as scopes (SPEC §4); the other
/// permissions are for people. Besides these, an instance admin may grant the `admin`
/// scope ([`ADMIN_SCOPE`]).
pub const SCOPES: [Permission; 24] = [
    Permission::TransfersRead,
    Permission::TransfersWrite,
    Permission::FilesRead,
    Permission::FilesWrite,
    Permission::FilesDelete,
    Permission::KvRead,
    Permission::KvWrite,
    Permission::KvDelete,
    Permission::SharesWrite,
    Permission::KeysWrite,
    Permission::MessagesRead,
    Permission::MessagesWrite,
    Permission::WebhooksRead,
    Permission::WebhooksWrite,
    Permission::ApiKeysRead,
    Permission::ApiKeysWrite,
    Permission::AuditRead,
    Permission::OrgRead,
    Permission::OrgWrite,
    Permission::MembersWrite,
    Permission::InvitesWrite,
    Permission::BillingRead,
    Permission::BillingManage,
    Permission::ConvertWrite,
];
/// How long a rotated key keeps working unless told otherwise, and at most.
pub const DEFAULT_GRACE_HOURS: u32 = 24;
pub const MAX_GRACE_HOURS: u32 = 168;
const MAX_ALLOWLIST: usize = 100;

/// A key's settings as created or patched; `None` keeps (or defaults) a field.
#[derive(Debug, Default)]
pub struct KeyInput {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub ip_allowlist: Option<Vec<String>>,
    /// `Some(None)` removes the limit.
    pub max_uses: Option<Option<i64>>,
    /// `Some(None)` removes the expiry.
    pub expires_at: Option<Option<String>>,
}

/// A key and, right after it was minted, its value (shown once).
pub struct IssuedKey {
    pub key: ApiKey,
    pub value: Zeroizing<String>,
}

/// Last use of each key since the last flush: (time, client address).
type LastUse = HashMap<ApiKeyId, (String, Option<String>)>;

#[derive(Clone)]
pub struct ApiKeyService {
    store: Store,
    last_use: Arc<Mutex<LastUse>>,
    /// Keys known to be valid (see `auth_cache`).
    known: AuthCache,
}

impl std::fmt::Debug for ApiKeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyService").finish_non_exhaustive()
    }
}

impl ApiKeyService {
    pub fn new(store: Store) -> Self {
        Self {
            known: AuthCache::new(store.clone()),
            store,
            last_use: Arc::default(),
        }
    }

    /// Resolves a presented key into a principal, or refuses it. A malformed key or a
    /// bad checksum is refused before the database is touched.
    pub async fn authenticate(
        &self,
        presented: &str,
        ip: Option<IpAddr>,
    ) -> Result<Principal, ServiceError> {
        const INVALID: ServiceError = ServiceError::Unauthorized("the API key is invalid");
        if !api_key::is_well_formed(presented) {
            return Err(INVALID);
        }
        let hash = api_key::hash(presented);
        let known = match self.known.key(&hash) {
            Some(known) => known,
            None => {
                let stamp = self.known.stamp();
                let known = read(&self.store, move |tx| check_key(tx, &hash)).await?;
                self.known.put_key(stamp, hash, known.clone());
                known
            }
        };
        // Checked on every use, cached or not: the clock and the client's address move.
        if expired(known.expires_at.as_deref()) {
            return Err(ServiceError::Unauthorized("the API key has expired"));
        }
        if !known.ip_allowlist.is_empty() && !allows(&known.ip_allowlist, ip) {
            return Err(ServiceError::Forbidden(format!(
                "this API key may not be used from {}",
                ip.map_or("an unknown address".to_owned(), |ip| ip.to_string())
            )));
        }
        let (principal, limited) = (known.principal, known.limited);
        if let Some(key) = principal.key().filter(|_| limited) {
            let id = key.key_id;
            let counted = write(&self.store, move |tx| Ok(api_keys::take_use(tx, id)?)).await?;
            if !counted {
                return Err(ServiceError::Unauthorized(
                    "the API key has reached its maximum number of uses",
                ));
            }
        }
        if let Some(key) = principal.key() {
            let used = (now_rfc3339(), ip.map(|ip| ip.to_string()));
            self.last_use
                .lock()
                .expect("the last-use map is never poisoned")
                .insert(key.key_id, used);
        }
        Ok(principal)
    }

    /// Writes the last uses collected since the previous flush, in one transaction.
    pub async fn flush_last_use(&self) -> Result<(), ServiceError> {
        let pending: Vec<_> = self
            .last_use
            .lock()
            .expect("the last-use map is never poisoned")
            .drain()
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        write(&self.store, move |tx| {
            for (id, (at, ip)) in &pending {
                api_keys::record_last_use(tx, *id, at, ip.as_deref())?;
            }
            Ok(())
        })
        .await
    }

    /// Mints a key for the caller in the organization they act in.
    pub async fn create(
        &self,
        principal: &Principal,
        input: KeyInput,
        ctx: RequestContext,
    ) -> Result<IssuedKey, ServiceError> {
        let checked = check_input(
            input.name.unwrap_or_default(),
            input.scopes,
            input.ip_allowlist,
            input.max_uses.flatten(),
            input.expires_at.flatten(),
        )?;
        let principal = principal.clone();
        let minted = api_key::generate();
        let hash = minted.hash;
        let prefix = minted.display_prefix.clone();
        let key = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::ApiKeysWrite)?;
            access.require_at_least(checked.scopes)?;
            require_may_grant_admin(&principal, &checked)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let key = insert_new(
                tx,
                &journal,
                (access.org_id, access.user_id),
                checked,
                prefix,
                &hash,
            )?;
            Ok(key)
        })
        .await?;
        Ok(IssuedKey {
            key,
            value: minted.value,
        })
    }

    /// The caller's keys in the organization they act in, or (`of`, for owners and
    /// admins: see [`require_manage_keys_of`]) another member's.
    pub async fn list(
        &self,
        principal: &Principal,
        of: Option<UserId>,
    ) -> Result<Vec<ApiKey>, ServiceError> {
        let principal = principal.clone();
        let mut keys = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::ApiKeysRead)?;
            let owner = match of {
                Some(user) if user != access.user_id => {
                    require_manage_keys_of(conn, &access, user)?;
                    user
                }
                _ => access.user_id,
            };
            Ok(api_keys::list_for_owner(conn, access.org_id, owner)?)
        })
        .await?;
        self.overlay_last_use(&mut keys);
        Ok(keys)
    }

    pub async fn update(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        input: KeyInput,
        ctx: RequestContext,
    ) -> Result<ApiKey, ServiceError> {
        let principal = principal.clone();
        let mut key = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::ApiKeysWrite)?;
            let mut key = api_keys::find_for_owner(tx, access.org_id, access.user_id, id)?
                .filter(|k| k.revoked_at.is_none())
                .ok_or(ServiceError::NotFound("API key"))?;
            let checked = check_input(
                input.name.unwrap_or(key.name.clone()),
                Some(input.scopes.unwrap_or(key.scopes.clone())),
                Some(input.ip_allowlist.unwrap_or(key.ip_allowlist.clone())),
                input.max_uses.unwrap_or(key.max_uses),
                input.expires_at.unwrap_or(key.expires_at.clone()),
            )?;
            access.require_at_least(checked.scopes)?;
            require_may_grant_admin(&principal, &checked)?;
            if key.rotated_to.is_some() {
                check_rotated_expiry(key.expires_at.as_deref(), checked.expires_at.as_deref())?;
            }
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            key.scopes = checked.stored_scopes();
            key.name = checked.name;
            key.ip_allowlist = checked.ip_allowlist;
            key.max_uses = checked.max_uses;
            key.expires_at = checked.expires_at;
            key.updated_at = journal.now().to_owned();
            api_keys::update(tx, &key)?;
            journal.audit(
                "api_key.updated",
                "api_key",
                key.id,
                json!({"name": key.name, "scopes": key.scopes}),
            )?;
            journal.event(
                "api_key.updated",
                json!({"apiKeyId": key.id, "name": key.name, "scopes": key.scopes}),
            )?;
            Ok(key)
        })
        .await?;
        self.overlay_last_use(std::slice::from_mut(&mut key));
        Ok(key)
    }

    /// Revokes a key: refused from its very next request. The caller's own key, or (for
    /// owners and admins, see [`require_manage_keys_of`]) another member's in the same
    /// organization; anyone else's is 404.
    pub async fn revoke(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let principal = principal.clone();
        // A key may always revoke itself, whatever its scopes: a client signing out (the
        // CLI's `logout`) gives up its own credential without needing `api_keys:write`.
        let revoking_itself = principal.key().is_some_and(|grant| grant.key_id == id);
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            if !revoking_itself {
                access.require(Permission::ApiKeysWrite)?;
            }
            let key = api_keys::find_for_org(tx, access.org_id, id)?
                .ok_or(ServiceError::NotFound("API key"))?;
            if key.user_id != access.user_id {
                // Members who cannot manage others' keys do not learn that the key exists.
                if !access.permissions.contains(Permission::MembersWrite) {
                    return Err(ServiceError::NotFound("API key"));
                }
                require_manage_keys_of(tx, &access, key.user_id)?;
            }
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            if !api_keys::revoke(tx, key.id, journal.now())? {
                return Err(ServiceError::NotFound("API key"));
            }
            record_revoked(&journal, &key, None)?;
            Ok(())
        })
        .await
    }

    /// Issues a new value with the same settings; the old one keeps working for
    /// `grace_hours` (default 24, at most 168), then stops.
    pub async fn rotate(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        grace_hours: Option<u32>,
        ctx: RequestContext,
    ) -> Result<IssuedKey, ServiceError> {
        let grace_hours = check_grace(grace_hours)?;
        let principal = principal.clone();
        let minted = api_key::generate();
        let (hash, prefix) = (minted.hash, minted.display_prefix.clone());
        let key = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::ApiKeysWrite)?;
            let old = api_keys::find_for_owner(tx, access.org_id, access.user_id, id)?
                .filter(|k| k.revoked_at.is_none() && k.rotated_to.is_none())
                .ok_or(ServiceError::NotFound("API key"))?;
            // A new value is a new credential: the caller must be able to grant all that
            // the key carries, so a narrow key cannot mint itself a broader one.
            let (scopes, admin) = stored_grant(&old.scopes);
            access.require_at_least(scopes)?;
            require_may_grant(&principal, admin)?;
            rotate_in(
                tx,
                &old,
                hash,
                prefix,
                grace_hours,
                Journal::new(tx, &ctx, access.actor(), access.org()),
            )
        })
        .await?;
        Ok(IssuedKey {
            key,
            value: minted.value,
        })
    }

    /// `POST /admin/orgs/{orgId}/users/{userId}/apikey/rotate`: an instance admin rotates
    /// the user's newest key in the organization (the old value keeps its grace period),
    /// or issues the user's first key there with the default scopes.
    pub async fn admin_rotate(
        &self,
        principal: &Principal,
        org: OrgId,
        user: UserId,
        grace_hours: Option<u32>,
        ctx: RequestContext,
    ) -> Result<IssuedKey, ServiceError> {
        super::admin::require_instance_admin(principal)?;
        let grace_hours = check_grace(grace_hours)?;
        let actor = principal.user_id;
        let minted = api_key::generate();
        let (hash, prefix) = (minted.hash, minted.display_prefix.clone());
        let key = write(&self.store, move |tx| {
            organizations::find_member(tx, org, user)?.ok_or(ServiceError::NotFound("member"))?;
            let journal = Journal::new(tx, &ctx, Some(actor.to_string()), Some(org.to_string()));
            let current = api_keys::list_for_owner(tx, org, user)?
                .into_iter()
                .find(|k| k.rotated_to.is_none());
            match current {
                Some(old) => rotate_in(tx, &old, hash, prefix, grace_hours, journal),
                None => {
                    let defaults = CheckedInput {
                        name: "Issued by an instance admin".into(),
                        scopes: DEFAULT_SCOPES.into_iter().collect(),
                        admin: false,
                        ip_allowlist: Vec::new(),
                        max_uses: None,
                        expires_at: None,
                    };
                    insert_new(tx, &journal, (org, user), defaults, prefix, &hash)
                }
            }
        })
        .await?;
        Ok(IssuedKey {
            key,
            value: minted.value,
        })
    }

    fn overlay_last_use(&self, keys: &mut [ApiKey]) {
        let recent = self
            .last_use
            .lock()
            .expect("the last-use map is never poisoned");
        for key in keys {
            if let Some((at, ip)) = recent.get(&key.id) {
                key.last_used_at = Some(at.clone());
                key.last_used_ip = ip.clone();
            }
        }
    }
}

/// Replaces `old` with a new key of the same settings inside the caller's transaction.
fn rotate_in(
    tx: &rusqlite::Connection,
    old: &ApiKey,
    hash: [u8; 32],
    prefix: String,
    grace_hours: u32,
    journal: Journal<'_>,
) -> Result<ApiKey, ServiceError> {
    let until = format_rfc3339(
        time::OffsetDateTime::now_utc() + Duration::from_secs(u64::from(grace_hours) * 3600),
    );
    let key = ApiKey {
        id: ApiKeyId::new(),
        key_prefix: prefix,
        use_count: 0,
        last_used_at: None,
        last_used_ip: None,
        created_at: journal.now().to_owned(),
        updated_at: journal.now().to_owned(),
        revoked_at: None,
        rotated_to: None,
        ..old.clone()
    };
    api_keys::insert(tx, &key, &hash)?;
    api_keys::mark_rotated(tx, old.id, key.id, &until, journal.now())?;
    journal.audit(
        "api_key.rotated",
        "api_key",
        old.id,
        json!({"newKeyId": key.id, "oldKeyValidUntil": until}),
    )?;
    journal.event(
        "api_key.rotated",
        json!({"apiKeyId": old.id, "newApiKeyId": key.id, "oldKeyValidUntil": until}),
    )?;
    Ok(key)
}

/// Stores a new key for `owner` (organization, user) and records it.
fn insert_new(
    tx: &rusqlite::Connection,
    journal: &Journal<'_>,
    (org_id, user_id): (OrgId, UserId),
    settings: CheckedInput,
    key_prefix: String,
    hash: &[u8; 32],
) -> Result<ApiKey, ServiceError> {
    let key = ApiKey {
        id: ApiKeyId::new(),
        org_id,
        user_id,
        scopes: settings.stored_scopes(),
        name: settings.name,
        key_prefix,
        ip_allowlist: settings.ip_allowlist,
        max_uses: settings.max_uses,
        use_count: 0,
        expires_at: settings.expires_at,
        last_used_at: None,
        last_used_ip: None,
        created_at: journal.now().to_owned(),
        updated_at: journal.now().to_owned(),
        revoked_at: None,
        rotated_to: None,
    };
    api_keys::insert(tx, &key, hash)?;
    journal.audit(
        "api_key.created",
        "api_key",
        key.id,
        json!({"name": key.name, "scopes": key.scopes, "prefix": key.key_prefix, "userId": user_id}),
    )?;
    journal.event(
        "api_key.created",
        json!({"apiKeyId": key.id, "name": key.name, "scopes": key.scopes, "userId": user_id}),
    )?;
    Ok(key)
}

fn check_grace(hours: Option<u32>) -> Result<u32, ServiceError> {
    let hours = hours.unwrap_or(DEFAULT_GRACE_HOURS);
    if hours > MAX_GRACE_HOURS {
        return Err(ServiceError::Invalid(vec![FieldError::new(
            "gracePeriodHours",
            format!("must be at most {MAX_GRACE_HOURS}"),
        )]));
    }
    Ok(hours)
}

struct CheckedInput {
    name: String,
    scopes: PermissionSet,
    /// The `admin` scope.
    admin: bool,
    ip_allowlist: Vec<String>,
    max_uses: Option<i64>,
    expires_at: Option<String>,
}

fn check_input(
    name: String,
    scopes: Option<Vec<String>>,
    ip_allowlist: Option<Vec<String>>,
    max_uses: Option<i64>,
    expires_at: Option<String>,
) -> Result<CheckedInput, ServiceError> {
    let mut problems = Vec::new();
    check_name(&name, "name", &mut problems);
    let mut admin = false;
    let scopes = match scopes {
        None => DEFAULT_SCOPES.into_iter().collect(),
        Some(keys) => {
            let mut set = PermissionSet::EMPTY;
            for (index, key) in keys.iter().enumerate() {
                if key == ADMIN_SCOPE {
                    admin = true;
                    continue;
                }
                match Permission::parse(key).filter(|p| SCOPES.contains(p)) {
                    Some(p) => set = set.union(p),
                    None => problems.push(FieldError::new(
                        format!("scopes[{index}]"),
                        format!("`{key}` is not an API key scope"),
                    )),
                }
            }
            set
        }
    };
    let ip_allowlist = ip_allowlist.unwrap_or_default();
    if ip_allowlist.len() > MAX_ALLOWLIST {
        problems.push(FieldError::new(
            "ipAllowlist",
            format!("at most {MAX_ALLOWLIST} entries"),
        ));
    }
    let mut networks = Vec::new();
    for (index, entry) in ip_allowlist.iter().enumerate() {
        match parse_network(entry) {
            Some(net) => networks.push(net.to_string()),
            None => problems.push(FieldError::new(
                format!("ipAllowlist[{index}]"),
                "must be an IPv4 or IPv6 address or CIDR, such as 10.0.0.0/8",
            )),
        }
    }
    if max_uses.is_some_and(|n| n < 1) {
        problems.push(FieldError::new("maxUses", "must be at least 1"));
    }
    let expires_at = match expires_at {
        None => None,
        Some(raw) => {
            match time::OffsetDateTime::parse(&raw, &time::format_description::well_known::Rfc3339)
            {
                Ok(at) if at > time::OffsetDateTime::now_utc() => Some(format_rfc3339(at)),
                Ok(_) => {
                    problems.push(FieldError::new("expiresAt", "must be in the future"));
                    None
                }
                Err(_) => {
                    problems.push(FieldError::new(
                        "expiresAt",
                        "must be an RFC 3339 time such as 2027-01-01T00:00:00Z",
                    ));
                    None
                }
            }
        }
    };
    invalid_if_any(problems)?;
    Ok(CheckedInput {
        name: name.trim().to_owned(),
        scopes,
        admin,
        ip_allowlist: networks,
        max_uses,
        expires_at,
    })
}

/// The checks of a presented key that depend on stored state: it exists and is not
/// revoked, its owner is active and an active member of its active organization. A read:
/// checking a key takes no write lock, so keys scale like sessions.
fn check_key(tx: &Connection, hash: &[u8; 32]) -> Result<CachedKey, ServiceError> {
    const INVALID: ServiceError = ServiceError::Unauthorized("the API key is invalid");
    let key = api_keys::find_by_hash(tx, hash)?.ok_or(INVALID)?;
    if key.revoked_at.is_some() {
        return Err(ServiceError::Unauthorized("the API key has been revoked"));
    }
    if expired(key.expires_at.as_deref()) {
        return Err(ServiceError::Unauthorized("the API key has expired"));
    }
    let owner = users::find(tx, key.user_id)?
        .filter(|u| u.status == users::UserStatus::Active)
        .ok_or(ServiceError::Unauthorized(
            "the API key's owner is disabled",
        ))?;
    let member = organizations::member_access(tx, key.org_id, key.user_id)?
        .filter(|m| m.membership_status == "active")
        .ok_or(ServiceError::Unauthorized(
            "the API key's owner is no longer a member of its organization",
        ))?;
    if member.org_status != "active" {
        return Err(ServiceError::OrgSuspended);
    }
    let grant = KeyGrant {
        key_id: key.id,
        org_id: key.org_id,
        scopes: scopes_of(&key),
        admin: has_admin_scope(&key),
    };
    Ok(CachedKey {
        principal: Principal {
            user_id: owner.id,
            // Instance-admin power is the owner's only through the `admin` scope.
            is_instance_admin: owner.is_instance_admin && grant.admin,
            requested_org: None,
            credential: Credential::ApiKey(grant),
        },
        limited: key.max_uses.is_some(),
        expires_at: key.expires_at,
        ip_allowlist: key.ip_allowlist,
    })
}

fn expired(expires_at: Option<&str>) -> bool {
    expires_at.is_some_and(|at| at <= now_rfc3339().as_str())
}

fn allows(allowlist: &[String], ip: Option<IpAddr>) -> bool {
    let Some(ip) = ip else {
        return false;
    };
    // An IPv4 client reached over an IPv6 socket arrives as ::ffff:a.b.c.d.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    allowlist
        .iter()
        .filter_map(|entry| entry.parse::<IpNet>().ok())
        .any(|net| net.contains(&ip))
}

fn scopes_of(key: &ApiKey) -> PermissionSet {
    access::permissions_of(&key.scopes)
}

/// A stored key's scopes as permissions, and whether it carries `admin` (stored scopes
/// were checked when they were set; one this binary no longer knows grants nothing).
fn stored_grant(scopes: &[String]) -> (PermissionSet, bool) {
    let mut set = PermissionSet::EMPTY;
    let mut admin = false;
    for scope in scopes {
        if scope == ADMIN_SCOPE {
            admin = true;
        } else if let Some(p) = Permission::parse(scope).filter(|p| SCOPES.contains(p)) {
            set = set.union(p);
        }
    }
    (set, admin)
}

fn has_admin_scope(key: &ApiKey) -> bool {
    key.scopes.iter().any(|s| s == ADMIN_SCOPE)
}

impl CheckedInput {
    /// The scope keys as stored: the permissions in `GET /v1/permissions` order, then
    /// `admin`.
    fn stored_scopes(&self) -> Vec<String> {
        let mut keys = self.scopes.keys();
        if self.admin {
            keys.push(ADMIN_SCOPE.to_owned());
        }
        keys
    }
}

/// Only a caller with instance-admin power (a signed-in instance admin, or a key that
/// already carries `admin`) hands out the `admin` scope.
fn require_may_grant_admin(
    principal: &Principal,
    checked: &CheckedInput,
) -> Result<(), ServiceError> {
    require_may_grant(principal, checked.admin)
}

fn require_may_grant(principal: &Principal, admin: bool) -> Result<(), ServiceError> {
    if admin && !principal.is_instance_admin {
        return Err(ServiceError::Forbidden(format!(
            "only an instance admin can grant the `{ADMIN_SCOPE}` scope"
        )));
    }
    Ok(())
}

/// A rotated key stops at the end of its grace period; a change may bring that moment
/// forward, never remove it or push it back (which would revive the replaced value).
fn check_rotated_expiry(
    current: Option<&str>,
    requested: Option<&str>,
) -> Result<(), ServiceError> {
    let earlier_or_same = match (current, requested) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(current), Some(requested)) => requested <= current,
    };
    if earlier_or_same {
        return Ok(());
    }
    Err(ServiceError::Invalid(vec![FieldError::new(
        "expiresAt",
        format!(
            "this key was rotated and stops working at {}; its expiry can only move earlier",
            current.unwrap_or("the end of its grace period")
        ),
    )]))
}

/// Owners and admins manage other members' keys: the call needs `api_keys:write` and
/// `members:write` (for an API key, both as scopes too), and, as for any act on a member,
/// the caller's role must grant everything the member's role does. An ex-member's
/// leftover keys may be managed by anyone who passes the first two checks.
fn require_manage_keys_of(
    conn: &rusqlite::Connection,
    caller: &access::Access,
    member: UserId,
) -> Result<(), ServiceError> {
    caller.require(Permission::ApiKeysWrite)?;
    caller.require(Permission::MembersWrite)?;
    if let Some(member) = organizations::find_member(conn, caller.org_id, member)? {
        let theirs = access::role_permissions(conn, caller.org_id, &member.role)?;
        let own = access::role_permissions(conn, caller.org_id, &caller.role)?;
        if !theirs.is_subset_of(own) {
            return Err(ServiceError::Forbidden(
                "this member's role grants more than yours; you cannot manage their API keys"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// The audit entry and `api_key.revoked` event of a revocation, with why when it was not
/// asked for directly (`member_removed`).
pub(crate) fn record_revoked(
    journal: &Journal<'_>,
    key: &ApiKey,
    reason: Option<&str>,
) -> Result<(), ServiceError> {
    let mut details = json!({"name": key.name, "userId": key.user_id});
    let mut data = json!({"apiKeyId": key.id, "name": key.name, "userId": key.user_id});
    if let Some(reason) = reason {
        details["reason"] = json!(reason);
        data["reason"] = json!(reason);
    }
    journal.audit("api_key.revoked", "api_key", key.id, details)?;
    journal.event("api_key.revoked", data)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlists_match_v4_v6_and_mapped_addresses() {
        let list: Vec<String> = ["10.0.0.0/8", "2001:db8::/32", "192.168.1.7"]
            .iter()
            .map(|e| parse_network(e).unwrap().to_string())
            .collect();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(allows(&list, ip("10.1.2.3")));
        assert!(allows(&list, ip("::ffff:10.1.2.3")));
        assert!(allows(&list, ip("2001:db8::1")));
        assert!(allows(&list, ip("192.168.1.7")));
        assert!(!allows(&list, ip("192.168.1.8")));
        assert!(!allows(&list, ip("2001:db9::1")));
        assert!(!allows(&list, None));
        assert!(parse_network("10.0.0.300/8").is_none());
        assert_eq!(
            parse_network("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
    }
}
