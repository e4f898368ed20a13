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
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        let ceiling = self.base.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
        let half = ceiling_ms / 2;
        Duration::from_millis(half + random % (ceiling_ms - half + 1))
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
        let upper: Vec<u64> = (0..8).map(|_| b.next_delay(u64::MAX).as_millis() as u64).collect();
        assert!(upper.windows(2).all(|w| w[0] <= w[1]), "{upper:?}");
        assert!(*upper.last().unwrap() <= 2000);
        assert!(upper[0] <= 100);
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
        b.reset();
        assert!(b.next_delay(u64::MAX) <= Duration::from_millis(100));
    }
}
