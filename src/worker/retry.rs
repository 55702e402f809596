//! When a failed webhook delivery is tried again (SPEC §7): the fixed schedule of the
//! transfers reference, ±20% jitter, and the receiver's `Retry-After`.

use std::time::Duration;

/// Seconds to wait after attempt 1, 2, ... fails; beyond the list the last step repeats.
pub const RETRY_SCHEDULE_SECS: [u64; 9] = [60, 300, 1800, 7200, 21600, 43200, 86400, 86400, 86400];
/// Attempts a delivery gets unless its webhook says otherwise: the first try and one
/// after each step of the schedule.
pub const DEFAULT_MAX_ATTEMPTS: u32 = RETRY_SCHEDULE_SECS.len() as u32 + 1;
/// Scheduled delays vary by up to this fraction either way, so deliveries that failed
/// together (a receiver's outage) do not all come back at the same instant.
pub const JITTER: f64 = 0.2;
/// The longest `Retry-After` that is honoured: the longest step of the schedule. A
/// receiver asking for more gets a day, not a delivery parked for a year.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// How long to wait before the next attempt, after `attempts_made` attempts (1 after the
/// first failure) failed.
///
/// - The scheduled delay is `RETRY_SCHEDULE_SECS[attempts_made - 1]` (the last step past
///   the end; 0 counts as 1), times a uniform random factor in `[0.8, 1.2]`.
/// - `Retry-After` (already parsed, from a `429`, a `503` or any failed response) can
///   only postpone: the delay is at least what the receiver asked for, clamped to
///   [`MAX_RETRY_AFTER`], plus up to 20% so that every delivery told "120 seconds" does not
///   return in the same second. It never brings an attempt forward: a receiver cannot turn
///   the back-off into a fast loop by answering `Retry-After: 0`, and every receiver can
///   rely on the schedule's minimum spacing.
/// - Everything is multiplied by `time_scale` (`webhooks.time_scale`, 1.0 in production;
///   tests use 0.001). A scale that is not in `(0, 1]` is treated as 1.
///
/// So the result lies in `[0.8 × step, 1.2 × max(step, min(Retry-After, 1 day))] × time_scale`.
pub fn next_attempt_delay(
    attempts_made: u32,
    retry_after: Option<Duration>,
    time_scale: f64,
) -> Duration {
    let step = attempts_made.saturating_sub(1) as usize;
    let scheduled = RETRY_SCHEDULE_SECS[step.min(RETRY_SCHEDULE_SECS.len() - 1)] as f64;
    let jittered = scheduled * (1.0 - JITTER + 2.0 * JITTER * unit_random());
    let secs = match retry_after {
        Some(asked) => {
            let asked = asked.min(MAX_RETRY_AFTER).as_secs_f64();
            jittered.max(asked * (1.0 + JITTER * unit_random()))
        }
        None => jittered,
    };
    let scale = if time_scale.is_finite() && time_scale > 0.0 && time_scale <= 1.0 {
        time_scale
    } else {
        1.0
    };
    Duration::from_secs_f64(secs * scale)
}

/// A uniform random number in `[0, 1)` from the operating system's CSPRNG (53 bits, the
/// precision of an `f64`).
fn unit_random() -> f64 {
    let bits = u64::from_le_bytes(crate::crypto::random_bytes::<8>()) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn each_step_stays_within_twenty_percent_of_the_schedule() {
        for attempts in 1..=15u32 {
            let step = RETRY_SCHEDULE_SECS[(attempts as usize - 1).min(8)] as f64;
            for _ in 0..200 {
                let delay = secs(next_attempt_delay(attempts, None, 1.0));
                assert!(
                    delay >= step * 0.8 && delay <= step * 1.2,
                    "attempt {attempts}: {delay} vs {step}"
                );
            }
        }
        assert_eq!(DEFAULT_MAX_ATTEMPTS, 10);
        // 0 attempts is treated as the first failure.
        let delay = secs(next_attempt_delay(0, None, 1.0));
        assert!((48.0..=72.0).contains(&delay), "{delay}");
        let delay = secs(next_attempt_delay(u32::MAX, None, 1.0));
        assert!((69_120.0..=103_680.0).contains(&delay), "{delay}");
    }

    #[test]
    fn jitter_spreads_delays_across_the_whole_range() {
        let delays: Vec<f64> = (0..2000)
            .map(|_| secs(next_attempt_delay(1, None, 1.0)))
            .collect();
        let low = delays.iter().filter(|d| **d < 54.0).count();
        let high = delays.iter().filter(|d| **d > 66.0).count();
        // Uniform on [48, 72]: a quarter of the draws below 54 and a quarter above 66.
        assert!((350..=650).contains(&low), "{low} below 54 s");
        assert!((350..=650).contains(&high), "{high} above 66 s");
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        assert!((58.5..=61.5).contains(&mean), "mean {mean}");
    }

    #[test]
    fn retry_after_postpones_but_never_hastens() {
        // Asked for less than the schedule: the schedule wins.
        for _ in 0..100 {
            let delay = secs(next_attempt_delay(3, Some(Duration::from_secs(5)), 1.0));
            assert!((1440.0..=2160.0).contains(&delay), "{delay}");
            let delay = secs(next_attempt_delay(1, Some(Duration::ZERO), 1.0));
            assert!((48.0..=72.0).contains(&delay), "{delay}");
        }
        // Asked for more: at least that, and at most 20% more.
        for _ in 0..100 {
            let delay = secs(next_attempt_delay(1, Some(Duration::from_secs(600)), 1.0));
            assert!((600.0..=720.0).contains(&delay), "{delay}");
        }
        // Asked for a year: a day (plus jitter).
        for _ in 0..100 {
            let delay = secs(next_attempt_delay(
                1,
                Some(Duration::from_secs(365 * 86_400)),
                1.0,
            ));
            assert!((86_400.0..=103_680.0).contains(&delay), "{delay}");
        }
    }

    #[test]
    fn time_scale_shrinks_everything_and_nonsense_scales_mean_one() {
        for _ in 0..100 {
            let delay = secs(next_attempt_delay(1, None, 0.001));
            assert!((0.048..=0.072).contains(&delay), "{delay}");
            let delay = secs(next_attempt_delay(
                1,
                Some(Duration::from_secs(3600)),
                0.001,
            ));
            assert!((3.6..=4.32).contains(&delay), "{delay}");
        }
        for scale in [0.0, -1.0, 2.0, f64::NAN, f64::INFINITY] {
            let delay = secs(next_attempt_delay(1, None, scale));
            assert!((48.0..=72.0).contains(&delay), "{scale}: {delay}");
        }
    }
}
