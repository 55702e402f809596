//! The authenticated caller of a request.

use crate::ids::{SessionId, UserId};

/// Who is calling. Produced only by authentication, so holding one proves the checks ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    /// The session (refresh family) the access token belongs to.
    pub session_id: SessionId,
    pub is_instance_admin: bool,
}
