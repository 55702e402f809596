//! The authenticated caller of a request.

use crate::auth::PermissionSet;
use crate::ids::{ApiKeyId, OrgId, SessionId, UserId};

/// Who is calling. Produced only by authentication, so holding one proves the checks ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    /// Whether this caller holds instance-admin power: the account is an instance admin
    /// and it signed in (a session), or it uses an API key carrying the `admin` scope
    /// ([`crate::auth::ADMIN_SCOPE`]). An instance admin's key without that scope is
    /// `false` here: a key never does more than its scopes.
    pub is_instance_admin: bool,
    /// The organization the caller asked to act in (`X-Organization-Id`); without it, the
    /// user's default organization (or an API key's own). Membership is checked when a
    /// call acts in it.
    pub requested_org: Option<OrgId>,
    pub credential: Credential,
}

/// What the caller authenticated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An access token of a signed-in session (a refresh family).
    Session(SessionId),
    /// An API key: it acts only in its organization, with at most its scopes.
    ApiKey(KeyGrant),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    pub key_id: ApiKeyId,
    pub org_id: OrgId,
    /// The organization permissions among the key's scopes.
    pub scopes: PermissionSet,
    /// Whether the key carries the `admin` scope (which gives power only while its owner
    /// is an instance admin; see [`Principal::is_instance_admin`]).
    pub admin: bool,
}

impl Principal {
    /// The session of an access token; `None` for an API key.
    pub fn session_id(&self) -> Option<SessionId> {
        match &self.credential {
            Credential::Session(session) => Some(*session),
            Credential::ApiKey(_) => None,
        }
    }

    /// The API key the caller used, if any.
    pub fn key(&self) -> Option<&KeyGrant> {
        match &self.credential {
            Credential::ApiKey(grant) => Some(grant),
            Credential::Session(_) => None,
        }
    }
}
