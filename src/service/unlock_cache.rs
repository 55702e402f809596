//! Unlocked key pairs kept in memory for a while (SPEC §5): deriving the KEK from a user
//! secret costs ~80 ms by design, too much for every request of a script.
//!
//! Entries are keyed by a BLAKE3 keyed hash of (user, secret) under a key that lives only
//! in this process, so the map holds no secret and a lookup with another secret misses.
//! An entry also carries the key generation it was opened at: after a rekey or a restore
//! the stored generation moves on and old entries are ignored (and are dropped at once by
//! `forget_user`). Key pairs zeroize themselves when the last reference goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::crypto::{UserKeyPair, random_bytes};
use crate::ids::UserId;

/// At most this many unlocked key pairs are kept; the oldest go first beyond it.
const MAX_ENTRIES: usize = 10_000;

#[derive(Clone)]
pub struct UnlockCache {
    inner: Arc<Inner>,
}

struct Inner {
    ttl: Duration,
    hash_key: [u8; 32],
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

struct Entry {
    user: UserId,
    generation: i64,
    expires: Instant,
    keys: Arc<UserKeyPair>,
}

impl std::fmt::Debug for UnlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockCache")
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl UnlockCache {
    /// A cache keeping entries for `ttl`; a zero `ttl` keeps nothing.
    pub fn new(ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                ttl,
                hash_key: random_bytes(),
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn slot(&self, user: UserId, secret: &[u8]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.inner.hash_key);
        hasher.update(user.as_uuid().as_bytes());
        hasher.update(secret);
        *hasher.finalize().as_bytes()
    }

    /// The key pair `secret` unlocked for `user` at `generation`, if still fresh.
    pub fn get(&self, user: UserId, secret: &[u8], generation: i64) -> Option<Arc<UserKeyPair>> {
        if self.inner.ttl.is_zero() {
            return None;
        }
        let slot = self.slot(user, secret);
        let mut entries = self.lock();
        match entries.get(&slot) {
            Some(e) if e.generation == generation && e.expires > Instant::now() => {
                Some(e.keys.clone())
            }
            Some(_) => {
                entries.remove(&slot);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, user: UserId, secret: &[u8], generation: i64, keys: Arc<UserKeyPair>) {
        if self.inner.ttl.is_zero() {
            return;
        }
        let slot = self.slot(user, secret);
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= MAX_ENTRIES
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(slot, _)| *slot)
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            slot,
            Entry {
                user,
                generation,
                expires: now + self.inner.ttl,
                keys,
            },
        );
    }

    /// Drops every unlocked key pair of `user` (rekey, recovery, sign-out).
    pub fn forget_user(&self, user: UserId) {
        self.lock().retain(|_, e| e.user != user);
    }

    /// Drops expired entries; run periodically.
    pub fn evict_expired(&self) {
        let now = Instant::now();
        self.lock().retain(|_, e| e.expires > now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.inner
            .entries
            .lock()
            .expect("the unlock cache is never poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_user_secret_and_generation_and_are_forgotten() {
        let cache = UnlockCache::new(Duration::from_secs(60));
        let user = UserId::new();
        let keys = Arc::new(UserKeyPair::generate());
        cache.insert(user, b"secret", 1, keys.clone());
        assert!(cache.get(user, b"secret", 1).is_some());
        assert!(cache.get(user, b"other", 1).is_none());
        assert!(cache.get(UserId::new(), b"secret", 1).is_none());
        assert!(cache.get(user, b"secret", 2).is_none(), "a rekey moved on");
        assert!(
            cache.get(user, b"secret", 1).is_none(),
            "the stale entry is gone"
        );
        cache.insert(user, b"secret", 2, keys);
        cache.forget_user(user);
        assert!(cache.get(user, b"secret", 2).is_none());
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = UnlockCache::new(Duration::ZERO);
        let user = UserId::new();
        cache.insert(user, b"s", 1, Arc::new(UserKeyPair::generate()));
        assert!(cache.get(user, b"s", 1).is_none());
    }
}
