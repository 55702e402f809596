//! Growing delays after failed guesses: passwords at login, user secrets at unlock and
//! transfer passwords at a public link's unlock.
//!
//! A guess is *reserved* before it is checked ([`LoginThrottle::begin`]): the reservation
//! counts as a failure until it resolves, and it is taken under the same lock that reads
//! the counters, so parallel guesses cannot all slip past a check made before any of them
//! failed. While failures are free, at most the free number of guesses are in flight;
//! after that only one at a time, each after its delay.
//!
//! The first [`FREE_FAILURES`] failures of a key cost nothing; after that each failure
//! doubles the wait before the next guess is considered, from 1 s up to [`MAX_DELAY`].
//! Counters idle for an hour are forgotten. State is in memory: a restart forgets it, which
//! costs an attacker a restart they cannot cause.
//!
//! Which keys a guess counts against:
//! - **Login**: the (account, client address) pair, so a stranger guessing from elsewhere
//!   never locks the owner out at their own address; a success there clears the pair.
//!   Two ceilings bound what pairs alone would allow: the address over all accounts
//!   ([`ADDRESS_FREE_FAILURES`]: spraying many accounts from one address), and the account
//!   over all addresses ([`ACCOUNT_FREE_FAILURES`]: guessing one account from many). The
//!   account ceiling only holds back addresses that have themselves failed on that
//!   account, so the owner, signing in from an address with no failures (or one where
//!   they last succeeded), is never locked out by guesses made elsewhere.
//! - **User secret**: the (user, credential) pair, and the user over all credentials
//!   ([`USER_SECRET_FREE_FAILURES`]). Only the user's own credentials can try the user's
//!   secret, so this ceiling holds back every credential.
//! - **Transfer password**: the transfer over all addresses and the client address over
//!   all transfers, [`FREE_FAILURES`] each. A transfer's password is shared by everyone
//!   holding its link, so the transfer's own count is what bounds a guessing campaign
//!   spread over many addresses; a right password clears both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures of one key allowed before delays start.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait imposed.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Failed logins from one address, over all accounts, before that address is delayed.
pub const ADDRESS_FREE_FAILURES: u32 = 30;
/// Failed logins of one account, over all addresses, before addresses that failed on it
/// are delayed.
pub const ACCOUNT_FREE_FAILURES: u32 = 100;
/// Wrong user secrets of one user, over all their credentials, before all are delayed.
pub const USER_SECRET_FREE_FAILURES: u32 = 20;
/// The wait suggested when a key's one guess at a time is still being checked.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(1);
/// Counters idle this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// Guesses reserved and not yet resolved.
    in_flight: u32,
    last_failure: Instant,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            failures: 0,
            in_flight: 0,
            last_failure: now,
        }
    }

    fn delay(&self, free: u32) -> Duration {
        if self.failures < free {
            return Duration::ZERO;
        }
        let doublings = (self.failures - free).min(20);
        Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
    }

    /// How long a new guess must wait, if at all, counting reserved guesses as failures.
    fn wait(&self, free: u32, now: Instant) -> Option<Duration> {
        if self.failures.saturating_add(self.in_flight) < free {
            return None;
        }
        if self.in_flight > 0 {
            return Some(IN_FLIGHT_WAIT);
        }
        (self.last_failure + self.delay(free))
            .checked_duration_since(now)
            .filter(|wait| !wait.is_zero())
    }

    fn stale(&self, now: Instant) -> bool {
        self.in_flight == 0 && now.duration_since(self.last_failure) >= FORGET_AFTER
    }
}

/// One key a guess counts against, with the failures it allows before delays start.
#[derive(Debug, Clone)]
struct Limit {
    key: String,
    free: u32,
    /// Cleared when the guess succeeds.
    cleared_by_success: bool,
}

/// A reserved guess. Resolve it with [`Attempt::failed`] or [`Attempt::succeeded`]; dropped
/// unresolved (the check could not run, the request went away), it counts as nothing.
#[must_use = "a reserved guess must be resolved"]
pub struct Attempt {
    throttle: Arc<LoginThrottle>,
    limits: Vec<Limit>,
    resolved: bool,
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt").finish_non_exhaustive()
    }
}

impl Attempt {
    /// The guess was wrong: every key counts a failure.
    pub fn failed(mut self) {
        self.resolved = true;
        self.throttle.resolve(&self.limits, Outcome::Failed);
    }

    /// The guess was right: the pair starts over (the ceilings keep their count).
    pub fn succeeded(mut self) {
        self.resolved = true;
        self.throttle.resolve(&self.limits, Outcome::Succeeded);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.resolved {
            self.throttle.resolve(&self.limits, Outcome::Abandoned);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Failed,
    Succeeded,
    Abandoned,
}

impl LoginThrottle {
    /// Reserves a login guess for `account` (a normalized email) from `address`, or says
    /// how long to wait first.
    pub fn begin_login(
        self: &Arc<Self>,
        account: &str,
        address: &str,
    ) -> Result<Attempt, Duration> {
        let pair = format!("login:{account}|{address}");
        let mut limits = vec![
            Limit {
                key: pair.clone(),
                free: FREE_FAILURES,
                cleared_by_success: true,
            },
            Limit {
                key: format!("login-address:{address}"),
                free: ADDRESS_FREE_FAILURES,
                cleared_by_success: false,
            },
        ];
        // The account's ceiling holds back only addresses with failures of their own on it.
        let pair_failed = self
            .lock()
            .get(&pair)
            .is_some_and(|e| e.failures + e.in_flight > 0);
        if pair_failed {
            limits.push(Limit {
                key: format!("login-account:{account}"),
                free: ACCOUNT_FREE_FAILURES,
                cleared_by_success: false,
            });
        }
        self.begin(limits, Some(format!("login-account:{account}")))
    }

    /// Reserves a guess of `user`'s secret made with `credential` (a digest of the token
    /// or key presented), or says how long to wait first.
    pub fn begin_user_secret(
        self: &Arc<Self>,
        user: &str,
        credential: &str,
    ) -> Result<Attempt, Duration> {
        self.begin(
            vec![
                Limit {
                    key: format!("secret:{user}|{credential}"),
                    free: FREE_FAILURES,
                    cleared_by_success: true,
                },
                Limit {
                    key: format!("secret-user:{user}"),
                    free: USER_SECRET_FREE_FAILURES,
                    cleared_by_success: false,
                },
            ],
            None,
        )
    }

    /// Reserves a guess of `transfer`'s password from `address`, or says how long to wait
    /// first.
    pub fn begin_transfer_password(
        self: &Arc<Self>,
        transfer: &str,
        address: &str,
    ) -> Result<Attempt, Duration> {
        self.begin(
            vec![
                Limit {
                    key: format!("transfer:{transfer}"),
                    free: FREE_FAILURES,
                    cleared_by_success: true,
                },
                Limit {
                    key: format!("transfer-ip:{address}"),
                    free: FREE_FAILURES,
                    cleared_by_success: true,
                },
            ],
            None,
        )
    }

    /// Checks every limit and reserves the guess on all of them at once. `also_failing`
    /// names a key that counts failures without holding this guess back (the account
    /// ceiling, for an address that has not failed on the account).
    fn begin(
        self: &Arc<Self>,
        mut limits: Vec<Limit>,
        also_failing: Option<String>,
    ) -> Result<Attempt, Duration> {
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() > PRUNE_ABOVE {
            entries.retain(|_, entry| !entry.stale(now));
        }
        let wait = limits
            .iter()
            .filter_map(|limit| entries.get(&limit.key)?.wait(limit.free, now))
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        if let Some(key) = also_failing
            && !limits.iter().any(|l| l.key == key)
        {
            limits.push(Limit {
                key,
                free: u32::MAX,
                cleared_by_success: false,
            });
        }
        for limit in &limits {
            let entry = entries
                .entry(limit.key.clone())
                .or_insert_with(|| Entry::new(now));
            if entry.stale(now) {
                *entry = Entry::new(now);
            }
            entry.in_flight += 1;
        }
        drop(entries);
        Ok(Attempt {
            throttle: self.clone(),
            limits,
            resolved: false,
        })
    }

    fn resolve(&self, limits: &[Limit], outcome: Outcome) {
        let now = Instant::now();
        let mut entries = self.lock();
        for limit in limits {
            let Some(entry) = entries.get_mut(&limit.key) else {
                continue;
            };
            entry.in_flight = entry.in_flight.saturating_sub(1);
            match outcome {
                Outcome::Failed => {
                    entry.failures = entry.failures.saturating_add(1);
                    entry.last_failure = now;
                }
                Outcome::Succeeded if limit.cleared_by_success => entry.failures = 0,
                Outcome::Succeeded | Outcome::Abandoned => {}
            }
            if entry.failures == 0 && entry.in_flight == 0 {
                entries.remove(&limit.key);
            }
        }
    }

    /// How long the caller must still wait before an attempt for any of `keys`, if at all.
    /// Checking and recording separately can be raced: guesses go through the `begin_*`
    /// reservations; this and [`LoginThrottle::record_failure`] remain for inspection.
    pub fn wait_for(&self, keys: &[&str]) -> Option<Duration> {
        let now = Instant::now();
        let entries = self.lock();
        keys.iter()
            .filter_map(|key| entries.get(*key))
            .filter_map(|entry| entry.wait(FREE_FAILURES, now))
            .max()
    }

    pub fn record_failure(&self, keys: &[&str]) {
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() > PRUNE_ABOVE {
            entries.retain(|_, entry| !entry.stale(now));
        }
        for key in keys {
            let entry = entries
                .entry((*key).to_owned())
                .or_insert_with(|| Entry::new(now));
            if entry.stale(now) {
                *entry = Entry::new(now);
            }
            entry.failures += 1;
            entry.last_failure = now;
        }
    }

    pub fn clear(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_after_the_free_failures_and_grow() {
        let throttle = LoginThrottle::default();
        for _ in 0..FREE_FAILURES - 1 {
            throttle.record_failure(&["a"]);
        }
        assert_eq!(throttle.wait_for(&["a"]), None);
        throttle.record_failure(&["a"]);
        let first = throttle.wait_for(&["a"]).expect("delayed");
        throttle.record_failure(&["a"]);
        let second = throttle.wait_for(&["a"]).expect("delayed");
        assert!(second > first, "{first:?} then {second:?}");
        assert_eq!(throttle.wait_for(&["b"]), None, "other keys are free");
        throttle.clear("a");
        assert_eq!(throttle.wait_for(&["a"]), None);
    }

    #[test]
    fn reserved_guesses_count_before_they_resolve() {
        let throttle = Arc::new(LoginThrottle::default());
        let reserved: Vec<Attempt> = (0..FREE_FAILURES)
            .map(|_| throttle.begin_login("ada@example.com", "10.0.0.1").unwrap())
            .collect();
        // Nothing has failed yet, but every free guess is taken.
        let wait = throttle
            .begin_login("ada@example.com", "10.0.0.1")
            .unwrap_err();
        assert_eq!(wait, IN_FLIGHT_WAIT);
        for attempt in reserved {
            attempt.failed();
        }
        let wait = throttle
            .begin_login("ada@example.com", "10.0.0.1")
            .unwrap_err();
        assert!(wait > Duration::from_millis(900), "{wait:?}");
        // An abandoned guess gives its place back without counting.
        let other = throttle.begin_login("bob@example.com", "10.0.0.1").unwrap();
        drop(other);
        let fresh = throttle.begin_login("bob@example.com", "10.0.0.1").unwrap();
        fresh.succeeded();
        assert!(
            throttle
                .lock()
                .get("login:bob@example.com|10.0.0.1")
                .is_none()
        );
    }

    #[test]
    fn a_stranger_elsewhere_does_not_lock_the_owner_out() {
        let throttle = Arc::new(LoginThrottle::default());
        // Failures spread over many addresses pass the account's ceiling...
        for i in 0..ACCOUNT_FREE_FAILURES + 10 {
            let address = format!("10.1.{}.{}", i / 250, i % 250);
            throttle.begin_login("ada", &address).unwrap().failed();
        }
        // ...which then holds back an address that failed on the account,
        let wait = throttle.begin_login("ada", "10.1.0.0").unwrap_err();
        assert!(wait > Duration::ZERO);
        // ...but not the owner's address, which has no failures of its own.
        throttle
            .begin_login("ada", "192.0.2.7")
            .unwrap()
            .succeeded();
    }

    #[test]
    fn one_address_spraying_many_accounts_is_held_back() {
        let throttle = Arc::new(LoginThrottle::default());
        for i in 0..ADDRESS_FREE_FAILURES {
            throttle
                .begin_login(&format!("user{i}"), "10.2.0.1")
                .unwrap()
                .failed();
        }
        assert!(throttle.begin_login("someone-else", "10.2.0.1").is_err());
        assert!(throttle.begin_login("someone-else", "10.2.0.2").is_ok());
    }

    #[test]
    fn user_secrets_are_limited_per_credential_and_per_user() {
        let throttle = Arc::new(LoginThrottle::default());
        for _ in 0..FREE_FAILURES {
            throttle.begin_user_secret("u1", "key-a").unwrap().failed();
        }
        assert!(throttle.begin_user_secret("u1", "key-a").is_err());
        // Another credential of the same user still has its own free guesses...
        let mut credential = 0;
        while throttle
            .begin_user_secret("u1", &format!("k{credential}"))
            .is_ok_and(|a| {
                a.failed();
                true
            })
        {
            credential += 1;
        }
        // ...until the user's ceiling.
        assert_eq!(credential + FREE_FAILURES, USER_SECRET_FREE_FAILURES);
        assert!(throttle.begin_user_secret("u2", "key-a").is_ok());
    }
}
