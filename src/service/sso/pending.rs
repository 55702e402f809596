//! Sign-ins in progress and their outcomes waiting for the page, each behind the random
//! value of one browser's `sbx_sso` cookie (kept here only as its SHA-256). Taking an
//! entry removes it, so a state, a nonce or an outcome is used once; entries expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::Refusal;
use crate::auth::opaque;
use crate::ids::UserId;
use crate::service::ServiceError;
use crate::service::identity::SignedIn;

/// How long a browser may spend at the provider.
pub const FLOW_TTL: Duration = Duration::from_secs(10 * 60);
/// How long the page has to pick up the outcome after the callback.
pub const OUTCOME_TTL: Duration = Duration::from_secs(2 * 60);
/// Bound on what unauthenticated requests can make this hold.
const MAX_ENTRIES: usize = 10_000;

/// A sign-in sent to the provider.
pub struct Flow {
    pub provider: String,
    pub state: Zeroizing<String>,
    /// OpenID Connect only.
    pub nonce: Option<Zeroizing<String>>,
    pub pkce_verifier: Zeroizing<String>,
    /// Set when a signed-in user links the provider from the account page.
    pub link_user: Option<UserId>,
}

/// What the callback decided, for the page.
pub enum Completed {
    SignedIn(Box<SignedIn>),
    Linked { provider: String },
}

pub enum Entry {
    Flow(Flow),
    Outcome(Result<Completed, Refusal>),
}

#[derive(Default)]
pub struct Pending {
    entries: Mutex<HashMap<[u8; 32], (Instant, Entry)>>,
}

impl Pending {
    /// Keeps `entry` for `ttl`; returns the cookie value that finds it.
    pub fn put(&self, entry: Entry, ttl: Duration) -> Result<Zeroizing<String>, ServiceError> {
        let token = opaque::generate();
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("pending sign-ins");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (expires, _)| *expires > now);
        }
        if entries.len() >= MAX_ENTRIES {
            return Err(ServiceError::Overloaded {
                what: "too many sign-ins are in progress",
                retry_after: Duration::from_secs(30),
            });
        }
        entries.insert(token.hash, (now + ttl, entry));
        Ok(token.value)
    }

    /// Removes and returns the live entry behind `cookie`.
    pub fn take(&self, cookie: &str) -> Option<Entry> {
        let (expires, entry) = self
            .entries
            .lock()
            .expect("pending sign-ins")
            .remove(&opaque::hash(cookie))?;
        (expires > Instant::now()).then_some(entry)
    }
}
