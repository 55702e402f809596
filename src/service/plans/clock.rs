//! The clock plans read: the UTC day of the daily quotas and whether an assignment has
//! ended. The system clock, which tests move forward through a handle the app gives them
//! (`App::plan_clock`); nothing an operator configures can move it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::{OffsetDateTime, Time};

/// The system clock plus an offset that only tests add to.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Seconds added to the system clock; 0 outside tests.
    offset: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward, for tests of the day turning.
    #[doc(hidden)]
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// Today's UTC day, `YYYY-MM-DD`, the key of the daily counters.
    pub fn today(&self) -> String {
        day_of(self.now())
    }

    /// The next UTC midnight, when the daily quotas start again.
    pub fn next_midnight(&self) -> OffsetDateTime {
        next_midnight(self.now())
    }

    /// The time left until the next UTC midnight (at least a second).
    pub fn until_midnight(&self) -> Duration {
        let now = self.now();
        let left = next_midnight(now) - now;
        Duration::from_secs(left.whole_seconds().max(1) as u64)
    }
}

pub(crate) fn day_of(at: OffsetDateTime) -> String {
    let date = at.to_offset(time::UtcOffset::UTC).date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn next_midnight(at: OffsetDateTime) -> OffsetDateTime {
    let date = at.to_offset(time::UtcOffset::UTC).date();
    date.next_day()
        .unwrap_or(date)
        .with_time(Time::MIDNIGHT)
        .assume_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_turns_at_utc_midnight() {
        let at = time::macros::datetime!(2026-12-31 23:59:59 UTC);
        assert_eq!(day_of(at), "2026-12-31");
        assert_eq!(
            next_midnight(at),
            time::macros::datetime!(2027-01-01 00:00:00 UTC)
        );
        let clock = Clock::default();
        let before = clock.today();
        clock.advance(Duration::from_secs(24 * 60 * 60));
        assert_ne!(clock.today(), before);
        assert!(clock.until_midnight() <= Duration::from_secs(24 * 60 * 60));
    }
}
