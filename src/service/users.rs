//! The caller's own profile (`/v1/users/me`) and finding colleagues to share with.

use serde_json::json;
use zeroize::Zeroizing;

use super::access::Access;
use super::auth_cache::AuthCache;
use super::identity::{Profile, check_name, hash_password};
use super::keys::KeyStatus;
use super::{FieldError, Journal, RequestContext, ServiceError, invalid_if_any, read, write};
use crate::auth::{Principal, password};
use crate::ids::{OrgId, UserId};
use crate::store::organizations::Organization;
use crate::store::user_keys::{self, Colleague};
use crate::store::users::{self, ProfileChanges, User};
use crate::store::{Store, organizations, sessions};

const MAX_AVATAR_URL_BYTES: usize = 2048;
const MAX_PREFERENCES_BYTES: usize = 16 * 1024;
/// Search needs a few characters, so it cannot enumerate everyone with one letter.
const MIN_QUERY_CHARS: usize = 2;
const MAX_QUERY_CHARS: usize = 254;
const SEARCH_LIMIT: u32 = 20;

/// What `PATCH /v1/users/me` may change; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    /// `Some(None)` (JSON `null`) removes the avatar.
    pub avatar_url: Option<Option<String>>,
    pub preferences: Option<serde_json::Value>,
    pub default_organization_id: Option<String>,
    /// A new password, which needs `current_password`.
    pub password: Option<Zeroizing<String>>,
    pub current_password: Option<Zeroizing<String>>,
}

#[derive(Clone, Debug)]
pub struct UserService {
    store: Store,
    /// `whoami` answers still true (see `auth_cache`).
    known: AuthCache,
}

impl UserService {
    pub fn new(store: Store) -> Self {
        Self {
            known: AuthCache::new(store.clone()),
            store,
        }
    }

    /// Updates the caller's profile. A password change needs the current password and
    /// signs out every other session of the user.
    pub async fn update_me(
        &self,
        principal: &Principal,
        update: ProfileUpdate,
        ctx: RequestContext,
    ) -> Result<Profile, ServiceError> {
        super::access::require_session(principal)?;
        let mut problems = Vec::new();
        if let Some(name) = &update.display_name {
            check_name(name, "displayName", &mut problems);
        }
        if let Some(Some(url)) = &update.avatar_url
            && !valid_avatar_url(url)
        {
            problems.push(FieldError::new(
                "avatarUrl",
                format!("must be an http(s):// URL of at most {MAX_AVATAR_URL_BYTES} bytes"),
            ));
        }
        let preferences = match &update.preferences {
            Some(value @ serde_json::Value::Object(_)) => {
                let text = value.to_string();
                if text.len() > MAX_PREFERENCES_BYTES {
                    problems.push(FieldError::new(
                        "preferences",
                        format!("must be at most {MAX_PREFERENCES_BYTES} bytes of JSON"),
                    ));
                }
                Some(text)
            }
            Some(_) => {
                problems.push(FieldError::new("preferences", "must be a JSON object"));
                None
            }
            None => None,
        };
        let default_org = match &update.default_organization_id {
            Some(raw) => match raw.parse::<OrgId>() {
                Ok(org) => Some(org),
                Err(_) => {
                    problems.push(FieldError::new("defaultOrganizationId", "must be a UUID"));
                    None
                }
            },
            None => None,
        };
        if update
            .current_password
            .as_ref()
            .is_some_and(|p| p.len() > password::MAX_PASSWORD_BYTES)
        {
            problems.push(FieldError::new(
                "currentPassword",
                format!("must be at most {} bytes", password::MAX_PASSWORD_BYTES),
            ));
        }
        if let Some(new) = &update.password {
            if update.current_password.is_none() {
                problems.push(FieldError::new(
                    "currentPassword",
                    "is required to change the password",
                ));
            }
            if let Err(message) = password::check_policy(new) {
                problems.push(FieldError::new("password", message));
            }
        }
        invalid_if_any(problems)?;

        let user_id = principal.user_id;
        let new_hash = match (update.password, update.current_password) {
            (Some(new), Some(current)) => {
                let stored = self
                    .store
                    .call(move |conn| users::password_hash(conn, user_id))
                    .await?;
                let verified = super::argon2_pool::run(move || match stored {
                    Some(hash) => password::verify(&current, &hash),
                    None => {
                        password::verify_nothing(&current);
                        false
                    }
                })
                .await?;
                if !verified {
                    return Err(ServiceError::Invalid(vec![FieldError::new(
                        "currentPassword",
                        "is not the current password",
                    )]));
                }
                Some(hash_password(new.to_string()).await?)
            }
            _ => None,
        };

        let keep_session = principal.session_id();
        write(&self.store, move |tx| {
            if let Some(org) = default_org {
                let member = organizations::member_access(tx, org, user_id)?
                    .filter(|m| m.membership_status == "active");
                if member.is_none() {
                    return Err(ServiceError::Invalid(vec![FieldError::new(
                        "defaultOrganizationId",
                        "is not an organization you belong to",
                    )]));
                }
            }
            users::find(tx, user_id)?.ok_or(ServiceError::NotFound("user"))?;
            let activity_org = users::activity_org(tx, user_id)?.map(|o| o.to_string());
            let journal = Journal::new(tx, &ctx, Some(user_id.to_string()), activity_org);
            let changes = ProfileChanges {
                display_name: update.display_name.as_deref().map(str::trim),
                avatar_url: update.avatar_url.as_ref().map(|a| a.as_deref()),
                preferences: preferences.as_deref(),
                default_org_id: default_org,
            };
            users::update_profile(tx, user_id, &changes, journal.now())?;
            let changed: Vec<&str> = [
                ("displayName", changes.display_name.is_some()),
                ("avatarUrl", changes.avatar_url.is_some()),
                ("preferences", changes.preferences.is_some()),
                ("defaultOrganizationId", default_org.is_some()),
            ]
            .into_iter()
            .filter_map(|(field, set)| set.then_some(field))
            .collect();
            if !changed.is_empty() {
                journal.audit("user.updated", "user", user_id, json!({"changed": changed}))?;
                journal.event("user.updated", json!({"userId": user_id, "changed": changed}))?;
            }
            if let Some(hash) = &new_hash {
                users::set_password_hash(tx, user_id, hash, journal.now())?;
                let revoked = sessions::revoke_all_for_user(tx, user_id, keep_session, "password_changed", journal.now())?;
                journal.audit("user.password_changed", "user", user_id, json!({"revokedSessions": revoked.len()}))?;
                journal.event("user.password_changed", json!({"userId": user_id}))?;
                for session in revoked {
                    journal.event("session.revoked", json!({"sessionId": session, "userId": user_id, "reason": "password_changed"}))?;
                }
            }
            let user = users::find(tx, user_id)?.ok_or(ServiceError::NotFound("user"))?;
            let memberships = organizations::memberships_of(tx, user_id)?;
            Ok(Profile { user, memberships })
        })
        .await
    }

    /// The active members of the organization the caller acts in, with public keys.
    pub async fn colleagues(&self, principal: &Principal) -> Result<Vec<Colleague>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = super::access::in_requested_org(conn, &principal)?;
            Ok(user_keys::colleagues(conn, access.org_id)?)
        })
        .await
    }

    /// One active member of the caller's organization; 404 for anyone else.
    pub async fn colleague(
        &self,
        principal: &Principal,
        user: &str,
    ) -> Result<Colleague, ServiceError> {
        let user: UserId = user.parse().map_err(|_| ServiceError::NotFound("user"))?;
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = super::access::in_requested_org(conn, &principal)?;
            user_keys::colleague(conn, access.org_id, user)?.ok_or(ServiceError::NotFound("user"))
        })
        .await
    }

    /// The caller's profile (`GET /v1/users/me`). Through an API key it shows only the
    /// key's organization, as the default one: a key sees nothing of the account's other
    /// tenants.
    pub async fn me(&self, principal: &Principal) -> Result<Profile, ServiceError> {
        let user_id = principal.user_id;
        let profile = read(&self.store, move |conn| {
            let user = users::find(conn, user_id)?.ok_or(ServiceError::NotFound("user"))?;
            let memberships = organizations::memberships_of(conn, user_id)?;
            Ok(Profile { user, memberships })
        })
        .await?;
        Ok(profile.seen_by(principal))
    }

    /// The caller's key status, for their profile.
    pub async fn key_status(&self, user: UserId) -> Result<KeyStatus, ServiceError> {
        let row = read(&self.store, move |conn| Ok(user_keys::find(conn, user)?)).await?;
        Ok(KeyStatus::of(row.as_ref()))
    }

    /// What the caller's credential resolves to: the user, the organization the call acts
    /// in with the role there, and the permissions in effect (for an API key, the
    /// intersection of its scopes and the role).
    pub async fn whoami(
        &self,
        principal: &Principal,
    ) -> Result<(User, Organization, Access), ServiceError> {
        if let Some(known) = self.known.whoami(principal) {
            return Ok(known);
        }
        let stamp = self.known.stamp();
        let asked = principal.clone();
        let answer = read(&self.store, move |conn| {
            let access = super::access::in_requested_org(conn, &asked)?;
            let user = users::find(conn, asked.user_id)?.ok_or(ServiceError::NotFound("user"))?;
            let org = organizations::find(conn, access.org_id)?
                .ok_or(ServiceError::NotFound("organization"))?;
            Ok((user, org, access))
        })
        .await?;
        self.known.put_whoami(stamp, principal, answer.clone());
        Ok(answer)
    }

    /// Active users who share an organization with the caller (for an API key: the key's
    /// organization) and whose email or name contains `query`.
    pub async fn search(
        &self,
        principal: &Principal,
        query: String,
    ) -> Result<Vec<User>, ServiceError> {
        let query = query.trim().to_owned();
        let chars = query.chars().count();
        if !(MIN_QUERY_CHARS..=MAX_QUERY_CHARS).contains(&chars) {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "q",
                format!("must be {MIN_QUERY_CHARS} to {MAX_QUERY_CHARS} characters"),
            )]));
        }
        let caller = principal.user_id;
        let within = principal.key().map(|k| k.org_id);
        read(&self.store, move |conn| {
            Ok(users::search_colleagues(
                conn,
                caller,
                within,
                &query,
                SEARCH_LIMIT,
            )?)
        })
        .await
    }
}

fn valid_avatar_url(url: &str) -> bool {
    url.len() <= MAX_AVATAR_URL_BYTES
        && (url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://")))
        .is_some_and(|rest| !rest.is_empty())
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}
