//! The authenticated caller of a request.

use crate::ids::{OrgId, SessionId, UserId};

/// Who is calling. Produced only by authentication, so holding one proves the checks ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    /// The session (refresh family) the access token belongs to.
    pub session_id: SessionId,
    pub is_instance_admin: bool,
    /// The organization the caller asked to act in (`X-Organization-Id`); without it, the
    /// user's default organization. Membership is checked when a call acts in it.
    pub requested_org: Option<OrgId>,
}
