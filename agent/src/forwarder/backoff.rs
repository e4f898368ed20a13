//! Reconnect backoff: exponential with full jitter, pure and testable.
//!
//! The random source is passed in (a `u64` per call), so tests are
//! deterministic and the forwarder task owns the only randomness.

use std::time::Duration;

/// Exponential backoff state.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Backoff starting at `base`, never waiting longer than `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
            attempt: 0,
        }
    }

    /// The next delay: uniformly random in `[ceiling/2, ceiling]`, where
    /// the ceiling doubles per attempt up to `max`. `random` is any u64.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_ms = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let half = ceiling_ms / 2;
        Duration::from_millis(half + random % (ceiling_ms - half + 1))
    }

    /// The largest delay the next call may return.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Call after a connection proved healthy.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut ceilings = Vec::new();
        for r in 0..8u64 {
            let ceiling = b.ceiling();
            assert!(b.next_delay(r * 7919) <= ceiling);
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    }

    #[test]
    fn jitter_stays_within_half_and_full_ceiling() {
        for r in [0, 1, 17, 999, u64::MAX / 3] {
            let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_secs(60));
            let d = b.next_delay(r).as_millis();
            assert!((500..=1000).contains(&d), "{d}");
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        for _ in 0..5 {
            b.next_delay(0);
        }
        assert_eq!(b.ceiling(), Duration::from_millis(3200));
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }
}
