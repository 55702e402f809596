//! Growing delays after failed logins, per account and per client IP, so password
//! guessing is slow whichever of the two an attacker varies.
//!
//! The first [`FREE_FAILURES`] failures cost nothing; after that each failure doubles the
//! wait before the next attempt is considered, from 1 s up to [`MAX_DELAY`]. A successful
//! login clears the account's counter. State is in memory: a restart forgets it, which
//! costs an attacker a restart they cannot cause.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before delays start.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait imposed.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
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
    last_failure: Instant,
}

impl Entry {
    fn delay(&self) -> Duration {
        if self.failures < FREE_FAILURES {
            return Duration::ZERO;
        }
        let doublings = (self.failures - FREE_FAILURES).min(20);
        Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
    }
}

impl LoginThrottle {
    /// How long the caller must still wait before an attempt for any of `keys`, if at all.
    pub fn wait_for(&self, keys: &[&str]) -> Option<Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().expect("throttle lock");
        keys.iter()
            .filter_map(|key| entries.get(*key))
            .filter_map(|entry| (entry.last_failure + entry.delay()).checked_duration_since(now))
            .filter(|wait| !wait.is_zero())
            .max()
    }

    pub fn record_failure(&self, keys: &[&str]) {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("throttle lock");
        if entries.len() > PRUNE_ABOVE {
            entries.retain(|_, entry| now.duration_since(entry.last_failure) < FORGET_AFTER);
        }
        for key in keys {
            let entry = entries.entry((*key).to_owned()).or_insert(Entry {
                failures: 0,
                last_failure: now,
            });
            if now.duration_since(entry.last_failure) >= FORGET_AFTER {
                entry.failures = 0;
            }
            entry.failures += 1;
            entry.last_failure = now;
        }
    }

    pub fn clear(&self, key: &str) {
        self.entries.lock().expect("throttle lock").remove(key);
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
}
