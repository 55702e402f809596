//! In-process caches of credential checks: the session behind an access token, the API
//! key behind a presented key, and what `GET /v1/me` resolves for a principal. Without
//! them every authenticated request reads its session (or key), its user and membership
//! from SQLite.
//!
//! "Revoked stops at once" holds because an entry is trusted only while the store's
//! credential version ([`Store::credential_version`]) is the one read *before* the checks
//! behind it ran. SQLite triggers move the version in the same transaction as every
//! change to the sessions, users, API keys, memberships, organizations or roles that
//! matters to a check, whoever makes it: this process, `sealbox admin` in another one,
//! or an operator's sqlite3 shell. A logout, session revoke, password change,
//! disablement, membership change, suspension, key revoke or rotation, scope or role
//! change is followed by a request that misses and checks SQLite again. A check that read
//! the old state while the change committed carries the old version and is never trusted.
//!
//! Entries also expire after [`TTL`], and each map is bounded at [`MAX_ENTRIES`]. Holds no
//! secret: keys are looked up by their SHA-256 (what the database stores), sessions by
//! their ids.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::access::Access;
use crate::auth::Principal;
use crate::ids::{ApiKeyId, OrgId, SessionId, UserId};
use crate::store::Store;
use crate::store::organizations::Organization;
use crate::store::users::User;

/// How long an entry is trusted at most: a bound on what a bug in the version's triggers
/// could let through, and on how long an unused entry takes memory.
const TTL: Duration = Duration::from_secs(30);
/// Entries per map; beyond it, stale entries go first, then an arbitrary one.
const MAX_ENTRIES: usize = 10_000;

/// What a cached API key check found: the principal it yields, and what must still be
/// checked on every use (expiry, the client's address, a use limit).
#[derive(Clone)]
pub struct CachedKey {
    pub principal: Principal,
    pub expires_at: Option<String>,
    pub ip_allowlist: Vec<String>,
    pub limited: bool,
}

/// The credential a `whoami` answer was resolved for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum CredentialId {
    Session(SessionId),
    ApiKey(ApiKeyId),
}

type WhoAmIKey = (UserId, CredentialId, Option<OrgId>);

#[derive(Clone)]
pub struct AuthCache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    sessions: Map<(UserId, SessionId), bool>,
    keys: Map<[u8; 32], CachedKey>,
    whoami: Map<WhoAmIKey, (User, Organization, Access)>,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("sessions", &self.inner.sessions.len())
            .field("keys", &self.inner.keys.len())
            .field("whoami", &self.inner.whoami.len())
            .finish()
    }
}

/// A stamp taken before a check reads SQLite; its result is cached under it. Empty when
/// the version could not be read: nothing is cached then.
#[derive(Debug, Clone, Copy)]
pub struct Stamp(Option<i64>);

impl AuthCache {
    pub fn new(store: Store) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                sessions: Map::default(),
                keys: Map::default(),
                whoami: Map::default(),
            }),
        }
    }

    /// Take before reading what will be cached.
    pub fn stamp(&self) -> Stamp {
        Stamp(self.version())
    }

    /// The credential version now; `None` (nothing trusted, nothing kept) if it cannot be
    /// read.
    fn version(&self) -> Option<i64> {
        match self.inner.store.credential_version() {
            Ok(version) => Some(version),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the credential version; checking SQLite");
                None
            }
        }
    }

    /// Whether the session is active and its user an instance admin, if known.
    pub fn session(&self, user: UserId, session: SessionId) -> Option<bool> {
        self.inner.sessions.get(&(user, session), self.version()?)
    }

    pub fn put_session(&self, stamp: Stamp, user: UserId, session: SessionId, admin: bool) {
        self.inner
            .sessions
            .put((user, session), stamp.0, self.version(), admin);
    }

    /// The key with this SHA-256, if known to be valid (not revoked, its owner active and
    /// a member of its active organization).
    pub fn key(&self, hash: &[u8; 32]) -> Option<CachedKey> {
        self.inner.keys.get(hash, self.version()?)
    }

    pub fn put_key(&self, stamp: Stamp, hash: [u8; 32], key: CachedKey) {
        self.inner.keys.put(hash, stamp.0, self.version(), key);
    }

    /// What `GET /v1/me` resolved for this principal, if known.
    pub fn whoami(&self, principal: &Principal) -> Option<(User, Organization, Access)> {
        self.inner
            .whoami
            .get(&whoami_key(principal), self.version()?)
    }

    pub fn put_whoami(
        &self,
        stamp: Stamp,
        principal: &Principal,
        answer: (User, Organization, Access),
    ) {
        self.inner
            .whoami
            .put(whoami_key(principal), stamp.0, self.version(), answer);
    }
}

fn whoami_key(principal: &Principal) -> WhoAmIKey {
    let credential = match (principal.session_id(), principal.key()) {
        (Some(session), _) => CredentialId::Session(session),
        (None, Some(key)) => CredentialId::ApiKey(key.key_id),
        (None, None) => unreachable!("a principal has a session or a key"),
    };
    (principal.user_id, credential, principal.requested_org)
}

/// One bounded map of entries stamped with the credential version they were checked at.
struct Map<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
}

struct Entry<V> {
    version: i64,
    checked: Instant,
    value: V,
}

impl<V> Entry<V> {
    fn fresh(&self, version: i64) -> bool {
        self.version == version && self.checked.elapsed() < TTL
    }
}

impl<K, V> Default for Map<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Map<K, V> {
    fn get(&self, key: &K, version: i64) -> Option<V> {
        let entries = self.lock();
        entries
            .get(key)
            .filter(|e| e.fresh(version))
            .map(|e| e.value.clone())
    }

    /// Keeps `value`, checked at `stamp`, unless the version has moved since (`current`),
    /// when what was checked may already be out of date, or either is unknown.
    fn put(&self, key: K, stamp: Option<i64>, current: Option<i64>, value: V) {
        let (Some(stamp), Some(current)) = (stamp, current) else {
            return;
        };
        if stamp != current {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.fresh(current));
            if entries.len() >= MAX_ENTRIES
                && let Some(any) = entries.keys().next().cloned()
            {
                entries.remove(&any);
            }
        }
        entries.insert(
            key,
            Entry {
                version: stamp,
                checked: Instant::now(),
                value,
            },
        );
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V>>> {
        self.entries
            .lock()
            .expect("the credential cache is never poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_checked_before_the_version_moved_is_never_trusted() {
        let map = Map::<u32, &str>::default();
        map.put(1, Some(7), Some(7), "checked at 7");
        assert_eq!(map.get(&1, 7), Some("checked at 7"));
        // A change committed: the version is 8 now.
        assert_eq!(map.get(&1, 8), None);
        // A check that started at 7 and finished after the change is dropped.
        map.put(2, Some(7), Some(8), "stale");
        assert_eq!(map.get(&2, 8), None);
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn the_map_stays_bounded() {
        let map = Map::<usize, ()>::default();
        for k in 0..MAX_ENTRIES + 10 {
            map.put(k, Some(1), Some(1), ());
        }
        assert_eq!(map.len(), MAX_ENTRIES);
    }
}
